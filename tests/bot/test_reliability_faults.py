"""Every fault the fake VK can inject, during a full cycle (poll + process) against a world
with lost and found posts: the cycle completes, nothing stored before is lost, the reports
and the database name what failed, and a later clean cycle finishes the work without ever
commenting twice. Fake vision keeps each case fast; SQLite only (the storage contract runs
on both backends elsewhere)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot import storage
from bot.comment_stage import comment_guid
from bot.config import Settings
from bot.fakevk import FakeVkServer
from bot.pipeline import Pipeline, PipelineReport, VisionModels
from bot.polling import GroupStatus, PollReport, poll_cycle
from bot.storage import pipeline as store
from bot.storage.records import PhotoState, PostState
from tests.bot._fake_vision import (
    add_groups,
    animal_jpeg,
    fake_vision,
    pipeline_settings,
    poster_jpeg,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 12:00 in Moscow, outside quiet hours
#: Past every pause the faults can cause (captcha 6 h, method 24 h, inaccessible 24 h).
LATER = NOW + timedelta(hours=25)
LOST, FOUND = 601, 602


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite only here: the fault table is about behaviour, not the backend."""
    path = tmp_path / "petmatch.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def vision() -> VisionModels:
    return fake_vision()


@pytest.fixture
def settings(fake_vk: FakeVkServer, database_url: str, tmp_path: Path) -> Settings:
    return pipeline_settings(fake_vk, database_url, tmp_path / "var")


def _ts(hours_ago: float) -> int:
    return int((NOW - timedelta(hours=hours_ago)).timestamp())


@dataclass
class World:
    fake: FakeVkServer
    lost_ryzhik: int = 0
    found_ryzhik: int = 0
    found_murka: int = 0


@dataclass
class Cycle:
    poll: PollReport
    process: PipelineReport


def _cycle(settings: Settings, sessions: Any, gateway: Any, vision: VisionModels, now: datetime):
    poll = poll_cycle(sessions, gateway, settings, now=now)
    process = Pipeline(settings, sessions, gateway, vision=vision).process_pending(now=now)
    return Cycle(poll, process)


@pytest.fixture
def world(fake_vk: FakeVkServer, sessions: Any) -> World:
    """Two Moscow groups with commenting on. Before the faulty cycle the lost group holds a
    lost dog (ryzhik), a lost dog of another colour and an "other" post; the found posts
    (ryzhik again, and a cat) appear just before the faulty cycle."""
    add_groups(fake_vk, sessions, {LOST: "Москва", FOUND: "Москва"}, now=NOW)
    world = World(fake_vk)
    world.lost_ryzhik = fake_vk.add_post(
        LOST, text="Пропала собака в Москве, рыжая", date=_ts(48), photos=[animal_jpeg("ryzhik")]
    )
    fake_vk.add_post(
        LOST, text="Пропала собака в Москве, синяя", date=_ts(47), photos=[animal_jpeg("sharik")]
    )
    fake_vk.add_post(LOST, text="Отдам котят в добрые руки, Москва", date=_ts(30))
    return world


def _add_found_posts(world: World) -> None:
    world.found_ryzhik = world.fake.add_post(
        FOUND,
        text="Нашли собаку у метро, Москва, ищем хозяев",
        date=_ts(2),
        photos=[poster_jpeg(), animal_jpeg("ryzhik", shift=6)],
    )
    world.found_murka = world.fake.add_post(
        FOUND,
        text="Найдена кошка, Москва, ищем хозяев",
        date=_ts(3),
        photos=[animal_jpeg("murka")],
    )


