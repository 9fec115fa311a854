"""Property tests on real `wall.get` items (`../shared/data/text/vk_wall_get_example.json`):
every field of every item, at every depth, made the wrong type, missing or absurd. The parser
never raises and reads every other item exactly as before; a whole poll cycle on the fake VK
completes and stores every other item. Skips without `../shared`."""

from __future__ import annotations

import copy
import itertools
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import storage
from bot.config import Settings
from bot.fakevk import FakeVkServer
from bot.polling import poll_cycle
from bot.storage import open_database, session_factory
from bot.vk._parse import parse_wall_page
from bot.vk.models import WallPage
from tests.bot.fakevk_fixtures import make_vk_settings, open_gateway

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
Path_ = tuple[str | int, ...]

#: What a field becomes: gone, another JSON type, or a value no real post has.
MUTATIONS = ("missing", "wrong_type", "absurd")


def _example_items(shared_dir: Path) -> list[dict[str, Any]]:
    path = shared_dir / "data" / "text" / "vk_wall_get_example.json"
    return json.loads(path.read_text(encoding="utf-8"))["response"]["items"]


def _paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every field of a JSON value, at every depth (dict keys and list positions)."""
    children: Any = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


def _wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "true"
    if isinstance(value, int | float):
        return {"value": value}
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return [value]
    return 0


def _absurd(value: Any) -> Any:
    if isinstance(value, bool):
        return 2
    if isinstance(value, int | float):
        return 10**20 if value >= 0 else -(10**20)
    if isinstance(value, str):
        return "\x00\ud800" + "я" * 20_000
    if isinstance(value, list):
        return [None, "x", 1e308, [[[[[]]]]]]
    if isinstance(value, dict):
        return {}
    return float("nan")


def mutated(item: dict[str, Any], path: Path_, mutation: str) -> dict[str, Any]:
    """A deep copy of `item` with the field at `path` changed by `mutation`."""
    result = copy.deepcopy(item)
    parent: Any = result
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if mutation == "missing":
        del parent[key]
    elif mutation == "wrong_type":
        parent[key] = _wrong_type(parent[key])
    else:
        parent[key] = _absurd(parent[key])
    return result


def test_parser_survives_every_mutation_of_every_field(shared_dir: Path) -> None:
    items = _example_items(shared_dir)
    owner = items[0]["owner_id"]
    baseline = parse_wall_page(owner, {"count": len(items), "items": items})
    assert len(baseline.posts) == len(items) and not baseline.skipped
    checked = 0
    for index, item in enumerate(items):
        for path, mutation in itertools.product(_paths(item), MUTATIONS):
            page_items = [*items[:index], mutated(item, path, mutation), *items[index + 1 :]]
            page = parse_wall_page(owner, {"count": len(items), "items": page_items})
            _assert_others_unchanged(page, baseline, index)
            checked += 1
    assert checked > 1000  # every field of every item, not a sample


def _assert_others_unchanged(page: WallPage, baseline: WallPage, index: int) -> None:
    assert page.items_read == len(baseline.posts)
    others = [p for n, p in enumerate(baseline.posts) if n != index]
    assert [p for p in page.posts if p in others] == others


@pytest.fixture(scope="module")
def example_paths(shared_dir: Path) -> list[tuple[int, Path_]]:
    items = _example_items(shared_dir)
    return [(n, path) for n, item in enumerate(items) for path in _paths(item)]


@pytest.fixture(scope="module")
def served_vk() -> Iterator[FakeVkServer]:
    with FakeVkServer() as vk:
        yield vk


_group_ids = itertools.count(1000)


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_cycle_over_a_mutated_real_page_stores_every_other_item(
    data: st.DataObject,
    shared_dir: Path,
    example_paths: list[tuple[int, Path_]],
    served_vk: FakeVkServer,
    sqlite_template: Path,
    tmp_path: Path,
) -> None:
    items = _example_items(shared_dir)
    index, path = data.draw(st.sampled_from(example_paths), label="field")
    mutation = data.draw(st.sampled_from(MUTATIONS), label="mutation")

    group_id = next(_group_ids)
    served_vk.add_group(group_id, f"real{group_id}", "Реальная стена")
    for n, item in enumerate(items):
        served_vk.add_post(group_id, text="", post_id=item["id"], date=item["date"])
        own = {**copy.deepcopy(item), "owner_id": -group_id}
        served = mutated(own, path, mutation) if n == index else own
        served_vk.mutate_item(group_id, item["id"], lambda _item, served=served: served)

    database = tmp_path / f"props-{group_id}.db"
    shutil.copyfile(sqlite_template, database)
    engine = open_database(f"sqlite:///{database}")
    try:
        sessions = session_factory(engine)
        with storage.session_scope(sessions) as session:
            storage.upsert_group(
                session, vk_id=group_id, screen_name=f"real{group_id}", title="t", now=NOW
            )
        config = Settings(
            vk=make_vk_settings(served_vk, max_retries=0), var_dir=tmp_path / f"var{group_id}"
        )
        with open_gateway(config.vk) as gateway:
            report = poll_cycle(sessions, gateway, config, now=NOW)
        with storage.session_scope(sessions) as session:
            stored = {
                item["id"]
                for item in items
                if storage.get_post(session, -group_id, item["id"]) is not None
            }
    finally:
        engine.dispose()
    assert report.ok and report.groups_ok == 1, report.groups
    others = {item["id"] for n, item in enumerate(items) if n != index}
    assert others <= stored
