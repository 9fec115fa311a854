"""Commenting under VK posts: where to comment, whether the guardrails allow it now, and
sending it so that a crash or a retry never posts twice.

The comment row (with its deterministic guid) is written before VK is called; VK's `guid`
and the unique (lost case, found case) row make a second comment impossible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot import storage
from bot.commenting import (
    CommentAction,
    CommentContext,
    CommentDecision,
    CommentPolicy,
    CommentTemplates,
    decide_comment_action,
    render_comment,
)
from bot.config import Settings, project_path
from bot.storage import pipeline as store
from bot.storage.records import Post
from bot.vk import CaptchaError, CommentRejectedError, LinkRejectedError, VkError, VkGateway

__all__ = ["CommentSender", "comment_guid"]


class CommentSender:
    """Decides, records and sends the comment for an accepted match."""

    def __init__(
        self,
        settings: Settings,
        sessions: storage.SessionFactory,
        gateway: VkGateway | None,
        *,
        dry_run: bool | None = None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._gateway = gateway
        self._templates = CommentTemplates.load(project_path(settings.commenting.template_file))
        commenting = settings.commenting
        self._policy = CommentPolicy(
            dry_run=commenting.dry_run if dry_run is None else dry_run,
            daily_cap=commenting.daily_cap,
            min_gap_seconds=commenting.min_gap_seconds,
            quiet_hours=commenting.quiet_hours,
            timezone=commenting.timezone,
        )

    def comment_on(
        self,
        match: store.MatchRecord,
        *,
        trigger: Post,
        now: datetime,
        record: Callable[[str], None],
    ) -> None:
        with storage.session_scope(self._sessions) as session:
            if store.comment_for_pair(session, match.lost_case_id, match.found_case_id):
                return  # at most one comment per pair, ever
            target, other, target_kind, other_position = self._target(session, match, trigger)
            group = storage.get_group(session, -target.owner_id)
            decision = decide_comment_action(
                self._context(session, target, group, now=now),
                self._policy,
                now=now,
            )
            text = render_comment(
                self._templates,
                target_kind=target_kind,
                other_owner_id=other.owner_id,
                other_post_id=other.post_id,
                photo_position=other_position,
                confidence=match.confidence,
            )
            state = _STATE_FOR_ACTION[decision.action]
            comment = store.create_comment(
                session,
                match,
                owner_id=target.owner_id,
                post_id=target.post_id,
                guid=comment_guid(match.lost_case_id, match.found_case_id),
                text=text,
                state=state,
                reason=decision.reason,
                now=now,
            )
        record(state.value)
        if state is store.CommentState.PENDING:
            self._send(comment, match, now=now, record=record)

    def preview(
        self, match: store.MatchRecord, *, trigger: Post, now: datetime
    ) -> CommentDecision:
        """What the guardrails would decide about commenting on `match` now, recording and
        sending nothing (the review desk shows it before a person confirms a pair)."""
        with storage.session_scope(self._sessions) as session:
            target, _, _, _ = self._target(session, match, trigger)
            group = storage.get_group(session, -target.owner_id)
            context = self._context(session, target, group, now=now)
        return decide_comment_action(context, self._policy, now=now)

    def _target(
        self, session: Any, match: store.MatchRecord, trigger: Post
    ) -> tuple[Post, Post, str, int]:
        """Comment under the post that triggered the match when its group allows comments,
        else under the other post of the pair."""
        lost = storage.get_post_by_pk(session, match.lost_post_pk)
        found = storage.get_post_by_pk(session, match.found_post_pk)
        pairs = [
            (lost, found, "lost", match.found_photo_position),
            (found, lost, "found", match.lost_photo_position),
        ]
        pairs.sort(key=lambda p: p[0].id != trigger.id)
        for target, other, kind, position in pairs:
            group = storage.get_group(session, -target.owner_id)
            if group is not None and group.comments_enabled and target.can_comment:
                return target, other, kind, position
        return pairs[0]

    def _context(self, session: Any, target: Post, group: Any, *, now: datetime) -> CommentContext:
        from bot.storage.usage import WRITES_SCOPE, active_pause

        day_start = now - timedelta(days=1)
        count, last = store.comment_stats(session, since=day_start)
        pause = active_pause(session, WRITES_SCOPE, now)
        return CommentContext(
            group_comments_enabled=bool(group and group.comments_enabled),
            group_shadow_mode=bool(group and group.shadow_mode),
            post_can_comment=target.can_comment,
            comments_today=count,
            last_comment_at=last,
            writes_paused_until=pause.until if pause else None,
        )

    def _send(
        self,
        comment: store.CommentRecord,
        match: store.MatchRecord,
        *,
        now: datetime,
        record: Callable[[str], None],
    ) -> None:
        """Post a recorded comment. The row exists before the call, with its guid, so a crash
        here ends in a retry that VK recognises, never in a second comment."""
        from bot.storage.usage import WRITES_SCOPE, add_pause

        if self._gateway is None:
            return
        text = comment.text
        state, reason, vk_id = store.CommentState.POSTED, "posted", None
        try:
            try:
                vk_id = self._gateway.create_comment(
                    comment.owner_id, comment.post_id, text, guid=comment.guid
                )
            except LinkRejectedError:
                text = self._without_link(comment, match)
                vk_id = self._gateway.create_comment(
                    comment.owner_id, comment.post_id, text, guid=comment.guid + "n"
                )
                reason = "posted without the link (VK error 222)"
        except CommentRejectedError as exc:
            state, reason = store.CommentState.SKIPPED, f"VK refused the comment: {exc}"
        except CaptchaError as exc:
            state, reason = store.CommentState.DEFERRED, f"VK writes paused: {exc}"
            with storage.session_scope(self._sessions) as session:
                add_pause(
                    session,
                    WRITES_SCOPE,
                    until=now + timedelta(hours=self._settings.vk.captcha_pause_hours),
                    reason=str(exc),
                    now=now,
                )
        except VkError as exc:
            state, reason = store.CommentState.PENDING, f"will retry: {exc}"
        with storage.session_scope(self._sessions) as session:
            store.update_comment(
                session,
                comment.id,
                state=state,
                reason=reason,
                now=now,
                text=text,
                vk_comment_id=vk_id,
            )
        record(f"sent:{state.value}")

    def _without_link(self, comment: store.CommentRecord, match: store.MatchRecord) -> str:
        with storage.session_scope(self._sessions) as session:
            lost = storage.get_post_by_pk(session, match.lost_post_pk)
            found = storage.get_post_by_pk(session, match.found_post_pk)
        target_is_lost = (comment.owner_id, comment.post_id) == (lost.owner_id, lost.post_id)
        other = found if target_is_lost else lost
        return render_comment(
            self._templates,
            target_kind="lost" if target_is_lost else "found",
            other_owner_id=other.owner_id,
            other_post_id=other.post_id,
            photo_position=match.found_photo_position
            if target_is_lost
            else match.lost_photo_position,
            confidence=match.confidence,
            with_link=False,
        )

    def retry_unfinished(self, *, now: datetime, record: Callable[[str], None]) -> None:
        """Comments a crash left pending, or that waited for quiet hours, a pause or the cap."""
        with storage.session_scope(self._sessions) as session:
            unfinished = store.unfinished_comments(session)
        for comment in unfinished:
            with storage.session_scope(self._sessions) as session:
                match = store.get_match(session, comment.match_id)
                if match is None:
                    continue
                target = _post_by_key(session, comment.owner_id, comment.post_id)
                group = storage.get_group(session, -comment.owner_id)
                decision = decide_comment_action(
                    self._context(session, target, group, now=now),
                    self._policy,
                    now=now,
                )
                if comment.state is store.CommentState.DEFERRED:
                    if decision.action is not CommentAction.POST:
                        continue
                    comment = store.update_comment(
                        session,
                        comment.id,
                        state=store.CommentState.PENDING,
                        reason=decision.reason,
                        now=now,
                    )
            if comment.state is store.CommentState.PENDING:
                self._send(comment, match, now=now, record=record)


_STATE_FOR_ACTION = {
    CommentAction.POST: store.CommentState.PENDING,
    CommentAction.DRY_RUN: store.CommentState.DRY_RUN,
    CommentAction.SHADOW: store.CommentState.SHADOW,
    CommentAction.SKIP: store.CommentState.SKIPPED,
    CommentAction.DEFER: store.CommentState.DEFERRED,
}


def comment_guid(lost_case_id: int, found_case_id: int) -> str:
    """The same pair always gets the same guid, so VK refuses a repeat even if we crash."""
    digest = hashlib.sha256(f"petmatch:{lost_case_id}:{found_case_id}".encode()).hexdigest()
    return digest[:32]


def _post_by_key(session: Any, owner_id: int, post_id: int) -> Post:
    post = storage.get_post(session, owner_id, post_id)
    if post is None:
        raise KeyError(f"post wall{owner_id}_{post_id} does not exist")
    return post