def _snapshot(sessions: Any) -> dict[str, set[Any]]:
    """Everything stored so far, by natural keys."""
    from bot.storage._pipeline_schema import (
        AnimalRow,
        CommentRow,
        EmbeddingRow,
        MatchRow,
        PostLabelRow,
        SegmentationRow,
    )
    from bot.storage._schema import PhotoRow, PostRow

    with storage.session_scope(sessions) as session:
        return {
            "posts": set(session.execute(select(PostRow.owner_id, PostRow.post_id)).all()),
            "photos": set(
                session.scalars(select(PhotoRow.sha256).where(PhotoRow.state == "stored"))
            ),
            "labels": set(session.scalars(select(PostLabelRow.post_id))),
            "segmentations": set(session.scalars(select(SegmentationRow.photo_id))),
            "animals": set(session.execute(select(AnimalRow.photo_id, AnimalRow.position)).all()),
            "embeddings": set(
                session.execute(select(EmbeddingRow.animal_id, EmbeddingRow.model_id)).all()
            ),
            "matches": set(
                session.execute(select(MatchRow.lost_case_id, MatchRow.found_case_id)).all()
            ),
            "comments": set(session.scalars(select(CommentRow.guid))),
        }


# ---- what each fault must leave behind -----------------------------------------------------


def _groups(cycle: Cycle) -> dict[int, Any]:
    return {g.vk_id: g for g in cycle.poll.groups}


def _walls_failed(status: str = GroupStatus.ERROR, *, code: str | None = None) -> Callable:
    def check(cycle: Cycle, sessions: Any, world: World) -> None:
        groups = _groups(cycle)
        assert {g.status for g in groups.values()} == {status}
        for outcome in groups.values():
            assert outcome.error, outcome
            if code is not None:
                assert code in outcome.error, outcome.error
        with storage.session_scope(sessions) as session:
            for group in storage.list_groups(session):
                assert group.last_error, group
        assert cycle.poll.new_posts == 0

    return check


def _one_wall_failed(status: str, code: str) -> Callable:
    def check(cycle: Cycle, sessions: Any, world: World) -> None:
        groups = _groups(cycle)
        assert groups[LOST].status == GroupStatus.OK
        assert groups[FOUND].status == status
        assert code in (groups[FOUND].error or "")
        with storage.session_scope(sessions) as session:
            assert code in (storage.get_group(session, FOUND).last_error or "")

    return check


def _token_dead(cycle: Cycle, sessions: Any, world: World) -> None:
    assert cycle.poll.token_error is not None and "5" in cycle.poll.token_error
    assert not cycle.poll.ok
    assert {g.status for g in cycle.poll.groups} == {GroupStatus.NOT_POLLED}


def _method_paused(cycle: Cycle, sessions: Any, world: World) -> None:
    assert cycle.poll.paused is not None and "paused" in cycle.poll.paused
    with storage.session_scope(sessions) as session:
        pauses = [
            storage.active_pause(session, storage.method_scope(m), NOW)
            for m in ("execute", "wall.get")
        ]
    assert any(p is not None for p in pauses)


def _writes_paused_and_walls_failed(cycle: Cycle, sessions: Any, world: World) -> None:
    _walls_failed()(cycle, sessions, world)
    with storage.session_scope(sessions) as session:
        assert storage.active_pause(session, storage.WRITES_SCOPE, NOW) is not None


def _comment_state(state: store.CommentState, *, paused: bool = False) -> Callable:
    def check(cycle: Cycle, sessions: Any, world: World) -> None:
        assert cycle.poll.ok and cycle.poll.groups_ok == 2
        assert cycle.process.accepted == 1
        assert cycle.process.comments.get(f"sent:{state.value}") == 1, cycle.process.comments
        with storage.session_scope(sessions) as session:
            rows = store.list_comments(session)
            pause = storage.active_pause(session, storage.WRITES_SCOPE, NOW)
        assert [c.state for c in rows] == [state]
        assert rows[0].reason
        assert (pause is not None) == paused
        if state is not store.CommentState.POSTED:
            assert world.fake.comments == []

    return check


