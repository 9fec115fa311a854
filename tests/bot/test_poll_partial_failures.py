"""One bad item inside a well-formed `wall.get` answer is recorded and skipped; the rest of the
page, the group and every other group go on. On the fake VK, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DataError

from bot import storage
from bot.config import Settings, VkSettings
from bot.fakevk import FakeVkServer
from bot.polling import GroupStatus, poll_cycle
from bot.vk.gateway import VkApiGateway

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
T0 = int(NOW.timestamp())


@pytest.fixture
def settings(vk_settings: VkSettings, tmp_path: Path) -> Settings:
    return Settings(vk=vk_settings, var_dir=tmp_path / "var")


class Walls:
    """Two groups on the fake VK and in the database; group 1 gets the bad item."""

    def __init__(self, vk: FakeVkServer, gateway: VkApiGateway, sessions: Any, settings: Settings):
        self.vk, self.gateway, self.sessions, self.settings = vk, gateway, sessions, settings
        for vk_id in (1, 2):
            vk.add_group(vk_id, f"group{vk_id}", f"Группа {vk_id}")
            with storage.session_scope(sessions) as session:
                storage.upsert_group(
                    session, vk_id=vk_id, screen_name=f"group{vk_id}", title="g", now=NOW
                )

    def post(self, vk_id: int, minutes_ago: int, **fields: Any) -> int:
        fields.setdefault("text", "Пропала собака")
        return self.vk.add_post(vk_id, date=T0 - minutes_ago * 60, **fields)

    def poll(self):
        return poll_cycle(self.sessions, self.gateway, self.settings, now=NOW)

    def stored(self, vk_id: int) -> set[int]:
        with storage.session_scope(self.sessions) as session:
            return {p for p in range(1, 50) if storage.get_post(session, -vk_id, p) is not None}

    def problems(self) -> list[storage.Problem]:
        with storage.session_scope(self.sessions) as session:
            return storage.list_problems(session)

    def cursor(self, vk_id: int) -> int:
        with storage.session_scope(self.sessions) as session:
            group = storage.get_group(session, vk_id)
        assert group is not None
        return group.cursor_post_id


@pytest.fixture
def walls(fake_vk, gateway, sessions, settings) -> Walls:
    return Walls(fake_vk, gateway, sessions, settings)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def mutate(item: dict[str, Any]) -> Any:
        item[key] = value
        return item

    return mutate


def _drop(key: str) -> Callable[[dict[str, Any]], Any]:
    def mutate(item: dict[str, Any]) -> Any:
        item.pop(key, None)
        return item

    return mutate


def _photo_field(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def mutate(item: dict[str, Any]) -> Any:
        item["attachments"][0]["photo"][key] = value
        item["attachments"][0]["photo"].pop("orig_photo", None)
        for size in item["attachments"][0]["photo"]["sizes"]:
            size[key] = value
        return item

    return mutate


def test_out_of_range_date_is_recorded_and_skipped(walls: Walls) -> None:
    """The issue's case: `date` 1e20 raised OverflowError and aborted the whole cycle."""
    first = walls.post(1, 30)
    bad = walls.post(1, 20)
    last = walls.post(1, 10)
    other = walls.post(2, 5)
    walls.vk.mutate_item(1, bad, _set("date", 1e20))

    report = walls.poll()

    assert report.ok and report.groups_ok == 2 and report.groups_failed == 0
    assert walls.stored(1) == {first, last} and walls.stored(2) == {other}
    assert report.skipped_items == 1
    (problem,) = walls.problems()
    assert (problem.group_vk_id, problem.owner_id, problem.post_ref) == (1, -1, str(bad))
    assert "date" in problem.reason and "1e+20" in problem.excerpt
    assert len(problem.excerpt) <= 500
    assert walls.cursor(1) == last
    # Read again next cycle (nothing new): counted once more, not duplicated.
    walls.vk.add_post(1, text="Нашли кошку", date=T0, post_id=40)
    assert walls.poll().new_posts == 1
    assert len(walls.problems()) == 1


def test_non_integer_id_does_not_block_the_wall(walls: Walls) -> None:
    bad = walls.post(1, 20)
    walls.vk.mutate_item(1, bad, _set("id", "12abc"))
    first = walls.poll()
    assert first.groups_ok == 2 and first.skipped_items == 1
    newer = walls.post(1, 1)
    second = walls.poll()
    assert second.groups_ok == 2 and second.new_posts == 1
    assert newer in walls.stored(1)
    assert [p.post_ref for p in walls.problems()] == ["12abc"]


