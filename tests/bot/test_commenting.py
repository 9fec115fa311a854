"""The comment text and the guardrails that decide whether it may be posted now."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.commenting import (
    CommentAction,
    CommentContext,
    CommentPolicy,
    CommentTemplates,
    decide_comment_action,
    render_comment,
)

TEMPLATES_FILE = Path(__file__).resolve().parents[2] / "configs" / "comment_templates.yaml"
# 12:00 in Moscow: outside the default quiet hours.
NOON_MSK = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def templates() -> CommentTemplates:
    return CommentTemplates.load(TEMPLATES_FILE)


def _context(**changes: object) -> CommentContext:
    base = {
        "group_comments_enabled": True,
        "group_shadow_mode": False,
        "post_can_comment": True,
        "comments_today": 0,
        "last_comment_at": None,
        "writes_paused_until": None,
    }
    base.update(changes)
    return CommentContext.model_validate(base)


def test_comment_is_russian_automatic_links_the_other_post_and_names_the_photo(templates):
    text = render_comment(
        templates,
        target_kind="lost",
        other_owner_id=-123,
        other_post_id=45,
        photo_position=1,
        confidence=0.97,
    )
    assert "https://vk.com/wall-123_45" in text
    assert "автоматическое сообщение" in text
    assert "фото 2" in text
    assert "очень похожи" in text and "может ошибаться" in text
    assert len(text) < 450


def test_comment_never_claims_certainty_or_a_number(templates):
    """Regression: comments said "Совпадение почти наверняка (99%)" on wrong pairs."""
    for confidence in (0.5, 0.97, 0.999, 1.0):
        for kind in ("lost", "found"):
            text = render_comment(
                templates,
                target_kind=kind,
                other_owner_id=-123,
                other_post_id=45,
                photo_position=0,
                confidence=confidence,
            )
            assert "%" not in text
            assert "наверняка" not in text and "точно" not in text
            assert "может ошибаться" in text


def test_comment_without_link_for_error_222(templates):
    text = render_comment(
        templates,
        target_kind="found",
        other_owner_id=-7,
        other_post_id=8,
        photo_position=0,
        confidence=0.9,
        with_link=False,
    )
    assert "https://" not in text and "vk.com" not in text
    assert "wall-7_8" in text


@pytest.mark.parametrize("confidence", [0.0, 0.5, 0.8, 0.95, 0.999, 1.0])
def test_comment_never_contains_a_phone_number(templates, confidence):
    text = render_comment(
        templates,
        target_kind="found",
        other_owner_id=-89161234567,
        other_post_id=9031234567,
        photo_position=0,
        confidence=confidence,
    )
    without_link = text.replace("https://vk.com/wall-89161234567_9031234567", "")
    assert not re.search(r"\d{7,}", without_link)


def test_template_with_a_phone_number_is_refused(tmp_path):
    bad = CommentTemplates(
        lost_post="Звоните +7 916 123-45-67 {link}",
        found_post="{link}",
        lost_post_no_link="{post_ref}",
        found_post_no_link="{post_ref}",
        certainty=((0.0, "возможно"),),
    )
    with pytest.raises(ValueError, match="phone"):
        render_comment(
            bad, target_kind="lost", other_owner_id=-1, other_post_id=2,
            photo_position=0, confidence=0.99,
        )


@pytest.mark.parametrize(
    ("changes", "policy", "now", "action", "reason_part"),
    [
        ({}, {}, NOON_MSK, CommentAction.POST, "passed"),
        ({"post_can_comment": False}, {}, NOON_MSK, CommentAction.SKIP, "closed"),
        ({"group_comments_enabled": False}, {}, NOON_MSK, CommentAction.SKIP, "switched on"),
        ({"group_shadow_mode": True}, {}, NOON_MSK, CommentAction.SHADOW, "shadow"),
        ({}, {"dry_run": True}, NOON_MSK, CommentAction.DRY_RUN, "dry run"),
        (
            {"writes_paused_until": NOON_MSK + timedelta(hours=3)},
            {}, NOON_MSK, CommentAction.DEFER, "paused",
        ),
        (
            {"writes_paused_until": NOON_MSK - timedelta(seconds=1)},
            {}, NOON_MSK, CommentAction.POST, "passed",
        ),
        ({}, {}, datetime(2026, 6, 1, 21, 30, tzinfo=UTC), CommentAction.DEFER, "quiet"),
        ({}, {}, datetime(2026, 6, 1, 4, 59, tzinfo=UTC), CommentAction.DEFER, "quiet"),
        ({}, {}, datetime(2026, 6, 1, 5, 0, tzinfo=UTC), CommentAction.POST, "passed"),
        ({}, {"quiet_hours": None}, datetime(2026, 6, 1, 0, 0, tzinfo=UTC), CommentAction.POST, ""),
        ({"comments_today": 30}, {}, NOON_MSK, CommentAction.DEFER, "cap"),
        (
            {"last_comment_at": NOON_MSK - timedelta(seconds=30)},
            {}, NOON_MSK, CommentAction.DEFER, "gap",
        ),
        (
            {"last_comment_at": NOON_MSK - timedelta(seconds=121)},
            {}, NOON_MSK, CommentAction.POST, "passed",
        ),
    ],
)
def test_guardrails(changes, policy, now, action, reason_part):
    decision = decide_comment_action(_context(**changes), CommentPolicy(**policy), now=now)
    assert decision.action == action
    assert reason_part in decision.reason