def _photo_failed(final: bool) -> Callable:
    def check(cycle: Cycle, sessions: Any, world: World) -> None:
        assert cycle.poll.ok and cycle.poll.groups_ok == 2
        assert (cycle.poll.photos_failed, cycle.poll.photos_retry_later) == (
            (1, 0) if final else (0, 1)
        )
        with storage.session_scope(sessions) as session:
            post = storage.get_post(session, -FOUND, world.found_murka)
            assert post is not None
            (photo,) = storage.photos_of_post(session, post.id)
        assert photo.error
        assert photo.state is (PhotoState.FAILED if final else PhotoState.PENDING)
        if final:  # the post goes on without the photo, and without animals
            assert post.state is PostState.DONE
            with storage.session_scope(sessions) as session:
                assert store.animals_of_post(session, post.id) == []
        else:  # it waits for its photo
            assert post.state is PostState.PROCESSING and cycle.process.waiting >= 1
        # the other found post still got its comment
        assert len(world.fake.comments) == 1

    return check


@dataclass(frozen=True)
class Case:
    target: str  # a VK method, or "photo:murka" for the found cat's photo
    fault: int | str
    check: Callable[[Cycle, Any, World], None]
    times: int | None = None  # None: the fault lasts the whole faulty cycle
    comments_in_the_end: int = 1
    owner_id: int | None = None


