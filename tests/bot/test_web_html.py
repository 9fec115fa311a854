"""The review desk's pages and forms, over HTTP without a browser (Starlette's TestClient on
the real app, a real database on both backends, the fake VK for comments)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bot import storage
from bot.comment_stage import comment_guid
from bot.storage import pipeline as store
from bot.storage import reviews
from bot.web import create_app
from tests.bot._fake_vision import animal_jpeg
from tests.bot._web_world import (
    BOTH_BACKENDS,
    FOUND_GROUP,
    NO_CONSENT_GROUP,
    PASSWORD,
    SEED_NOW,
    WebWorld,
    build_world,
    web_database_url,
)

PAGES = ["/queue", "/search", "/dashboard", "/groups", "/post/1", "/pair/1", "/unlooked"]


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return web_database_url(request, tmp_path)


@pytest.fixture
def world(fake_vk: Any, database_url: str, tmp_path: Any) -> Iterator[WebWorld]:
    built = build_world(fake_vk, database_url, tmp_path / "var")
    yield built
    built.sessions.kw["bind"].dispose()


@pytest.fixture
def client(world: WebWorld) -> Iterator[TestClient]:
    app = create_app(
        world.settings,
        sessions=world.sessions,
        vision=world.vision,
        gateway_factory=world.gateway_factory,
    )
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def log_in(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token})


def decide(client: TestClient, match_id: int, decision: str) -> Any:
    token = csrf_of(client.get("/queue").text)
    return client.post(
        f"/review/{match_id}",
        data={"decision": decision, "csrf_token": token, "next": "/queue"},
    )


def queue_ids(client: TestClient) -> list[int]:
    return [int(m) for m in re.findall(r'data-match="(\d+)"', client.get("/queue").text)]


def test_every_page_needs_login_except_login_and_healthz(client: TestClient) -> None:
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 303 and response.headers["location"] == "/login", page
    assert client.get("/photo/1").status_code == 401
    assert client.get("/crop/1").status_code == 401
    assert client.get("/healthz").text == "ok"
    assert "Вход" in client.get("/login").text


def test_login_and_logout(client: TestClient) -> None:
    assert log_in(client, "anna", "wrong password").status_code == 401
    response = log_in(client, "anna")
    assert response.status_code == 303 and response.headers["location"] == "/queue"
    assert "anna" in client.get("/queue").text
    cookie = client.cookies.get("petmatch_session")
    assert cookie and "anna" not in cookie  # signed, and no name in clear
    page = client.get("/queue").text
    assert client.post("/logout", data={"csrf_token": csrf_of(page)}).status_code == 303
    assert client.get("/queue").status_code == 303


@pytest.mark.parametrize("database_url", BOTH_BACKENDS, indirect=True)
def test_queue_shows_both_posts_with_reasons_links_and_photos(
    client: TestClient, world: WebWorld
) -> None:
    log_in(client, "anna")
    html = client.get("/queue").text
    assert set(queue_ids(client)) == set(world.matches.values())
    with storage.session_scope(world.sessions) as session:
        lost = storage.get_post_by_pk(session, world.posts["ryzhik_lost"])
        found = storage.get_post_by_pk(session, world.posts["ryzhik_found"])
        match = store.get_match(session, world.matches["ryzhik"])
        photos = storage.photos_of_post(session, lost.id)
    assert lost.url in html and found.url in html
    assert match.reasons[0].split(":")[0] in html
    assert f'src="/photo/{photos[0].id}"' in html and 'src="/crop/' in html
    assert "Москва" in html
    # Most promising first.
    confidences = [float(c) for c in re.findall(r'class="confidence"[^>]*>(\d+)%', html)]
    assert confidences == sorted(confidences, reverse=True)


def test_queue_filters_by_species(client: TestClient, world: WebWorld) -> None:
    log_in(client, "anna")
    cats = [int(m) for m in re.findall(r'data-match="(\d+)"', client.get(
        "/queue?species=cat").text)]
    assert cats == [world.matches["murka"]]
    assert client.get("/queue?city=Казань").text.count("data-match=") == 0


def test_post_text_is_shown_as_text(client: TestClient, world: WebWorld) -> None:
    log_in(client, "anna")
    for page in ("/queue", f"/post/{world.posts['sharik_lost']}"):
        html = client.get(page).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=" in html


@pytest.mark.parametrize("database_url", BOTH_BACKENDS, indirect=True)
def test_confirmation_posts_one_comment_through_the_comment_stage(
    client: TestClient, world: WebWorld
) -> None:
    log_in(client, "anna")
    match_id = world.matches["ryzhik"]
    response = decide(client, match_id, "same_comment")
    assert response.status_code == 303
    assert len(world.vk.comments) == 1
    comment = world.vk.comments[0]
    with storage.session_scope(world.sessions) as session:
        match = store.get_match(session, match_id)
        recorded = store.comment_for_pair(session, match.lost_case_id, match.found_case_id)
        history = reviews.reviews_of_match(session, match_id)
    assert comment["guid"] == comment_guid(match.lost_case_id, match.found_case_id)
    assert recorded is not None and recorded.state is store.CommentState.POSTED
    assert [(r.reviewer, r.decision) for r in history] == [
        ("anna", reviews.Decision.SAME_COMMENT)
    ]
    assert match_id not in queue_ids(client)
    # Deciding again (or another reviewer confirming) posts nothing more.
    decide(client, match_id, "same_comment")
    assert "уже решил(а) anna" in client.get("/queue").text  # the flash says who decided
    log_in(client, "boss")
    decide(client, match_id, "same_comment")
    assert len(world.vk.comments) == 1


def test_no_post_offer_without_consent_and_the_card_says_why(
    client: TestClient, world: WebWorld
) -> None:
    log_in(client, "anna")
    card = _card_html(client.get("/queue").text, world.matches["murka"])
    assert re.search(r'value="same_comment" data-key="1"\s+disabled', card)
    assert "нет согласия" in card
    decide(client, world.matches["murka"], "same_comment")
    assert world.vk.comments == []
    with storage.session_scope(world.sessions) as session:
        assert reviews.latest_decision(session, world.matches["murka"]) is None
    decide(client, world.matches["murka"], "same_manual")
    with storage.session_scope(world.sessions) as session:
        decided = reviews.latest_decision(session, world.matches["murka"])
    assert decided is not None and decided.decision is reviews.Decision.SAME_MANUAL
    assert world.vk.comments == []


def test_shadow_mode_group_is_not_offered(client: TestClient, world: WebWorld) -> None:
    for vk_id in (FOUND_GROUP, 601):
        with storage.session_scope(world.sessions) as session:
            group = storage.get_group(session, vk_id)
            storage.upsert_group(
                session, vk_id=vk_id, screen_name=group.screen_name, title=group.title,
                now=SEED_NOW, shadow_mode=True,
            )
    log_in(client, "anna")
    card = _card_html(client.get("/queue").text, world.matches["ryzhik"])
    assert "теневом режиме" in card and "disabled" in card


def test_a_pair_whose_side_is_unknown_is_never_offered_for_a_comment(
    client: TestClient, world: WebWorld
) -> None:
    """The comment's wording depends on which post is the lost one: never guess it."""
    from sqlalchemy import update

    from bot.storage._pipeline_schema import PostLabelRow

    match_id = world.matches["ryzhik"]
    with storage.session_scope(world.sessions) as session:
        match = store.get_match(session, match_id)
        session.execute(
            update(PostLabelRow)
            .where(PostLabelRow.post_id == match.found_post_pk)
            .values(kind="unknown")
        )
    log_in(client, "anna")
    card = _card_html(client.get("/queue").text, match_id)
    assert re.search(r'value="same_comment" data-key="1"\s+disabled', card)
    assert "не ясно, потерян питомец или найден" in card
    decide(client, match_id, "same_comment")
    assert world.vk.comments == []
    with storage.session_scope(world.sessions) as session:
        assert reviews.latest_decision(session, match_id) is None


