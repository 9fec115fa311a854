"""Polling against the fake VK server over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy.orm import Session, sessionmaker

from bot import storage
from bot.config import PollingSettings, Settings, VkSettings
from bot.fakevk import FakeVkServer
from bot.polling import GroupStatus, PollReport, poll_cycle
from bot.storage import PhotoState, PostState
from bot.vk.gateway import VkApiGateway
from tests.bot._images import jpeg, png_bomb, reencoded

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
T0 = int(NOW.timestamp())


@pytest.fixture
def settings(vk_settings: VkSettings, tmp_path: Path) -> Settings:
    return Settings(vk=vk_settings, var_dir=tmp_path / "var")


class World:
    """The fake VK plus the database, and a poll helper."""

    def __init__(self, vk: FakeVkServer, gateway: VkApiGateway, sessions, settings: Settings):
        self.vk = vk
        self.gateway = gateway
        self.sessions: sessionmaker[Session] = sessions
        self.settings = settings

    def group(self, vk_id: int, name: str | None = None) -> None:
        name = name or f"group{vk_id}"
        self.vk.add_group(vk_id, name, f"Группа {vk_id}")
        with storage.session_scope(self.sessions) as session:
            storage.upsert_group(session, vk_id=vk_id, screen_name=name, title=name, now=NOW)

    def post(self, vk_id: int, age_minutes: int = 60, **fields) -> int:
        fields.setdefault("text", "Пропала собака")
        return self.vk.add_post(vk_id, date=T0 - age_minutes * 60, **fields)

    def poll(self, now: datetime = NOW, settings: Settings | None = None) -> PollReport:
        return poll_cycle(self.sessions, self.gateway, settings or self.settings, now=now)

    def db_group(self, vk_id: int) -> storage.Group:
        with storage.session_scope(self.sessions) as session:
            group = storage.get_group(session, vk_id)
        assert group is not None
        return group

    def post_row(self, vk_id: int, post_id: int) -> storage.Post | None:
        with storage.session_scope(self.sessions) as session:
            return storage.get_post(session, -vk_id, post_id)

    def photos(self, vk_id: int, post_id: int) -> list[storage.Photo]:
        with storage.session_scope(self.sessions) as session:
            post = storage.get_post(session, -vk_id, post_id)
            assert post is not None
            return storage.photos_of_post(session, post.id)

    def count(self) -> tuple[int, int]:
        with storage.session_scope(self.sessions) as session:
            return storage.count_posts(session), storage.count_photos(session)


@pytest.fixture
def world(fake_vk, gateway, sessions, settings) -> World:
    return World(fake_vk, gateway, sessions, settings)


# --- incremental reading ----------------------------------------------------------------


def test_first_poll_stores_posts_and_photos_then_only_new_ones(world: World) -> None:
    world.group(1)
    first = [world.post(1, age_minutes=100 - i, photos=[jpeg(i)]) for i in range(3)]
    report = world.poll()
    assert report.ok and report.groups_ok == 1
    assert (report.new_posts, report.photos_stored) == (3, 3)
    assert world.db_group(1).cursor_post_id == max(first)
    photo = world.photos(1, first[0])[0]
    assert photo.state is PhotoState.STORED and photo.file_path is not None
    assert photo.file_path.read_bytes() == jpeg(0)
    assert photo.file_path.is_relative_to(world.settings.photos_dir)

    calls_before = world.vk.calls["execute"]
    again = world.poll(NOW + timedelta(minutes=15))
    assert (again.new_posts, again.photos_stored, again.edited_posts) == (0, 0, 0)
    assert world.vk.calls["execute"] == calls_before + 1

    newest = world.post(1, age_minutes=1, photos=[jpeg(10), jpeg(11)])
    third = world.poll(NOW + timedelta(minutes=30))
    assert (third.new_posts, third.photos_stored) == (1, 2)
    assert world.db_group(1).cursor_post_id == newest
    assert world.count() == (4, 5)


def test_pinned_old_post_neither_stops_nor_restarts_the_scan(world: World) -> None:
    world.group(1)
    pinned = world.post(1, age_minutes=5000, is_pinned=True, text="Правила группы")
    world.post(1, age_minutes=50)
    assert world.poll().new_posts == 2
    newer = [world.post(1, age_minutes=10 - i) for i in range(2)]
    report = world.poll(NOW + timedelta(minutes=15))
    assert report.new_posts == 2  # the pinned post (first on the wall) did not stop it
    assert world.db_group(1).cursor_post_id == max(newer)
    assert world.post_row(1, pinned).is_pinned


def test_pages_further_while_every_post_is_new(world: World, settings: Settings) -> None:
    world.group(1)
    ids = [world.post(1, age_minutes=500 - i) for i in range(12)]
    small_pages = settings.model_copy(update={"polling": PollingSettings(page_size=5)})
    report = world.poll(settings=small_pages)
    assert report.new_posts == 12 and report.groups[0].pages == 3
    assert world.db_group(1).cursor_post_id == max(ids)


def test_max_pages_bounds_a_long_backlog(world: World, settings: Settings) -> None:
    world.group(1)
    ids = [world.post(1, age_minutes=500 - i) for i in range(12)]
    capped = settings.model_copy(
        update={"polling": PollingSettings(page_size=5, max_pages=2)}
    )
    report = world.poll(settings=capped)
    assert report.new_posts == 10 and report.groups[0].pages == 2
    assert world.post_row(1, ids[0]) is None and world.post_row(1, ids[-1]) is not None


def test_edits_within_48_hours_make_a_post_pending_again(world: World) -> None:
    world.group(1)
    recent = world.post(1, age_minutes=300)
    old = world.post(1, age_minutes=100)
    world.poll()
    with storage.session_scope(world.sessions) as session:
        for post_id in (recent, old):
            post = storage.get_post(session, -1, post_id)
            storage.set_post_state(session, post.id, PostState.DONE, now=NOW)
    later = NOW + timedelta(hours=50)
    world.vk.edit_post(1, recent, text="Нашлась, спасибо!", edited=int(later.timestamp()) - 3600)
    world.vk.edit_post(1, old, text="старая правка", edited=T0 - 60)  # 50 h before `later`
    report = world.poll(later)
    assert report.edited_posts == 1 and report.new_posts == 0
    edited = world.post_row(1, recent)
    assert edited.state is PostState.PENDING and edited.text == "Нашлась, спасибо!"
    assert world.post_row(1, old).state is PostState.DONE
    assert world.poll(later + timedelta(minutes=15)).edited_posts == 0  # edited did not grow


def test_ads_are_skipped_and_not_stored(world: World) -> None:
    world.group(1)
    ad = world.post(1, age_minutes=20, marked_as_ads=True, text="Корм со скидкой")
    normal = world.post(1, age_minutes=10)
    report = world.poll()
    assert (report.new_posts, report.skipped_ads) == (1, 1)
    assert world.post_row(1, ad) is None and world.post_row(1, normal) is not None
    assert world.db_group(1).cursor_post_id == max(ad, normal)


def test_reposts_in_other_groups_join_the_original_case(world: World) -> None:
    for vk_id in (1, 2, 3):
        world.group(vk_id)
    original = world.post(1, age_minutes=60, photos=[jpeg(1)])
    reposts = [world.post(g, age_minutes=30, repost_of=(1, original)) for g in (2, 3)]
    report = world.poll()
    assert report.new_posts == 3
    cases = {world.post_row(1, original).case_id} | {
        world.post_row(g, p).case_id for g, p in zip((2, 3), reposts, strict=True)
    }
    assert len(cases) == 1
    # the repost carries the original's photo: one photo row, downloaded once
    assert world.vk.calls["photo"] == 1 and report.photos_stored == 1


# --- photos -----------------------------------------------------------------------------


def test_identical_and_near_identical_photos_across_posts(world: World) -> None:
    world.group(1)
    picture = jpeg(7, size=(128, 96))
    a = world.post(1, age_minutes=30, photos=[picture])
    b = world.post(1, age_minutes=20, photos=[picture, jpeg(8)])
    c = world.post(1, age_minutes=10, photos=[reencoded(picture)])
    report = world.poll()
    assert report.photos_identical == 1 and report.photos_near_duplicate == 1
    (pa,) = world.photos(1, a)
    pb = world.photos(1, b)
    (pc,) = world.photos(1, c)
    assert pb[0].id == pa.id  # the same bytes are one photo
    assert pc.id != pa.id and pc.duplicate_of == pa.id and pc.sha256 != pa.sha256
    files = [p for p in world.settings.photos_dir.rglob("*") if p.is_file()]
    assert len(files) == 3 and not [p for p in files if p.name.startswith(".tmp")]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("corrupt", "not a decodable image"),
        ("not_image", "not_image"),
        ("404", "http_404"),
        ("huge", "too_large"),
    ],
)
def test_a_bad_photo_is_recorded_and_never_stops_the_cycle(world: World, fault, reason) -> None:
    world.group(1)
    post = world.post(1, age_minutes=10, photos=[jpeg(1), jpeg(2)])
    bad_url = world.vk.photo_urls(1, post)[0]
    world.vk.inject_fault(bad_url, fault, times=None)
    report = world.poll()
    assert report.ok and report.photos_failed == 1 and report.photos_stored == 1
    bad, good = world.photos(1, post)
    assert bad.state is PhotoState.FAILED and reason in bad.error
    assert good.state is PhotoState.STORED


def test_decompression_bomb_is_refused(world: World, settings: Settings) -> None:
    world.group(1)
    world.post(1, age_minutes=10, photos=[png_bomb(3000)])
    strict = settings.model_copy(
        update={"vk": settings.vk.model_copy(update={"max_photo_pixels": 1_000_000})}
    )
    report = world.poll(settings=strict)
    assert report.photos_failed == 1
    with storage.session_scope(world.sessions) as session:
        photo = storage.get_photo(session, 1)
    assert photo.state is PhotoState.FAILED and "3000x3000" in photo.error


def test_transient_photo_failure_is_retried_next_cycle(world: World) -> None:
    world.group(1)
    post = world.post(1, age_minutes=10, photos=[jpeg(1)])
    world.vk.inject_fault("photo", "http500", times=None)
    first = world.poll()
    assert first.photos_retry_later == 1 and first.photos_failed == 0
    (photo,) = world.photos(1, post)
    assert photo.state is PhotoState.PENDING and photo.attempts == 1
    world.vk.clear_faults()
    second = world.poll(NOW + timedelta(minutes=15))
    assert second.photos_stored == 1
    assert world.photos(1, post)[0].state is PhotoState.STORED


# --- the VK error policy ----------------------------------------------------------------


@pytest.mark.parametrize("code", [5, 17, 27])
def test_dead_token_stops_polling(world: World, code: int) -> None:
    world.group(1)
    world.group(2)
    world.post(1)
    world.vk.inject_fault("execute", code, times=None)
    report = world.poll()
    assert not report.ok and "token" in report.token_error
    assert world.vk.token not in report.token_error
    assert report.new_posts == 0 and world.db_group(1).cursor_post_id == 0
    assert {g.status for g in report.groups} == {GroupStatus.NOT_POLLED}


@pytest.mark.parametrize("code", [9, 14])
def test_flood_control_pauses_writes(world: World, code: int) -> None:
    world.group(1)
    world.post(1)
    world.vk.inject_fault("execute", code)
    report = world.poll()
    assert report.groups_failed == 1
    with storage.session_scope(world.sessions) as session:
        pause = storage.active_pause(session, storage.WRITES_SCOPE, NOW)
        assert pause is not None
        assert pause.until == NOW + timedelta(hours=world.settings.vk.captcha_pause_hours)
    assert world.poll(NOW + timedelta(minutes=15)).new_posts == 1  # reads go on


@pytest.mark.parametrize("code", [15, 18, 19, 30, 203])
def test_closed_group_is_marked_inaccessible_and_rechecked_daily(world: World, code: int) -> None:
    world.group(1)
    world.group(2)
    world.post(1)
    world.post(2)
    world.vk.inject_fault("wall.get", code, owner_id=-1)
    report = world.poll()
    assert report.groups_inaccessible == 1 and report.groups_ok == 1 and report.new_posts == 1
    closed = world.db_group(1)
    assert not closed.accessible and closed.next_check_at == NOW + timedelta(hours=24)
    assert world.poll(NOW + timedelta(hours=1)).groups_due == 1  # skipped until the re-check
    recheck = world.poll(NOW + timedelta(hours=25))
    assert recheck.groups_due == 2 and recheck.new_posts == 1
    assert world.db_group(1).accessible


def test_rate_limit_29_pauses_the_method_for_a_day(world: World) -> None:
    world.group(1)
    world.post(1)
    world.vk.inject_fault("execute", 29)
    report = world.poll()
    assert not report.ok and "paused" in report.paused
    calls = world.vk.calls["execute"]
    assert world.poll(NOW + timedelta(hours=23)).paused is not None
    assert world.vk.calls["execute"] == calls  # no call while paused
    assert world.poll(NOW + timedelta(hours=25)).new_posts == 1


@pytest.mark.parametrize("code", [100, 113])
def test_request_bugs_are_logged_as_errors(world: World, code: int, caplog) -> None:
    world.group(1)
    world.group(2)
    world.post(2)
    world.vk.inject_fault("wall.get", code, owner_id=-1)
    with caplog.at_level(logging.ERROR, logger="petmatch"):
        report = world.poll()
    assert report.bugs and report.groups_failed == 1 and report.new_posts == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "method=wall.get" in errors[0].getMessage()
    assert f"code={code}" in errors[0].getMessage()
    assert world.db_group(1).last_error.startswith("bug:")


def test_transient_failures_are_retried_next_cycle(world: World) -> None:
    world.group(1)
    world.group(2)
    world.post(1)
    world.post(2)
    world.vk.inject_fault("wall.get", 10, owner_id=-1)  # inside execute, one wall only
    report = world.poll()
    assert report.groups_failed == 1 and report.groups_ok == 1 and report.new_posts == 1
    assert world.db_group(1).cursor_post_id == 0 and world.db_group(1).last_error
    world.vk.inject_fault("execute", "http500", times=None)  # the whole batch, retries exhausted
    assert world.poll(NOW + timedelta(minutes=15)).groups_failed == 2
    world.vk.clear_faults()
    assert world.poll(NOW + timedelta(minutes=30)).new_posts == 1
    assert world.db_group(1).last_error is None


def test_vk_calls_are_counted_per_day(world: World) -> None:
    for vk_id in range(1, 31):  # 30 walls: two execute batches
        world.group(vk_id)
    report = world.poll()
    assert report.vk_calls == {"execute": 2, "wall.get": 30}
    world.poll(NOW + timedelta(minutes=15))
    with storage.session_scope(world.sessions) as session:
        counts = {c.method: c.count for c in storage.vk_calls_on(session, NOW.date())}
    assert counts == {"execute": 4, "wall.get": 60}


def test_no_network_outside_loopback(settings: Settings) -> None:
    assert settings.vk.photo_hosts == ("127.0.0.1",)
    assert requests.utils.urlparse(settings.vk.api_url).hostname == "127.0.0.1"