@pytest.mark.parametrize(
    ("mutate", "kept"),
    [
        (lambda item: "не пост", False),
        (lambda item: None, False),
        (lambda item: [item], False),
        (_drop("id"), False),
        (_drop("date"), False),
        (_set("id", -5), False),
        (_set("id", 2**63), False),
        (_set("id", 1.5), False),
        (_set("date", "вчера"), False),
        (_set("date", -1), False),
        (_set("text", {"a": 1}), False),
        (_set("attachments", "photo"), False),
        (_set("copy_history", 7), False),
        (_photo_field("id", 2**70), False),
        (_photo_field("width", 2**40), True),  # an absurd size is ignored, not fatal
        (_set("text", "Пропала\x00 собака \ud800"), True),  # cleaned, then stored
        (_set("is_pinned", "yes"), True),
        (_drop("comments"), True),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_a_malformed_item_is_skipped_and_the_rest_stored(
    walls: Walls, mutate: Callable[[dict[str, Any]], Any], kept: bool
) -> None:
    from tests.bot.fakevk_fixtures import jpeg_bytes

    first = walls.post(1, 30)
    bad = walls.post(1, 20, photos=[jpeg_bytes()])
    last = walls.post(1, 10)
    other = walls.post(2, 5)
    walls.vk.mutate_item(1, bad, mutate)

    report = walls.poll()

    assert report.ok and report.groups_ok == 2
    assert {first, last} <= walls.stored(1) and walls.stored(2) == {other}
    assert (bad in walls.stored(1)) is kept
    assert len(walls.problems()) == (0 if kept else 1)


def test_an_unexpected_error_in_one_group_fails_only_that_group(
    walls: Walls, monkeypatch: pytest.MonkeyPatch
) -> None:
    walls.post(1, 10)
    other = walls.post(2, 5)
    real_upsert = storage.upsert_post

    def upsert(session: Any, post: Any, **kwargs: Any) -> Any:
        if post.owner_id == -1:
            raise RuntimeError("a petmatch bug")
        return real_upsert(session, post, **kwargs)

    monkeypatch.setattr(storage, "upsert_post", upsert)
    report = walls.poll()
    status = {g.vk_id: g.status for g in report.groups}
    assert status == {1: GroupStatus.ERROR, 2: GroupStatus.OK}
    assert "a petmatch bug" in (report.groups[0].error or "")
    assert walls.stored(2) == {other} and walls.cursor(1) == 0  # retried next cycle
    monkeypatch.undo()
    assert walls.poll().groups_ok == 2


def test_a_post_the_database_refuses_is_recorded_and_the_wall_advances(
    walls: Walls, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = walls.post(1, 30)
    refused = walls.post(1, 20)
    last = walls.post(1, 10)
    real_upsert = storage.upsert_post

    def upsert(session: Any, post: Any, **kwargs: Any) -> Any:
        if post.post_id == refused:
            real_upsert(session, post, **kwargs)  # half-written, then refused
            raise DataError("INSERT INTO posts ...", {}, ValueError("value too long"))
        return real_upsert(session, post, **kwargs)

    monkeypatch.setattr(storage, "upsert_post", upsert)
    report = walls.poll()
    assert report.groups_ok == 2 and report.skipped_items == 1
    assert walls.stored(1) == {first, last}  # the refused post left nothing behind
    assert walls.cursor(1) == last
    (problem,) = walls.problems()
    assert problem.post_ref == str(refused) and "refused" in problem.reason


def test_an_unexpected_error_storing_one_photo_never_ends_the_cycle(
    walls: Walls, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.bot.fakevk_fixtures import jpeg_bytes

    walls.post(1, 10, photos=[jpeg_bytes(color=(10, 200, 10))])
    walls.post(2, 5, photos=[jpeg_bytes(color=(200, 10, 10))])
    real_store = storage.record_photo_stored
    calls = {"n": 0}

    def record(session: Any, photo_id: int, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a petmatch bug")
        return real_store(session, photo_id, **kwargs)

    monkeypatch.setattr(storage, "record_photo_stored", record)
    report = walls.poll()
    assert report.ok and report.photos_stored == 1 and report.photos_retry_later == 1
    monkeypatch.undo()
    later = poll_cycle(walls.sessions, walls.gateway, walls.settings, now=NOW)
    assert later.photos_stored == 1  # the photo is fetched again and kept
