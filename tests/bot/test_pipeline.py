"""The pipeline end to end against the fake VK: text → photos → vision → index → matching →
comment, with a fake segmenter/embedder so identities are known exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import storage
from bot.comment_stage import comment_guid
from bot.config import Settings
from bot.pipeline import Pipeline, VisionModels
from bot.polling import poll_cycle
from bot.storage import pipeline as store
from tests.bot._fake_vision import (
    add_groups,
    animal_jpeg,
    fake_vision,
    pipeline_settings,
    poster_jpeg,
)

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 12:00 in Moscow, outside quiet hours
LOST, FOUND, ELSEWHERE = 501, 502, 503


@pytest.fixture
def vision() -> VisionModels:
    return fake_vision()


@pytest.fixture
def settings(fake_vk, database_url, tmp_path) -> Settings:
    return pipeline_settings(fake_vk, database_url, tmp_path / "var")


@pytest.fixture
def world(fake_vk, sessions):
    """Three groups on the fake VK, stored with their cities and commenting switched on."""
    add_groups(fake_vk, sessions, {LOST: "Москва", FOUND: "Москва", ELSEWHERE: "Казань"}, now=NOW)
    return fake_vk


def _ts(hours_ago: float) -> int:
    return int((NOW - timedelta(hours=hours_ago)).timestamp())


def _cycle(settings, sessions, gateway, vision, *, now=NOW, dry_run=None):
    poll_cycle(sessions, gateway, settings, now=now)
    pipeline = Pipeline(settings, sessions, gateway, vision=vision, dry_run=dry_run)
    return pipeline.process_pending(now=now)


def test_lost_and_found_of_one_animal_get_one_comment(world, settings, sessions, gateway, vision):
    lost = world.add_post(
        LOST, text="Пропала собака в Москве, рыжая", date=_ts(48), photos=[animal_jpeg("ryzhik")]
    )
    world.add_post(
        LOST, text="Пропала собака в Москве, синяя", date=_ts(47), photos=[animal_jpeg("sharik")]
    )
    found = world.add_post(
        FOUND,
        text="Нашли собаку у метро, Москва, ищем хозяев",
        date=_ts(2),
        photos=[poster_jpeg(), animal_jpeg("ryzhik", shift=6)],
    )
    report = _cycle(settings, sessions, gateway, vision)

    assert report.failures == []
    assert len(world.comments) == 1
    comment = world.comments[0]
    assert (comment["owner_id"], comment["post_id"]) == (-FOUND, found)  # the newer post
    assert f"https://vk.com/wall-{LOST}_{lost}" in comment["text"]
    assert "фото 1" in comment["text"]
    with storage.session_scope(sessions) as session:
        accepted = store.list_matches(session, accepted_only=True)
        rows = store.list_comments(session)
    assert len(accepted) == 1 and accepted[0].confidence >= 0.9
    assert [c.state for c in rows] == [store.CommentState.POSTED]
    assert (
        rows[0].guid
        == comment["guid"]
        == comment_guid(accepted[0].lost_case_id, accepted[0].found_case_id)
    )

    # A second run (and a restart) says nothing more.
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(hours=1))
    assert len(world.comments) == 1


def test_reposts_of_one_case_get_at_most_one_comment(world, settings, sessions, gateway, vision):
    original = world.add_post(
        LOST, text="Пропал кот, Москва", date=_ts(30), photos=[animal_jpeg("murka")]
    )
    world.add_post(FOUND, text="Репост: пропал кот", date=_ts(29), repost_of=(LOST, original))
    world.add_post(
        FOUND, text="Найден кот, Москва", date=_ts(3), photos=[animal_jpeg("murka", shift=4)]
    )
    world.add_post(
        LOST,
        text="Найден кот, Москва, ищем хозяев",
        date=_ts(1),
        photos=[animal_jpeg("murka", shift=8)],
        repost_of=None,
    )
    _cycle(settings, sessions, gateway, vision)
    with storage.session_scope(sessions) as session:
        pairs = {(c.owner_id, c.post_id) for c in store.list_comments(session)}
        cases = {
            (m.lost_case_id, m.found_case_id)
            for m in store.list_matches(session, accepted_only=True)
        }
    assert len(world.comments) == len(cases)
    assert len({(c["owner_id"], c["post_id"], c["text"]) for c in world.comments}) == len(
        world.comments
    )
    assert len(pairs) == len(world.comments)


def test_other_and_resolved_posts_are_never_matched(world, settings, sessions, gateway, vision):
    lost = world.add_post(
        LOST, text="Пропала кошка, Москва", date=_ts(40), photos=[animal_jpeg("bobik")]
    )
    world.add_post(
        LOST,
        text="Отдам котят в добрые руки, Москва",
        date=_ts(5),
        photos=[animal_jpeg("bobik", shift=3)],
    )
    _cycle(settings, sessions, gateway, vision)
    assert world.comments == []

    world.add_post(
        LOST, text="Кошка нашлась, спасибо всем, она дома!", date=_ts(1), repost_of=(LOST, lost)
    )
    world.add_post(
        FOUND,
        text="Найдена кошка, Москва, ищем хозяев",
        date=_ts(0.5),
        photos=[animal_jpeg("bobik", shift=5)],
    )
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(minutes=10))
    assert world.comments == []
    with storage.session_scope(sessions) as session:
        labels = [store.get_label(session, p.id) for p in storage.pending_posts(session)]
    assert labels == []


def test_far_city_is_not_matched(world, settings, sessions, gateway, vision):
    world.add_post(
        LOST, text="Пропала собака в Москве", date=_ts(20), photos=[animal_jpeg("sharik")]
    )
    world.add_post(
        ELSEWHERE,
        text="Найдена собака в Казани, ищем хозяев",
        date=_ts(2),
        photos=[animal_jpeg("sharik", shift=2)],
    )
    _cycle(settings, sessions, gateway, vision)
    assert world.comments == []


def test_group_without_consent_dry_run_and_shadow(world, settings, sessions, gateway, vision):
    with storage.session_scope(sessions) as session:
        for vk_id in (LOST, FOUND):
            storage.upsert_group(
                session,
                vk_id=vk_id,
                screen_name=f"g{vk_id}",
                title="g",
                now=NOW,
                comments_enabled=False,
            )
    world.add_post(
        LOST, text="Пропала собака, Москва", date=_ts(20), photos=[animal_jpeg("ryzhik")]
    )
    world.add_post(
        FOUND, text="Нашли собаку, Москва", date=_ts(1), photos=[animal_jpeg("ryzhik", shift=2)]
    )
    _cycle(settings, sessions, gateway, vision)
    with storage.session_scope(sessions) as session:
        states = [c.state for c in store.list_comments(session)]
    assert world.comments == []
    assert states == [store.CommentState.SKIPPED]


def test_dry_run_records_without_posting(world, settings, sessions, gateway, vision):
    world.add_post(
        LOST, text="Пропала собака, Москва", date=_ts(20), photos=[animal_jpeg("ryzhik")]
    )
    world.add_post(
        FOUND, text="Нашли собаку, Москва", date=_ts(1), photos=[animal_jpeg("ryzhik", shift=2)]
    )
    _cycle(settings, sessions, gateway, vision, dry_run=True)
    with storage.session_scope(sessions) as session:
        rows = store.list_comments(session)
    assert world.comments == []
    assert [c.state for c in rows] == [store.CommentState.DRY_RUN]
    assert "https://vk.com/wall" in rows[0].text


@pytest.mark.parametrize(
    ("fault", "state", "posted"),
    [
        (212, store.CommentState.SKIPPED, 0),
        (213, store.CommentState.SKIPPED, 0),
        (223, store.CommentState.SKIPPED, 0),
        (222, store.CommentState.POSTED, 1),
        (14, store.CommentState.DEFERRED, 0),
        (9, store.CommentState.DEFERRED, 0),
    ],
)
def test_comment_errors(world, settings, sessions, gateway, vision, fault, state, posted):
    world.add_post(
        LOST, text="Пропала собака, Москва", date=_ts(20), photos=[animal_jpeg("ryzhik")]
    )
    world.add_post(
        FOUND, text="Нашли собаку, Москва", date=_ts(1), photos=[animal_jpeg("ryzhik", shift=2)]
    )
    world.inject_fault("wall.createComment", fault)
    _cycle(settings, sessions, gateway, vision)
    with storage.session_scope(sessions) as session:
        rows = store.list_comments(session)
        paused = storage.active_pause(session, "writes", NOW)
    assert [c.state for c in rows] == [state]
    assert len(world.comments) == posted
    if fault == 222:
        assert "https://" not in world.comments[0]["text"]
    if fault in (9, 14):
        assert paused is not None
        # After the pause the deferred comment goes out, once.
        later = NOW + timedelta(hours=settings.vk.captcha_pause_hours, minutes=1)
        _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(hours=1))
        assert world.comments == []  # still paused
        _cycle(settings, sessions, gateway, vision, now=later)
        _cycle(settings, sessions, gateway, vision, now=later + timedelta(minutes=5))
        assert len(world.comments) == 1


def test_crash_after_recording_the_comment_sends_it_once(
    world, settings, sessions, gateway, vision
):
    """A crash between writing the comment row and hearing back from VK: the restart retries
    with the same guid, and VK (the fake honours guid) keeps one comment."""
    world.add_post(
        LOST, text="Пропала собака, Москва", date=_ts(20), photos=[animal_jpeg("ryzhik")]
    )
    world.add_post(
        FOUND, text="Нашли собаку, Москва", date=_ts(1), photos=[animal_jpeg("ryzhik", shift=2)]
    )
    world.inject_fault("wall.createComment", "timeout", times=None)
    _cycle(settings, sessions, gateway, vision)
    with storage.session_scope(sessions) as session:
        assert [c.state for c in store.list_comments(session)] == [store.CommentState.PENDING]
    world.clear_faults()
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(minutes=5))
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(minutes=10))
    assert len(world.comments) == 1
    with storage.session_scope(sessions) as session:
        assert [c.state for c in store.list_comments(session)] == [store.CommentState.POSTED]


def test_index_survives_restart_and_is_rebuilt_when_lost(
    world, settings, sessions, gateway, vision
):
    world.add_post(
        LOST, text="Пропала собака, Москва", date=_ts(20), photos=[animal_jpeg("ryzhik")]
    )
    _cycle(settings, sessions, gateway, vision)
    index_dir = settings.index_dir
    assert any(index_dir.rglob("manifest.json"))
    for manifest in index_dir.rglob("manifest.json"):
        manifest.write_text("{broken")
    world.add_post(
        FOUND, text="Нашли собаку, Москва", date=_ts(1), photos=[animal_jpeg("ryzhik", shift=2)]
    )
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(minutes=5))
    assert len(world.comments) == 1


def test_a_corrupt_photo_does_not_stop_the_others(world, settings, sessions, gateway, vision):
    world.add_post(
        LOST, text="Пропала собака, Москва", date=_ts(20), photos=[b"not an image at all"]
    )
    world.add_post(
        LOST, text="Пропала собака, Москва", date=_ts(19), photos=[animal_jpeg("ryzhik")]
    )
    world.add_post(
        FOUND, text="Нашли собаку, Москва", date=_ts(1), photos=[animal_jpeg("ryzhik", shift=2)]
    )
    _cycle(settings, sessions, gateway, vision)
    assert len(world.comments) == 1


def test_a_post_without_animals_says_so_when_done(world, settings, sessions, gateway, vision):
    post_id = world.add_post(
        LOST, text="Пропала собака, Москва, листовка", date=_ts(3), photos=[poster_jpeg()]
    )
    _cycle(settings, sessions, gateway, vision)
    with storage.session_scope(sessions) as session:
        post = storage.get_post(session, -LOST, post_id)
    assert post.state.value == "done"
    assert post.error == "no animal found in the post's photos"


def test_shadow_mode_records_what_would_be_said(world, settings, sessions, gateway, vision):
    with storage.session_scope(sessions) as session:
        storage.upsert_group(
            session, vk_id=FOUND, screen_name=f"g{FOUND}", title="g", now=NOW, shadow_mode=True
        )
    world.add_post(
        LOST, text="Пропала собака, Москва", date=_ts(20), photos=[animal_jpeg("ryzhik")]
    )
    world.add_post(
        FOUND, text="Нашли собаку, Москва", date=_ts(1), photos=[animal_jpeg("ryzhik", shift=2)]
    )
    _cycle(settings, sessions, gateway, vision)
    with storage.session_scope(sessions) as session:
        rows = store.list_comments(session)
    assert world.comments == []
    assert [c.state for c in rows] == [store.CommentState.SHADOW]
    assert f"https://vk.com/wall-{LOST}_" in rows[0].text


def test_a_post_edited_into_found_moves_its_animal_to_the_found_partition(
    world, settings, sessions, gateway, vision
):
    lost = world.add_post(
        LOST, text="Пропала собака, Москва", date=_ts(30), photos=[animal_jpeg("ryzhik")]
    )
    wrong = world.add_post(
        FOUND, text="Пропала собака, Москва", date=_ts(5), photos=[animal_jpeg("ryzhik", shift=3)]
    )
    _cycle(settings, sessions, gateway, vision)
    assert world.comments == []  # two lost posts never match
    world.edit_post(FOUND, wrong, text="Нашли собаку у метро, Москва, ищем хозяев", edited=_ts(1))
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(minutes=5))
    assert len(world.comments) == 1
    assert f"wall-{LOST}_{lost}" in world.comments[0]["text"]
    # After a restart, the saved index and a rebuild from the database agree.
    restarted = Pipeline(settings, sessions, gateway, vision=vision)
    loaded = {info.key: info.count for info in restarted.index.partitions()}
    rebuilt = {info.key: info.count for info in restarted.rebuild_index().partitions()}
    assert loaded == rebuilt


def test_a_post_edited_into_an_advert_leaves_the_index(world, settings, sessions, gateway, vision):
    post_id = world.add_post(
        LOST, text="Пропала собака, Москва", date=_ts(30), photos=[animal_jpeg("sharik")]
    )
    _cycle(settings, sessions, gateway, vision)
    world.edit_post(LOST, post_id, text="Продам корм для собак, доставка по Москве", edited=_ts(1))
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(minutes=5))
    world.add_post(
        FOUND, text="Нашли собаку, Москва", date=_ts(0.5), photos=[animal_jpeg("sharik", shift=2)]
    )
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(minutes=10))
    assert world.comments == []


def test_catching_up_saves_an_index_that_missed_vectors_before_a_crash(
    world, settings, sessions, gateway, vision
):
    """Killed between a database commit and the index save: `run` catches the saved index up
    at start-up, even when no post is left to process."""
    from index import FaissIndex

    world.add_post(LOST, text="Пропала собака, Москва", date=_ts(30), photos=[animal_jpeg("bobik")])
    _cycle(settings, sessions, gateway, vision)
    first = Pipeline(settings, sessions, gateway, vision=vision)
    directory = first._index_path(vision.embedder.model_id)
    stale = FaissIndex.load(directory)
    (animal_id,) = [a for a in range(1, 100) if a in stale]
    stale.remove([animal_id])
    stale.save(directory)
    assert len(FaissIndex.load(directory)) == 0

    Pipeline(settings, sessions, gateway, vision=vision).catch_up_index()
    saved = FaissIndex.load(directory)
    assert len(saved) == 1 and animal_id in saved