@pytest.mark.parametrize("database_url", BOTH_BACKENDS, indirect=True)
def test_rejection_leaves_the_queue_and_skip_leaves_only_mine(
    client: TestClient, world: WebWorld
) -> None:
    log_in(client, "anna")
    decide(client, world.matches["sharik"], "different")
    decide(client, world.matches["murka"], "skip")
    assert queue_ids(client) == [world.matches["ryzhik"]]
    log_in(client, "boss")
    assert set(queue_ids(client)) == {world.matches["ryzhik"], world.matches["murka"]}
    assert world.vk.comments == []


@pytest.mark.parametrize("database_url", BOTH_BACKENDS, indirect=True)
def test_rejecting_a_held_pair_cancels_its_deferred_comment(
    client: TestClient, world: WebWorld
) -> None:
    with storage.session_scope(world.sessions) as session:
        match = store.get_match(session, world.matches["sharik"])
        comment = store.create_comment(
            session, match, owner_id=-FOUND_GROUP, post_id=1, guid="g" * 32, text="x",
            state=store.CommentState.DEFERRED, reason="daily cap of 30 reached", now=SEED_NOW,
        )
    log_in(client, "anna")
    card = _card_html(client.get("/queue").text, match.id)
    assert "отложен" in card and "дневной лимит" in card
    decide(client, match.id, "different")
    with storage.session_scope(world.sessions) as session:
        after = store.comment_for_pair(session, match.lost_case_id, match.found_case_id)
    assert after.id == comment.id and after.state is store.CommentState.SKIPPED
    assert "different" in after.reason


