"""A group's declared side (`groups add … --kind`) and posts whose text does not say which
side they are on (`unknown`): indexed, matched against both sides, never commented on
automatically unless the group's side decides."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot import storage
from bot.config import Settings
from bot.fakevk import FakeVkServer
from bot.pipeline import Pipeline, VisionModels
from bot.polling import poll_cycle
from bot.storage import pipeline as store
from tests.bot._fake_vision import add_groups, animal_jpeg, fake_vision, pipeline_settings
from tests.bot.test_cli_admin import Cli, cli, cli_env, migrated, one_error_line  # noqa: F401

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MIXED, FOUND, LOST_ONLY = 601, 602, 603
UNSIDED = "Рыжий пёс в ошейнике, Москва"  # describes a dog, never says lost or found


def test_groups_add_kind(migrated: Cli, fake_vk: FakeVkServer) -> None:  # noqa: F811
    fake_vk.add_group(101, "poteryashki_msk", "Потеряшки Москвы")
    fake_vk.add_group(102, "pet_board", "Доска")
    added = migrated("groups", "add", "poteryashki_msk", "--kind", "lost")
    assert added.exit_code == 0, added.output
    assert "publishes: lost" in added.stdout
    assert migrated("groups", "add", "pet_board").exit_code == 0
    listed = json.loads(migrated("groups", "list", "--json").stdout)["groups"]
    assert {g["vk_id"]: g["kind"] for g in listed} == {101: "lost", 102: "mixed"}
    # An update without --kind keeps it; --kind mixed clears it.
    assert migrated("groups", "add", "poteryashki_msk", "--comments").exit_code == 0
    assert migrated("groups", "add", "pet_board", "--kind", "found").exit_code == 0
    assert migrated("groups", "add", "poteryashki_msk", "--kind", "mixed").exit_code == 0
    listed = json.loads(migrated("groups", "list", "--json").stdout)["groups"]
    assert {g["vk_id"]: g["kind"] for g in listed} == {101: "mixed", 102: "found"}
    assert "--kind must be one of" in one_error_line(
        migrated("groups", "add", "pet_board", "--kind", "adoption")
    )


@pytest.fixture
def vision() -> VisionModels:
    return fake_vision()


@pytest.fixture
def settings(fake_vk, database_url, tmp_path) -> Settings:
    return pipeline_settings(fake_vk, database_url, tmp_path / "var")


@pytest.fixture
def world(fake_vk, sessions):
    add_groups(fake_vk, sessions, {MIXED: "Москва", FOUND: "Москва", LOST_ONLY: "Москва"},
               now=NOW)
    with storage.session_scope(sessions) as session:
        storage.upsert_group(session, vk_id=LOST_ONLY, screen_name=f"g{LOST_ONLY}",
                             title="lost only", now=NOW, kind="lost")
    return fake_vk


def _ts(hours_ago: float) -> int:
    return int((NOW - timedelta(hours=hours_ago)).timestamp())


def _cycle(settings, sessions, gateway, vision):
    poll_cycle(sessions, gateway, settings, now=NOW)
    return Pipeline(settings, sessions, gateway, vision=vision).process_pending(now=NOW)


def test_unknown_side_is_matched_for_review_and_never_commented(
    world, settings, sessions, gateway, vision
):
    world.add_post(MIXED, text=UNSIDED, date=_ts(30), photos=[animal_jpeg("ryzhik")])
    world.add_post(FOUND, text="Нашли собаку у метро, Москва, ищем хозяев", date=_ts(2),
                   photos=[animal_jpeg("ryzhik", shift=5)])
    report = _cycle(settings, sessions, gateway, vision)

    assert report.failures == []
    assert report.labelled == {"unknown": 1, "found": 1}
    assert world.comments == []
    with storage.session_scope(sessions) as session:
        matches = store.list_matches(session)
    assert len(matches) == 1 and not matches[0].accepted
    reasons = " | ".join(matches[0].reasons)
    assert "side uncertain" in reasons and "kept for review" in reasons
    assert matches[0].confidence >= 0.9  # the photos agree; only the side is in doubt


def test_the_groups_side_decides_when_the_text_does_not(
    world, settings, sessions, gateway, vision
):
    lost = world.add_post(LOST_ONLY, text=UNSIDED, date=_ts(30), photos=[animal_jpeg("ryzhik")])
    world.add_post(FOUND, text="Нашли собаку у метро, Москва, ищем хозяев", date=_ts(2),
                   photos=[animal_jpeg("ryzhik", shift=5)])
    report = _cycle(settings, sessions, gateway, vision)

    assert report.labelled == {"lost": 1, "found": 1}
    assert len(world.comments) == 1
    assert f"https://vk.com/wall-{LOST_ONLY}_{lost}" in world.comments[0]["text"]
    with storage.session_scope(sessions) as session:
        post = storage.get_post(session, -LOST_ONLY, lost)
        assert post is not None
        label = store.get_label(session, post.id)
        matches = store.list_matches(session, accepted_only=True)
    assert label is not None and label.kind == "lost"
    assert "the group publishes lost posts" in label.evidence["side"]
    assert len(matches) == 1
