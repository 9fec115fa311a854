"""Reading walls: the `execute` batch, single pages, and parsing posts as real VK sends them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.fakevk import FakeVkServer
from bot.vk._parse import best_photo, parse_post, parse_wall_page
from bot.vk.errors import GroupAccessError, MalformedResponseError, MethodPausedError
from bot.vk.gateway import VkApiGateway
from bot.vk.models import WallPage, WallRequest
from tests.bot.fakevk_fixtures import jpeg_bytes

T0 = 1_700_000_000


def _example(shared_dir: Path) -> dict[str, Any]:
    path = shared_dir / "data" / "text" / "vk_wall_get_example.json"
    return json.loads(path.read_text(encoding="utf-8"))["response"]


def test_execute_batch_of_25_walls_with_failing_walls(
    fake_vk: FakeVkServer, gateway: VkApiGateway
) -> None:
    for gid in range(1, 26):
        fake_vk.add_group(gid, f"group{gid}", f"Группа {gid}", is_closed=int(gid == 7))
        for n in range(gid % 4 + 1):
            fake_vk.add_post(gid, text=f"пост {n} в группе {gid}", date=T0 + n)
    fake_vk.inject_fault("wall.get", 29, owner_id=-13)
    requests_ = [WallRequest(owner_id=-gid, count=100) for gid in range(1, 26)]

    pages = gateway.fetch_walls(requests_)

    assert set(pages) == {-gid for gid in range(1, 26)}
    assert isinstance(pages[-7], GroupAccessError)
    assert pages[-7].code == 15
    assert isinstance(pages[-13], MethodPausedError)
    for gid in set(range(1, 26)) - {7, 13}:
        page = pages[-gid]
        assert isinstance(page, WallPage)
        assert page.count == gid % 4 + 1
        assert page.posts[0].text == f"пост {gid % 4} в группе {gid}"
    assert fake_vk.calls["execute"] == 1
    assert fake_vk.execute_wall_gets == 25
    assert gateway.calls_today["execute"] == 1
    assert gateway.calls_today["wall.get"] == 25


def test_execute_respects_offset_and_count(fake_vk: FakeVkServer, gateway: VkApiGateway) -> None:
    fake_vk.add_group(1, "a", "A")
    for n in range(5):
        fake_vk.add_post(1, text=f"n{n}", date=T0 + n)
    page = gateway.fetch_walls([WallRequest(owner_id=-1, offset=1, count=2)])[-1]
    assert isinstance(page, WallPage)
    assert page.count == 5
    assert [p.text for p in page.posts] == ["n3", "n2"]


def test_execute_refuses_oversized_or_duplicate_batches(gateway: VkApiGateway) -> None:
    with pytest.raises(ValueError, match="limit is 25"):
        gateway.fetch_walls([WallRequest(owner_id=-n) for n in range(1, 27)])
    with pytest.raises(ValueError, match="once per execute"):
        gateway.fetch_walls([WallRequest(owner_id=-1), WallRequest(owner_id=-1)])
    assert gateway.fetch_walls([]) == {}


def test_whole_execute_failure_raises(fake_vk: FakeVkServer, gateway: VkApiGateway) -> None:
    fake_vk.add_group(1, "a", "A")
    fake_vk.inject_fault("execute", "not_json")
    with pytest.raises(MalformedResponseError):
        gateway.fetch_walls([WallRequest(owner_id=-1)])


def test_fetch_wall_puts_pinned_first_then_newest(
    fake_vk: FakeVkServer, gateway: VkApiGateway
) -> None:
    fake_vk.add_group(1, "a", "A")
    fake_vk.add_post(1, text="правила", date=T0 - 1000, is_pinned=True)
    fake_vk.add_post(1, text="старый", date=T0)
    fake_vk.add_post(1, text="новый", date=T0 + 60, marked_as_ads=True, can_comment=False)
    page = gateway.fetch_wall(-1)
    assert [p.text for p in page.posts] == ["правила", "новый", "старый"]
    pinned, newest, _ = page.posts
    assert pinned.is_pinned and not newest.is_pinned
    assert newest.marked_as_ads and not newest.can_comment
    assert newest.date == datetime.fromtimestamp(T0 + 60, tz=UTC)


def test_reposts_and_edits_through_the_fake(fake_vk: FakeVkServer, gateway: VkApiGateway) -> None:
    fake_vk.add_group(1, "src", "Источник")
    fake_vk.add_group(2, "dst", "Репостер")
    original = fake_vk.add_post(1, text="Пропал пёс", date=T0, photos=[jpeg_bytes(120, 80)])
    repost = fake_vk.add_post(2, text="Помогите!", date=T0 + 5, repost_of=(1, original))
    fake_vk.edit_post(2, repost, text="Помогите, пожалуйста!", edited=T0 + 50)
    post = gateway.fetch_wall(-2).posts[0]
    assert (post.owner_id, post.post_id) == (-2, repost)
    assert (post.origin_owner_id, post.origin_post_id) == (-1, original)
    assert post.text == "Помогите, пожалуйста!\n\nПропал пёс"
    assert post.edited == datetime.fromtimestamp(T0 + 50, tz=UTC)
    assert len(post.photos) == 1
    assert post.photos[0].url == fake_vk.photo_urls(1, original)[0]
    assert (post.photos[0].width, post.photos[0].height) == (120, 80)


@pytest.mark.shared
def test_parse_real_example(shared_dir: Path) -> None:
    response = _example(shared_dir)
    page = parse_wall_page(-92601599, response)
    assert page.count == 15710
    assert len(page.posts) == 10
    pinned = page.posts[0]
    assert pinned.is_pinned and pinned.post_id == 64389
    assert (pinned.origin_owner_id, pinned.origin_post_id) == (-198498843, 15115)
    assert "Следопыт" in pinned.text
    assert pinned.photos == ()  # the original only has a link preview, not a photo
    assert pinned.can_comment
    assert pinned.date == datetime.fromtimestamp(1718297713, tz=UTC)
    by_id = {p.post_id: p for p in page.posts}
    three = by_id[64550]
    raw = next(item for item in response["items"] if item["id"] == 64550)
    assert [p.url for p in three.photos] == [
        a["photo"]["orig_photo"]["url"] for a in raw["attachments"]
    ]
    assert three.photos[0].width == 1620 and three.photos[0].height == 2160
    assert not any(p.marked_as_ads for p in page.posts)
    assert all(p.date.tzinfo is UTC for p in page.posts)


@pytest.mark.shared
def test_best_photo_without_orig_photo_is_the_largest_size(shared_dir: Path) -> None:
    item = next(i for i in _example(shared_dir)["items"] if i["id"] == 64555)
    photo = copy.deepcopy(item["attachments"][0]["photo"])
    del photo["orig_photo"]
    ref = best_photo(photo)
    assert ref is not None
    w_size = next(s for s in photo["sizes"] if s["type"] == "w")
    assert ref.url == w_size["url"] and (ref.width, ref.height) == (1080, 1920)


def test_best_photo_falls_back_to_letters_when_sizes_have_no_dimensions() -> None:
    photo = {
        "id": 1,
        "owner_id": -5,
        "sizes": [
            {"type": letter, "width": 0, "height": 0, "url": f"https://sun9.userapi.com/{letter}"}
            for letter in "smxyz"
        ],
    }
    ref = best_photo(photo)
    assert ref is not None and ref.url.endswith("/z")
    assert best_photo({"id": 1, "owner_id": -5, "sizes": []}) is None


@pytest.mark.shared
def test_fake_posts_have_the_real_shape(
    shared_dir: Path, fake_vk: FakeVkServer, gateway: VkApiGateway
) -> None:
    real = next(i for i in _example(shared_dir)["items"] if i["id"] == 64555)
    fake_vk.add_group(1, "a", "A")
    fake_vk.add_post(1, text="x", photos=[jpeg_bytes()])
    raw = fake_vk._post_json(fake_vk._posts[1][1])
    optional = {"donut_miniapp_url", "reactions", "carousel_offset"}
    assert set(real) - set(raw) <= optional
    real_photo, fake_photo = real["attachments"][0]["photo"], raw["attachments"][0]["photo"]
    assert set(real_photo) == set(fake_photo)
    assert set(real["comments"]) == set(raw["comments"])
    assert {s["type"] for s in fake_photo["sizes"]} >= {"s", "m", "x", "y", "z", "w"}


def test_malformed_post_is_a_malformed_response_error() -> None:
    with pytest.raises(MalformedResponseError):
        parse_post({"id": 1, "owner_id": -1, "text": "нет даты"})
    with pytest.raises(MalformedResponseError):
        parse_wall_page(-1, {"count": 1})
