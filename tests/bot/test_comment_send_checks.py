"""Every send re-checks the guardrails at that moment, and reads the post's comments first: a
pending comment never goes out after consent is withdrawn, in shadow mode or a dry run, and a
lost database never makes the bot say the same thing twice. SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import storage
from bot.comment_stage import find_own_comment
from bot.config import Settings
from bot.pipeline import Pipeline, PipelineReport, VisionModels
from bot.polling import poll_cycle
from bot.storage import open_database, session_factory
from bot.storage import pipeline as store
from bot.vk import VkComment
from tests.bot._fake_vision import add_groups, animal_jpeg, fake_vision, pipeline_settings

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 12:00 in Moscow, outside quiet hours
LOST, FOUND = 701, 702


@pytest.fixture
def vision() -> VisionModels:
    return fake_vision()


@pytest.fixture
def settings(fake_vk, database_url, tmp_path) -> Settings:
    return pipeline_settings(fake_vk, database_url, tmp_path / "var")


@pytest.fixture
def world(fake_vk, sessions):
    add_groups(fake_vk, sessions, {LOST: "Москва", FOUND: "Москва"}, now=NOW)
    fake_vk.add_post(
        LOST,
        text="Пропала собака в Москве, рыжая",
        date=int((NOW - timedelta(hours=40)).timestamp()),
        photos=[animal_jpeg("ryzhik")],
    )
    fake_vk.add_post(
        FOUND,
        text="Нашли собаку у метро, Москва, ищем хозяев",
        date=int((NOW - timedelta(hours=2)).timestamp()),
        photos=[animal_jpeg("ryzhik", shift=6)],
    )
    return fake_vk


def _cycle(settings, sessions, gateway, vision, *, now=NOW, dry_run=None) -> PipelineReport:
    poll_cycle(sessions, gateway, settings, now=now)
    return Pipeline(settings, sessions, gateway, vision=vision, dry_run=dry_run).process_pending(
        now=now
    )


def _states(sessions) -> list[store.CommentState]:
    with storage.session_scope(sessions) as session:
        return [c.state for c in store.list_comments(session)]


def _set_groups(sessions, **flags: bool) -> None:
    with storage.session_scope(sessions) as session:
        for vk_id in (LOST, FOUND):
            group = storage.get_group(session, vk_id)
            assert group is not None
            storage.upsert_group(
                session,
                vk_id=vk_id,
                screen_name=group.screen_name,
                title=group.title,
                now=NOW,
                comments_enabled=flags.get("comments"),
                shadow_mode=flags.get("shadow"),
            )


def _leave_pending(world, settings, sessions, gateway, vision) -> None:
    """VK answers error 10 to every createComment: the comment stays `pending`."""
    world.inject_fault("wall.createComment", 10, times=None)
    _cycle(settings, sessions, gateway, vision)
    assert _states(sessions) == [store.CommentState.PENDING]
    assert world.comments == []
    world.clear_faults()


def test_pending_comment_is_not_posted_after_no_comments_shadow_and_dry_run(
    world, settings, sessions, gateway, vision
):
    """The issue's scenario: both groups switched to --no-comments --shadow, a --dry-run cycle."""
    _leave_pending(world, settings, sessions, gateway, vision)
    _set_groups(sessions, comments=False, shadow=True)
    report = _cycle(
        settings, sessions, gateway, vision, now=NOW + timedelta(minutes=15), dry_run=True
    )
    assert world.comments == []
    assert "sent:posted" not in report.comments
    assert _states(sessions) == [store.CommentState.SKIPPED]  # consent is checked first
    # ... and for good: switching the flags back later posts nothing either.
    _set_groups(sessions, comments=True, shadow=False)
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(minutes=30))
    assert world.comments == []


def test_pending_comment_in_a_shadow_group_becomes_shadow(
    world, settings, sessions, gateway, vision
):
    _leave_pending(world, settings, sessions, gateway, vision)
    _set_groups(sessions, shadow=True)
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(minutes=15))
    assert world.comments == []
    assert _states(sessions) == [store.CommentState.SHADOW]


def test_pending_comment_waits_out_a_dry_run_and_goes_out_once_on_a_real_run(
    world, settings, sessions, gateway, vision
):
    _leave_pending(world, settings, sessions, gateway, vision)
    report = _cycle(
        settings, sessions, gateway, vision, now=NOW + timedelta(minutes=15), dry_run=True
    )
    assert world.comments == [] and report.comments.get("held:dry_run") == 1
    assert _states(sessions) == [store.CommentState.PENDING]
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(minutes=30))
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(minutes=45))
    assert len(world.comments) == 1
    assert _states(sessions) == [store.CommentState.POSTED]


def test_pending_comment_is_dropped_once_the_owner_writes_that_the_pet_is_home(
    world, settings, sessions, gateway, vision
):
    _leave_pending(world, settings, sessions, gateway, vision)
    world.add_post(
        LOST,
        text="Нашлась! Рыжая собака дома, спасибо всем за репост",
        date=int((NOW + timedelta(minutes=5)).timestamp()),
    )
    with storage.session_scope(sessions) as session:
        (match,) = store.list_matches(session)
        lost = storage.get_post_by_pk(session, match.lost_post_pk)
        store.resolve_case(session, match.lost_case_id, lost.id, now=NOW)
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(minutes=15))
    assert world.comments == []
    assert _states(sessions) == [store.CommentState.SKIPPED]