@pytest.mark.parametrize("database_url", BOTH_BACKENDS, indirect=True)
def test_a_form_without_its_csrf_token_is_refused(client: TestClient, world: WebWorld) -> None:
    log_in(client, "anna")
    match_id = world.matches["ryzhik"]
    for data in ({"decision": "different"}, {"decision": "different", "csrf_token": "forged"}):
        assert client.post(f"/review/{match_id}", data=data).status_code == 403
    token = csrf_of(client.get("/queue").text)
    cross = client.post(
        f"/review/{match_id}",
        data={"decision": "different", "csrf_token": token},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403
    assert client.post("/login", data={"name": "anna", "password": PASSWORD}).status_code == 403
    with storage.session_scope(world.sessions) as session:
        assert reviews.reviews_of_match(session, match_id) == []


def test_wrong_passwords_are_slowed_down(client: TestClient) -> None:
    for _ in range(5):
        assert log_in(client, "anna", "not the password").status_code == 401
    refused = log_in(client, "anna")  # even the right password waits now
    assert refused.status_code == 429 and "Подождите" in refused.text


def test_groups_are_for_admins(client: TestClient, world: WebWorld) -> None:
    world.vk.add_group(777, "novaya_gruppa", "Новая группа")
    log_in(client, "anna")
    assert client.get("/groups").status_code == 403
    token = csrf_of(client.get("/queue").text)
    refused = client.post("/groups/add", data={"ref": "novaya_gruppa", "csrf_token": token})
    assert refused.status_code == 403
    log_in(client, "boss")
    token = csrf_of(client.get("/groups").text)
    added = client.post(
        "/groups/add", data={"ref": "https://vk.com/novaya_gruppa", "city": "Тула",
                             "csrf_token": token},
    )
    assert added.status_code == 303
    html = client.get("/groups").text
    assert "Новая группа" in html and "Тула" in html and "wall.get" in html
    client.post("/groups/777/switch", data={"comments": "on", "csrf_token": token})
    client.post(f"/groups/{NO_CONSENT_GROUP}/remove", data={"csrf_token": token})
    with storage.session_scope(world.sessions) as session:
        assert storage.get_group(session, 777).comments_enabled
        assert storage.get_group(session, NO_CONSENT_GROUP) is None


def test_photos_are_served_by_id_from_the_store_only(client: TestClient, world: WebWorld) -> None:
    from sqlalchemy import update

    from bot.storage._schema import PhotoRow

    log_in(client, "anna")
    with storage.session_scope(world.sessions) as session:
        photo = storage.photos_of_post(session, world.posts["ryzhik_lost"])[0]
        animal = store.animals_of_post(session, world.posts["ryzhik_lost"])[0]
    response = client.get(f"/photo/{photo.id}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert client.get(f"/crop/{animal.id}").headers["content-type"] == "image/png"
    assert client.get("/photo/999999").status_code == 404
    assert client.get("/photo/..%2F..%2Fetc%2Fpasswd").status_code == 404
    with storage.session_scope(world.sessions) as session:
        session.execute(
            update(PhotoRow).where(PhotoRow.id == photo.id).values(file_path="/etc/passwd")
        )
    assert client.get(f"/photo/{photo.id}").status_code == 404


def test_photos_and_crops_a_worker_put_in_the_database_are_served(
    client: TestClient, world: WebWorld
) -> None:
    """With `workers.files: database` the desk reads what a worker on another machine wrote."""
    from sqlalchemy import update

    from bot.files import DatabaseFiles
    from bot.storage._pipeline_schema import AnimalRow
    from bot.storage._schema import PhotoRow

    log_in(client, "anna")
    with storage.session_scope(world.sessions) as session:
        photo = storage.photos_of_post(session, world.posts["ryzhik_lost"])[0]
        animal = store.animals_of_post(session, world.posts["ryzhik_lost"])[0]
    photo_bytes = Path(photo.file_path).read_bytes()
    crop_bytes = Path(animal.crop_path).read_bytes()
    files = DatabaseFiles(world.sessions)
    photo_ref = files.put(f"photos/moved-{photo.id}.jpg", photo_bytes)
    crop_ref = files.put(f"crops/moved-{animal.id}.png", crop_bytes)
    Path(photo.file_path).unlink()  # nothing left on this machine's disk
    Path(animal.crop_path).unlink()
    with storage.session_scope(world.sessions) as session:
        session.execute(update(PhotoRow).where(PhotoRow.id == photo.id).values(file_path=photo_ref))
        session.execute(
            update(AnimalRow).where(AnimalRow.id == animal.id).values(crop_path=crop_ref)
        )
    served = client.get(f"/photo/{photo.id}")
    assert served.status_code == 200 and served.content == photo_bytes
    crop = client.get(f"/crop/{animal.id}")
    assert crop.status_code == 200 and crop.content == crop_bytes
    with storage.session_scope(world.sessions) as session:
        session.execute(
            update(PhotoRow).where(PhotoRow.id == photo.id).values(file_path="db:no-such-file")
        )
    assert client.get(f"/photo/{photo.id}").status_code == 404


def test_search_by_photo_puts_the_right_post_first(client: TestClient, world: WebWorld) -> None:
    log_in(client, "anna")
    token = csrf_of(client.get("/search").text)
    response = client.post(
        "/search",
        data={"csrf_token": token, "kind": "found", "city": "", "species": ""},
        files={"photo": ("my dog.jpg", animal_jpeg("sharik", shift=2), "image/jpeg")},
    )
    assert response.status_code == 200
    with storage.session_scope(world.sessions) as session:
        expected = storage.get_post_by_pk(session, world.posts["sharik_found"]).url
    urls = re.findall(r'href="(https://vk\.com/wall-?\d+_\d+)"', response.text)
    assert urls and urls[0] == expected


@pytest.mark.parametrize("database_url", BOTH_BACKENDS, indirect=True)
def test_dashboard_counts_a_known_day(client: TestClient, world: WebWorld) -> None:
    log_in(client, "anna")
    html = client.get(f"/dashboard?end={SEED_NOW.date().isoformat()}&days=7").text
    with storage.session_scope(world.sessions) as session:
        candidates = len(store.list_matches(session, limit=1000))
    assert _last_day(html, "posts") == 6
    assert _last_day(html, "animals") == 6
    assert _last_day(html, "candidates") == candidates
    assert _last_day(html, "auto_comments") == 0
    assert html.count("<svg") == 6


def test_the_vk_token_never_appears_in_a_page(client: TestClient, world: WebWorld) -> None:
    token = world.settings.vk.token.get_secret_value()
    with storage.session_scope(world.sessions) as session:
        group = storage.get_group(session, FOUND_GROUP)
        storage.record_group_error(session, group.id, f"boom access_token={token}", now=SEED_NOW)
    log_in(client, "boss")
    pages = [*PAGES, f"/post/{world.posts['ryzhik_lost']}", f"/pair/{world.matches['ryzhik']}"]
    for page in pages:
        assert token not in client.get(page).text, page


def _card_html(html: str, match_id: int) -> str:
    start = html.index(f'data-match="{match_id}"')
    end = html.find('<section class="card"', start)
    return html[start : end if end > 0 else len(html)]


def _last_day(html: str, series: str) -> int:
    found = re.search(
        rf'data-series="{series}">.*?class="last-day">(\d+)<', html, flags=re.DOTALL
    )
    assert found, series
    return int(found.group(1))


def test_post_page_shows_the_animals_and_the_candidates_with_decisions(
    client: TestClient, world: WebWorld
) -> None:
    log_in(client, "anna")
    decide(client, world.matches["ryzhik"], "same_manual")
    with storage.session_scope(world.sessions) as session:
        found = storage.get_post_by_pk(session, world.posts["ryzhik_found"])
        animals = store.animals_of_post(session, world.posts["ryzhik_lost"])
    html = client.get(f"/post/{world.posts['ryzhik_lost']}").text
    assert all(f'src="/crop/{a.id}"' in html for a in animals)
    assert found.url in html and f'href="/pair/{world.matches["ryzhik"]}"' in html
    assert "связались сами (anna)" in html
    pair = client.get(f"/pair/{world.matches['ryzhik']}").text
    assert "anna" in pair and "то же животное, связались сами" in pair


@pytest.mark.parametrize("database_url", BOTH_BACKENDS, indirect=True)
def test_dashboard_precision_of_automatic_comments_and_reunions(
    client: TestClient, world: WebWorld
) -> None:
    """Precision comes from the sampled automatic comments reviewers judged; a reunion is a
    confirmed pair whose lost post later reads as resolved."""
    day = SEED_NOW.date().isoformat()
    with storage.session_scope(world.sessions) as session:
        anna = reviews.find_user(session, "anna")
        for animal, decision in (("ryzhik", "same_manual"), ("sharik", "different")):
            match = store.get_match(session, world.matches[animal])
            reviews.record_review(
                session, match, user=anna, decision=reviews.Decision(decision),
                bucket=reviews.Bucket.SAMPLE, now=SEED_NOW,
            )
        ryzhik = store.get_match(session, world.matches["ryzhik"])
        store.resolve_case(session, ryzhik.lost_case_id, ryzhik.lost_post_pk, now=SEED_NOW)
    log_in(client, "anna")
    html = client.get(f"/dashboard?end={day}&days=3").text
    assert re.search(r'id="precision">50%<', html)
    assert _last_day(html, "reviews") == 2
    assert _last_day(html, "reunions") == 1
