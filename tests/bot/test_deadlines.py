"""A server that trickles its answer one byte at a time never keeps a call or a photo waiting
past its overall deadline; per-wall error codes inside `execute` act like their top-level
twins. On the fake VK over real HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import storage
from bot.config import Settings
from bot.fakevk import FakeVkServer
from bot.polling import GroupStatus, PollReport, poll_cycle
from bot.vk.errors import PhotoDownloadError, TransientVkError
from bot.vk.models import WallRequest
from tests.bot.fakevk_fixtures import jpeg_bytes, make_vk_settings, open_gateway

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DEADLINE = 0.6


@pytest.fixture
def trickling_vk(fake_vk: FakeVkServer) -> FakeVkServer:
    """One byte every 50 ms: each read succeeds well inside the 0.5 s read timeout."""
    fake_vk.trickle_seconds = 0.05
    fake_vk.add_group(1, "group1", "Группа 1")
    fake_vk.add_post(1, text="Пропала собака " * 20, date=int(NOW.timestamp()) - 60)
    return fake_vk


def _deadline_settings(vk: FakeVkServer, **overrides: object):
    return make_vk_settings(
        vk,
        max_retries=0,
        call_deadline_seconds=DEADLINE,
        photo_deadline_seconds=DEADLINE,
        **overrides,
    )


def test_a_trickling_api_answer_ends_at_the_deadline(trickling_vk: FakeVkServer) -> None:
    trickling_vk.inject_fault("execute", "trickle", times=None)
    with open_gateway(_deadline_settings(trickling_vk)) as gateway:
        started = time.monotonic()
        with pytest.raises(TransientVkError, match="deadline"):
            gateway.fetch_walls([WallRequest(owner_id=-1)])
        elapsed = time.monotonic() - started
    assert elapsed < DEADLINE + 1.0  # the body alone would take minutes


@pytest.mark.parametrize("fault", ["trickle", "trickle_head"])
def test_a_trickling_api_answer_or_head_ends_at_the_deadline(
    trickling_vk: FakeVkServer, fault: str
) -> None:
    trickling_vk.inject_fault("execute", fault, times=None)
    with open_gateway(_deadline_settings(trickling_vk)) as gateway:
        started = time.monotonic()
        with pytest.raises(TransientVkError, match="deadline"):
            gateway.fetch_walls([WallRequest(owner_id=-1)])
        elapsed = time.monotonic() - started
    assert elapsed < DEADLINE + 1.0


def test_a_photo_whose_head_trickles_ends_at_the_deadline(trickling_vk: FakeVkServer) -> None:
    post = trickling_vk.add_post(1, text="Нашли кошку", photos=[jpeg_bytes()])
    (url,) = trickling_vk.photo_urls(1, post)
    trickling_vk.inject_fault("photo", "trickle_head", times=None)
    with open_gateway(_deadline_settings(trickling_vk)) as gateway:
        started = time.monotonic()
        with pytest.raises(PhotoDownloadError) as caught:
            gateway.download_photo(url)
        elapsed = time.monotonic() - started
    assert caught.value.reason == "timeout"
    assert elapsed < DEADLINE + 1.0


def test_a_trickling_photo_ends_at_the_deadline(trickling_vk: FakeVkServer) -> None:
    post = trickling_vk.add_post(1, text="Нашли кошку", photos=[jpeg_bytes()])
    (url,) = trickling_vk.photo_urls(1, post)
    trickling_vk.inject_fault("photo", "trickle", times=None)
    with open_gateway(_deadline_settings(trickling_vk)) as gateway:
        started = time.monotonic()
        with pytest.raises(PhotoDownloadError, match="deadline") as caught:
            gateway.download_photo(url)
        elapsed = time.monotonic() - started
    assert caught.value.reason == "timeout"  # transient: retried on a later cycle
    assert elapsed < DEADLINE + 1.0


def test_a_trickling_server_never_holds_a_poll_cycle(
    trickling_vk: FakeVkServer, sessions, tmp_path: Path
) -> None:
    post = trickling_vk.add_post(1, text="Нашли кошку", photos=[jpeg_bytes()])
    with storage.session_scope(sessions) as session:
        storage.upsert_group(session, vk_id=1, screen_name="group1", title="g", now=NOW)
    settings = Settings(vk=_deadline_settings(trickling_vk), var_dir=tmp_path / "var")
    trickling_vk.inject_fault("photo", "trickle", times=None)
    with open_gateway(settings.vk) as gateway:
        started = time.monotonic()
        report = poll_cycle(sessions, gateway, settings, now=NOW)
        assert report.photos_retry_later == 1 and report.new_posts == 2
        trickling_vk.clear_faults()
        trickling_vk.inject_fault("execute", "trickle", times=None)
        later = poll_cycle(sessions, gateway, settings, now=NOW + timedelta(minutes=15))
        elapsed = time.monotonic() - started
    assert later.groups_failed == 1 and "deadline" in (later.groups[0].error or "")
    assert elapsed < 4 * DEADLINE + 3.0
    with storage.session_scope(sessions) as session:
        stored = storage.get_post(session, -1, post)
    assert stored is not None


def _poll_with_fault(
    fake_vk: FakeVkServer, sessions, tmp_path: Path, *, nested: bool, code: int
) -> PollReport:
    """Two groups, one wall per `execute`; group 1's wall fails with `code`, either as the
    whole `execute` (top level) or as its `wall.get` inside it (nested)."""
    for vk_id in (1, 2):
        fake_vk.add_group(vk_id, f"group{vk_id}", "g")
        fake_vk.add_post(vk_id, text="Пропала собака", date=int(NOW.timestamp()) - 60)
        with storage.session_scope(sessions) as session:
            storage.upsert_group(
                session, vk_id=vk_id, screen_name=f"group{vk_id}", title="g", now=NOW
            )
    if nested:
        fake_vk.inject_fault("wall.get", code, times=None, owner_id=-1)
    else:
        fake_vk.inject_fault("execute", code, times=1)  # the first batch is group 1's
    settings = Settings(vk=make_vk_settings(fake_vk, walls_per_execute=1), var_dir=tmp_path / "var")
    with open_gateway(settings.vk) as gateway:
        return poll_cycle(sessions, gateway, settings, now=NOW)


def _summary(report: PollReport) -> tuple:
    return (
        report.ok,
        report.token_error is not None,
        report.new_posts,
        tuple((g.vk_id, g.status) for g in report.groups),
    )


@pytest.mark.parametrize("code", [5, 18, 30])
def test_per_wall_codes_inside_execute_act_like_their_top_level_twins(
    sessions, tmp_path: Path, code: int
) -> None:
    summaries = []
    for nested in (False, True):
        with FakeVkServer() as vk:
            _truncate(sessions)
            report = _poll_with_fault(
                vk, sessions, tmp_path / str(nested), nested=nested, code=code
            )
            assert vk.token not in str(report.to_dict())
        summaries.append(_summary(report))
    assert summaries[0] == summaries[1]
    if code == 5:
        assert summaries[1] == (
            False,
            True,
            0,
            ((1, GroupStatus.NOT_POLLED), (2, GroupStatus.NOT_POLLED)),
        )
    else:
        assert summaries[1] == (
            True,
            False,
            1,
            ((1, GroupStatus.INACCESSIBLE), (2, GroupStatus.OK)),
        )


def _truncate(sessions) -> None:
    """Start each twin from no groups and no posts."""
    from sqlalchemy import delete

    from bot.storage._schema import CaseRow, GroupRow, PhotoRow, PostPhotoRow, PostRow

    with storage.session_scope(sessions) as session:
        for row in (PostPhotoRow, PostRow, CaseRow, PhotoRow, GroupRow):
            session.execute(delete(row))