CASES: dict[str, Case] = {
    # walls: the whole `execute` batch fails
    "execute-5": Case("execute", 5, _token_dead),
    "execute-6": Case("execute", 6, _walls_failed(code="6")),
    "execute-9": Case("execute", 9, _writes_paused_and_walls_failed),
    "execute-10": Case("execute", 10, _walls_failed(code="10")),
    "execute-14": Case("execute", 14, _writes_paused_and_walls_failed),
    "execute-15": Case("execute", 15, _walls_failed(GroupStatus.INACCESSIBLE, code="15")),
    "execute-29": Case("execute", 29, _method_paused),
    "execute-http500": Case("execute", "http500", _walls_failed()),
    "execute-http502": Case("execute", "http502", _walls_failed()),
    "execute-timeout": Case("execute", "timeout", _walls_failed()),
    "execute-truncated": Case("execute", "truncated", _walls_failed()),
    "execute-not_json": Case("execute", "not_json", _walls_failed()),
    # walls: one wall inside the batch fails (execute_errors)
    "wall.get-15": Case(
        "wall.get", 15, _one_wall_failed(GroupStatus.INACCESSIBLE, "15"), owner_id=-FOUND
    ),
    "wall.get-6": Case("wall.get", 6, _one_wall_failed(GroupStatus.ERROR, "6"), owner_id=-FOUND),
    "wall.get-10": Case("wall.get", 10, _one_wall_failed(GroupStatus.ERROR, "10"), owner_id=-FOUND),
    # comments
    "comment-5": Case("wall.createComment", 5, _comment_state(store.CommentState.PENDING)),
    "comment-6": Case("wall.createComment", 6, _comment_state(store.CommentState.PENDING)),
    "comment-9": Case(
        "wall.createComment", 9, _comment_state(store.CommentState.DEFERRED, paused=True)
    ),
    "comment-10": Case("wall.createComment", 10, _comment_state(store.CommentState.PENDING)),
    "comment-14": Case(
        "wall.createComment", 14, _comment_state(store.CommentState.DEFERRED, paused=True)
    ),
    "comment-212": Case(
        "wall.createComment",
        212,
        _comment_state(store.CommentState.SKIPPED),
        comments_in_the_end=0,
    ),
    "comment-213": Case(
        "wall.createComment",
        213,
        _comment_state(store.CommentState.SKIPPED),
        comments_in_the_end=0,
    ),
    "comment-222": Case(
        "wall.createComment", 222, _comment_state(store.CommentState.POSTED), times=1
    ),
    "comment-223": Case(
        "wall.createComment",
        223,
        _comment_state(store.CommentState.SKIPPED),
        comments_in_the_end=0,
    ),
    "comment-http500": Case(
        "wall.createComment", "http500", _comment_state(store.CommentState.PENDING)
    ),
    "comment-http502": Case(
        "wall.createComment", "http502", _comment_state(store.CommentState.PENDING)
    ),
    "comment-timeout": Case(
        "wall.createComment", "timeout", _comment_state(store.CommentState.PENDING)
    ),
    "comment-truncated": Case(
        "wall.createComment", "truncated", _comment_state(store.CommentState.PENDING)
    ),
    "comment-not_json": Case(
        "wall.createComment", "not_json", _comment_state(store.CommentState.PENDING)
    ),
    # photos
    "photo-corrupt": Case("photo:murka", "corrupt", _photo_failed(final=True)),
    "photo-huge": Case("photo:murka", "huge", _photo_failed(final=True)),
    "photo-not_image": Case("photo:murka", "not_image", _photo_failed(final=True)),
    "photo-404": Case("photo:murka", "404", _photo_failed(final=True)),
    "photo-redirect": Case("photo:murka", "redirect", _photo_failed(final=True)),
    "photo-http500": Case("photo:murka", "http500", _photo_failed(final=False)),
    "photo-timeout": Case("photo:murka", "timeout", _photo_failed(final=False)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fault_during_a_full_cycle(
    name: str,
    world: World,
    settings: Settings,
    sessions: Any,
    gateway: Any,
    vision: VisionModels,
) -> None:
    case = CASES[name]
    fake = world.fake

    # 1. a clean cycle stores the lost group's posts
    first = _cycle(settings, sessions, gateway, vision, NOW - timedelta(hours=1))
    assert first.poll.ok and first.process.failures == []
    before = _snapshot(sessions)
    assert len(before["posts"]) == 3 and len(before["embeddings"]) == 2

    # 2. the found posts appear; the faulty cycle runs to its end
    _add_found_posts(world)
    if case.target.startswith("photo:"):
        (url,) = fake.photo_urls(FOUND, world.found_murka)
        fake.inject_fault(url, case.fault, times=case.times)
    else:
        fake.inject_fault(case.target, case.fault, times=case.times, owner_id=case.owner_id)
    faulty = _cycle(settings, sessions, gateway, vision, NOW)
    fake.clear_faults()
    case.check(faulty, sessions, world)
    after = _snapshot(sessions)
    for key, stored in before.items():
        assert stored <= after[key], f"{key} lost in the faulty cycle"
    for post in world.fake.comments:
        assert post["guid"]

    # 3. clean cycles later finish the work, and say nothing twice
    for minutes in (0, 10):
        last = _cycle(settings, sessions, gateway, vision, LATER + timedelta(minutes=minutes))
        assert last.poll.ok, last.poll
    final = _snapshot(sessions)
    for key, stored in after.items():
        assert stored <= final[key], f"{key} lost in the clean cycle"
    assert len(final["posts"]) == 5
    with storage.session_scope(sessions) as session:
        posts = [storage.get_post(session, owner, pid) for owner, pid in final["posts"]]
        comments = store.list_comments(session)
        accepted = store.list_matches(session, accepted_only=True)
    assert {p.state for p in posts if p is not None} <= {PostState.DONE, PostState.SKIPPED}
    assert len(accepted) == 1
    pair = (accepted[0].lost_case_id, accepted[0].found_case_id)
    assert [c.match_id for c in comments] == [accepted[0].id]  # one row for the pair
    posted = fake.comments
    assert len(posted) == case.comments_in_the_end
    assert len({(c["owner_id"], c["post_id"], c["guid"]) for c in posted}) == len(posted)
    if posted:
        (comment,) = posted
        assert (comment["owner_id"], comment["post_id"]) == (-FOUND, world.found_ryzhik)
        assert comment["guid"].startswith(comment_guid(*pair))
        assert comments[0].state is store.CommentState.POSTED
        if case.fault == 222:
            assert "https://" not in comment["text"]
        else:
            assert f"https://vk.com/wall-{LOST}_{world.lost_ryzhik}" in comment["text"]
