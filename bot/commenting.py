"""What the bot says under a post, and whether it may say it now.

Pure functions: time, history and policy are arguments. The pipeline applies the decision,
talks to VK and records the outcome.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict

# Anything that looks like a phone number must never reach a comment.
_PHONE_RE = re.compile(r"(?:\+7|8)?[\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}")
MAX_COMMENT_CHARS = 600


class CommentAction(StrEnum):
    POST = "post"
    DRY_RUN = "dry_run"
    SHADOW = "shadow"
    SKIP = "skip"
    DEFER = "defer"  # allowed later (quiet hours, gap, cap, paused writes)


class CommentTemplates(BaseModel):
    model_config = ConfigDict(frozen=True)

    lost_post: str
    found_post: str
    lost_post_no_link: str
    found_post_no_link: str
    certainty: tuple[tuple[float, str], ...]

    @classmethod
    def load(cls, path: Path) -> CommentTemplates:
        return cls.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))

    def certainty_words(self, confidence: float) -> str:
        for bound, words in sorted(self.certainty, reverse=True):
            if confidence >= bound:
                return words
        return self.certainty[-1][1]


class CommentPolicy(BaseModel):
    """Guardrails from `commenting` settings."""

    model_config = ConfigDict(frozen=True)

    dry_run: bool = False
    daily_cap: int = 30
    min_gap_seconds: float = 120.0
    quiet_hours: tuple[int, int] | None = (23, 8)
    timezone: str = "Europe/Moscow"


class CommentContext(BaseModel):
    """What the guardrails look at for one would-be comment."""

    model_config = ConfigDict(frozen=True)

    group_comments_enabled: bool
    group_shadow_mode: bool
    post_can_comment: bool
    comments_today: int
    last_comment_at: datetime | None
    writes_paused_until: datetime | None


class CommentDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: CommentAction
    reason: str


def post_link(owner_id: int, post_id: int) -> str:
    return f"https://vk.com/wall{owner_id}_{post_id}"


def render_comment(
    templates: CommentTemplates,
    *,
    target_kind: str,
    other_owner_id: int,
    other_post_id: int,
    photo_position: int,
    confidence: float,
    with_link: bool = True,
) -> str:
    """The Russian comment text for a post of `target_kind` ("lost" or "found")."""
    if target_kind not in ("lost", "found"):
        raise ValueError(f"comments go under lost or found posts, not {target_kind!r}")
    key = f"{target_kind}_post" + ("" if with_link else "_no_link")
    template: str = getattr(templates, key)
    text = template.format(
        link=post_link(other_owner_id, other_post_id),
        post_ref=f"wall{other_owner_id}_{other_post_id}",
        photo=f"фото {photo_position + 1}",
        certainty=templates.certainty_words(confidence),
        percent=min(99, round(confidence * 100)),
    ).strip()
    _check_comment(text)
    return text


def _check_comment(text: str) -> None:
    """Refuse a template that would leak a phone number or grow into a wall of text."""
    without_links = re.sub(r"https://vk\.com/wall-?\d+_\d+|wall-?\d+_\d+", "", text)
    if _PHONE_RE.search(without_links):
        raise ValueError("comment text contains something that looks like a phone number")
    if len(text) > MAX_COMMENT_CHARS:
        raise ValueError(f"comment text is {len(text)} characters, over {MAX_COMMENT_CHARS}")


def decide_comment_action(
    context: CommentContext, policy: CommentPolicy, *, now: datetime
) -> CommentDecision:
    """Apply the guardrails in order: consent, VK's own switch, dry-run, pauses, pacing."""
    if not context.post_can_comment:
        return CommentDecision(action=CommentAction.SKIP, reason="comments are closed on the post")
    if not context.group_comments_enabled:
        return CommentDecision(
            action=CommentAction.SKIP, reason="commenting is not switched on for this group"
        )
    if context.group_shadow_mode:
        return CommentDecision(action=CommentAction.SHADOW, reason="group is in shadow mode")
    if policy.dry_run:
        return CommentDecision(action=CommentAction.DRY_RUN, reason="dry run")
    if context.writes_paused_until is not None and now < context.writes_paused_until:
        return CommentDecision(
            action=CommentAction.DEFER,
            reason=f"VK writes paused until {context.writes_paused_until.isoformat()}",
        )
    if _in_quiet_hours(now, policy):
        return CommentDecision(action=CommentAction.DEFER, reason="quiet hours")
    if context.comments_today >= policy.daily_cap:
        return CommentDecision(
            action=CommentAction.DEFER, reason=f"daily cap of {policy.daily_cap} reached"
        )
    if context.last_comment_at is not None and now - context.last_comment_at < timedelta(
        seconds=policy.min_gap_seconds
    ):
        return CommentDecision(action=CommentAction.DEFER, reason="minimum gap between comments")
    return CommentDecision(action=CommentAction.POST, reason="all guardrails passed")


def _in_quiet_hours(now: datetime, policy: CommentPolicy) -> bool:
    if policy.quiet_hours is None:
        return False
    start, end = policy.quiet_hours
    hour = now.astimezone(ZoneInfo(policy.timezone)).hour
    if start == end:
        return False
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end