def test_pending_comment_is_dropped_when_a_reviewer_judges_the_animals_different(
    world, settings, sessions, gateway, vision
):
    from bot.storage import reviews

    _leave_pending(world, settings, sessions, gateway, vision)
    with storage.session_scope(sessions) as session:
        (match,) = store.list_matches(session)
        user = reviews.add_user(
            session, "olga", role=reviews.Role.VOLUNTEER, password_hash="x", now=NOW
        )
        reviews.record_review(
            session,
            match,
            user=user,
            decision=reviews.Decision.DIFFERENT,
            bucket=reviews.Bucket.SAMPLE,
            now=NOW,
        )
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(minutes=15))
    assert world.comments == []
    assert _states(sessions) == [store.CommentState.SKIPPED]


def test_pending_comment_is_deferred_in_quiet_hours_and_by_the_cap(
    world, settings, sessions, gateway, vision, database_url, tmp_path
):
    _leave_pending(world, settings, sessions, gateway, vision)
    night = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)  # midnight in Moscow
    _cycle(settings, sessions, gateway, vision, now=night)
    assert world.comments == []
    with storage.session_scope(sessions) as session:
        (row,) = store.list_comments(session)
    assert row.state is store.CommentState.DEFERRED and row.reason == "quiet hours"
    capped = pipeline_settings(world, database_url, tmp_path / "var", daily_cap=0)
    _cycle(capped, sessions, gateway, vision, now=NOW + timedelta(days=1))
    assert world.comments == []
    assert _states(sessions) == [store.CommentState.DEFERRED]
    _cycle(settings, sessions, gateway, vision, now=NOW + timedelta(days=1, minutes=5))
    assert len(world.comments) == 1


def test_a_replaced_database_does_not_post_the_same_comment_twice(
    world, settings, sessions, gateway, vision, database_url, request, tmp_path
):
    _cycle(settings, sessions, gateway, vision)
    assert len(world.comments) == 1
    posted = world.comments[0]

    fresh_url = _fresh_database(request, database_url, tmp_path)
    engine = open_database(fresh_url)
    try:
        fresh = session_factory(engine)
        add_groups(world, fresh, {LOST: "Москва", FOUND: "Москва"}, now=NOW)
        fresh_settings = pipeline_settings(world, fresh_url, tmp_path / "var2")
        checks_before = world.calls["execute:wall.getComments"]
        _cycle(fresh_settings, fresh, gateway, fake_vision(), now=NOW + timedelta(hours=1))
        with storage.session_scope(fresh) as session:
            (row,) = store.list_comments(session)
    finally:
        engine.dispose()
    assert len(world.comments) == 1  # nothing new on VK
    assert row.state is store.CommentState.POSTED and row.vk_comment_id == posted["id"]
    assert "not posted again" in row.reason
    assert world.calls["execute:wall.getComments"] - checks_before == 1  # one call per comment


def _fresh_database(request, database_url: str, tmp_path: Path) -> str:
    """Another empty, migrated database on the same backend as `database_url`."""
    if database_url.startswith("sqlite"):
        path = tmp_path / "replaced.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    from tests.bot.conftest import _truncate_all

    _truncate_all(database_url)  # the same PostgreSQL database, emptied: "lost"
    return database_url


def _comment(text: str, from_id: int) -> VkComment:
    return VkComment(id=1, from_id=from_id, text=text, date=NOW)


@pytest.mark.parametrize(
    ("text", "from_id", "ours"),
    [
        ("🤖 Похожего питомца нашли: https://vk.com/wall-5_7 (фото 1).", 99, True),
        ("🤖 Похожего питомца нашли: запись wall-5_7 (фото 1).", 42, True),  # 222, by the bot
        ("🤖 Похожего питомца нашли: запись wall-5_7 (фото 1).", 99, False),  # someone else
        ("Смотрите https://vk.com/wall-5_70", 99, False),  # another post
        ("Смотрите https://vk.com/wall-5_70", 42, False),
        ("wall-15_7", 42, False),
        ("Бот, ты ошибся", 42, False),  # the bot's, but about another pair
    ],
)
def test_find_own_comment_by_author_or_link(text: str, from_id: int, ours: bool) -> None:
    found = find_own_comment(
        [_comment(text, from_id)], other_owner_id=-5, other_post_id=7, author_ids={42}
    )
    assert (found is not None) is ours


def test_reading_all_comments_of_a_long_thread_is_one_call(fake_vk, gateway) -> None:
    fake_vk.add_group(9, "g9", "Группа")
    post = fake_vk.add_post(9, text="Пропала кошка")
    for n in range(250):
        fake_vk.add_comment(9, post, f"комментарий {n}", from_id=1000 + n)
    before = fake_vk.calls["execute"]
    comments = gateway.read_all_comments(-9, post)
    assert [c.text for c in comments] == [f"комментарий {n}" for n in range(250)]
    assert fake_vk.calls["execute"] - before == 1
    assert gateway.own_user_id() == fake_vk.bot_user_id
    assert gateway.own_user_id() == fake_vk.bot_user_id and fake_vk.calls["users.get"] == 1
