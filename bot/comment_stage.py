"""Commenting under VK posts: where to comment, whether the guardrails allow it now, and
sending it so that a crash or a retry never posts twice.

The comment row (with its deterministic guid) is written before VK is called; VK's `guid`
and the unique (lost case, found case) row make a second comment impossible.

Every send, first try or retry, decides again at that moment (consent, shadow mode, dry-run,
pauses, quiet hours, caps), and reads the post's comments first: a comment the bot already
left there (a lost or replaced database) is recorded, not posted a second time.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Collection, Sequence
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
    post_link,
    render_comment,
)
from bot.config import Settings, project_path
from bot.storage import pipeline as store
from bot.storage.records import Post
from bot.vk import (
    CaptchaError,
    CommentRejectedError,
    LinkRejectedError,
    VkBugError,
    VkComment,
    VkError,
    VkGateway,
)

__all__ = ["CommentSender", "comment_guid", "find_own_comment"]

logger = logging.getLogger("petmatch.comments")

#: Who the bot is on VK, as comment authors: user ids (positive) and community ids (negative).
AuthorIds = Callable[[], Collection[int]]


class CommentSender:
    """Decides, records and sends the comment for an accepted match."""

    def __init__(
        self,
        settings: Settings,
        sessions: storage.SessionFactory,
        gateway: VkGateway | None,
        *,
        dry_run: bool | None = None,
        bot_author_ids: AuthorIds | None = None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._gateway = gateway
        self._bot_author_ids = bot_author_ids or (lambda: _gateway_author_ids(gateway))
        self._templates = CommentTemplates.load(project_path(settings.commenting.template_file))
        commenting = settings.commenting
        if not getattr(gateway, "can_comment", True):
            dry_run = True  # no comment token: decisions are recorded, nothing is posted
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
        """Post a recorded comment if the guardrails allow it at this moment. The row exists
        before the call, with its guid, so a crash here ends in a retry that VK recognises,
        never in a second comment."""
        if self._gateway is None:
            return
        with storage.session_scope(self._sessions) as session:
            decision = self._decide_now(session, comment, match, now=now)
            if (
                decision.action is CommentAction.POST
                and comment.state is not store.CommentState.PENDING
            ):
                comment = store.update_comment(
                    session,
                    comment.id,
                    state=store.CommentState.PENDING,
                    reason=decision.reason,
                    now=now,
                )
        if decision.action is not CommentAction.POST:
            self._hold(comment, decision.action, decision.reason, now=now, record=record)
            return
        try:
            existing = self._existing_comment(comment, match)
        except VkBugError as exc:  # the post is gone, or its comments cannot be read at all
            self._finish(
                comment,
                store.CommentState.SKIPPED,
                f"could not read the post's comments: {exc}",
                now=now,
                record=record,
            )
            return
        except VkError as exc:
            self._finish(
                comment,
                store.CommentState.PENDING,
                f"will retry: could not check the post's comments first: {exc}",
                now=now,
                record=record,
            )
            return
        if existing is not None:
            logger.warning(
                "%s already carries our comment %d (from %d); recorded, not posted again",
                f"wall{comment.owner_id}_{comment.post_id}",
                existing.id,
                existing.from_id,
            )
            self._finish(
                comment,
                store.CommentState.POSTED,
                f"already on VK as comment {existing.id}: recorded, not posted again",
                now=now,
                record=record,
                vk_comment_id=existing.id,
            )
            return
        self._create(comment, match, now=now, record=record)

    def _create(
        self,
        comment: store.CommentRecord,
        match: store.MatchRecord,
        *,
        now: datetime,
        record: Callable[[str], None],
    ) -> None:
        """`wall.createComment`, once more without the link when the group refuses links."""
        from bot.storage.usage import WRITES_SCOPE, add_pause

        assert self._gateway is not None  # checked by `_send`
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
        self._finish(comment, state, reason, now=now, record=record, text=text, vk_comment_id=vk_id)

    def _finish(
        self,
        comment: store.CommentRecord,
        state: store.CommentState,
        reason: str,
        *,
        now: datetime,
        record: Callable[[str], None],
        text: str | None = None,
        vk_comment_id: int | None = None,
    ) -> None:
        with storage.session_scope(self._sessions) as session:
            store.update_comment(
                session,
                comment.id,
                state=state,
                reason=reason,
                now=now,
                text=text,
                vk_comment_id=vk_comment_id,
            )
        record(f"sent:{state.value}")

    def _decide_now(
        self,
        session: Any,
        comment: store.CommentRecord,
        match: store.MatchRecord,
        *,
        now: datetime,
    ) -> CommentDecision:
        """The guardrails as they stand now, for a comment recorded earlier: whether the pair
        is still wanted (a reviewer's verdict, a resolved case, a withdrawn match), then the
        group's consent and shadow flag, the post, dry-run, pauses, quiet hours, cap and gap."""
        unwanted = _no_longer_wanted(session, match)
        if unwanted is not None:
            return CommentDecision(action=CommentAction.SKIP, reason=unwanted)
        target = storage.get_post(session, comment.owner_id, comment.post_id)
        if target is None:
            return CommentDecision(action=CommentAction.SKIP, reason="the post is no longer stored")
        group = storage.get_group(session, -comment.owner_id)
        return decide_comment_action(
            self._context(session, target, group, now=now), self._policy, now=now
        )

    def _hold(
        self,
        comment: store.CommentRecord,
        action: CommentAction,
        reason: str,
        *,
        now: datetime,
        record: Callable[[str], None],
    ) -> None:
        """Not now. Consent withdrawn or shadow mode settle the comment; a dry run leaves it
        untouched for the next real run; a pause, quiet hours or the cap defer it."""
        record(f"held:{action.value}")
        if action is CommentAction.DRY_RUN:
            return
        state = _STATE_FOR_ACTION[action]
        if state is comment.state and reason == comment.reason:
            return
        with storage.session_scope(self._sessions) as session:
            store.update_comment(session, comment.id, state=state, reason=reason, now=now)

    def _existing_comment(
        self, comment: store.CommentRecord, match: store.MatchRecord
    ) -> VkComment | None:
        """The bot's comment for this pair if the post already carries one (one VK call)."""
        assert self._gateway is not None  # checked by `_send`
        other = self._other_post(comment, match)
        read = getattr(self._gateway, "read_all_comments", None) or self._gateway.get_comments
        comments = read(comment.owner_id, comment.post_id)
        return find_own_comment(
            comments,
            other_owner_id=other.owner_id,
            other_post_id=other.post_id,
            author_ids=self._bot_author_ids(),
        )

    def _other_post(self, comment: store.CommentRecord, match: store.MatchRecord) -> Post:
        return self._sides(comment, match)[1]

    def _sides(
        self, comment: store.CommentRecord, match: store.MatchRecord
    ) -> tuple[bool, Post]:
        """Whether the comment sits under the lost post of the pair, and the other post."""
        with storage.session_scope(self._sessions) as session:
            lost = storage.get_post_by_pk(session, match.lost_post_pk)
            found = storage.get_post_by_pk(session, match.found_post_pk)
        target_is_lost = (comment.owner_id, comment.post_id) == (lost.owner_id, lost.post_id)
        return target_is_lost, found if target_is_lost else lost

    def _without_link(self, comment: store.CommentRecord, match: store.MatchRecord) -> str:
        target_is_lost, other = self._sides(comment, match)
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
        """Comments a crash or a VK error left pending, or that waited for quiet hours, a pause
        or the cap. Each goes through the same send-time check as a first try."""
        with storage.session_scope(self._sessions) as session:
            unfinished = store.unfinished_comments(session)
        for comment in unfinished:
            with storage.session_scope(self._sessions) as session:
                match = store.get_match(session, comment.match_id)
            if match is None:
                continue
            self._send(comment, match, now=now, record=record)


def _no_longer_wanted(session: Any, match: store.MatchRecord) -> str | None:
    """Why a comment recorded for `match` must not go out any more, or None. A reviewer judged
    the animals different; either case was resolved ("нашёлся"); or the match is no longer
    accepted (e.g. an edited post now contradicts it) and no reviewer asked for the comment."""
    from bot.storage import reviews

    review = reviews.latest_decision(session, match.id)
    if review is not None and review.decision is reviews.Decision.DIFFERENT:
        return f"reviewer {review.reviewer} judged the animals different"
    for case_id in (match.lost_case_id, match.found_case_id):
        if store.is_case_resolved(session, case_id):
            return f"case {case_id} is resolved"
    current = store.get_match(session, match.id)
    if current is None:
        return "the match is no longer stored"
    confirmed = review is not None and review.decision is reviews.Decision.SAME_COMMENT
    if not current.accepted and not confirmed:
        return "the match is no longer accepted and no reviewer confirmed it"
    return None


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


def find_own_comment(
    comments: Sequence[VkComment],
    *,
    other_owner_id: int,
    other_post_id: int,
    author_ids: Collection[int],
) -> VkComment | None:
    """The comment that already says what the bot is about to say: one that points to the
    other post of the pair and is the bot's own, by author or by carrying the very link the
    bot posts (its text without the link names `wall<owner>_<post>`)."""
    link = post_link(other_owner_id, other_post_id)
    refers = re.compile(rf"(?<![\w-])wall{other_owner_id}_{other_post_id}(?!\d)")
    for comment in comments:
        if not refers.search(comment.text):
            continue
        if comment.from_id in author_ids or _has_link(comment.text, link):
            return comment
    return None


def _has_link(text: str, link: str) -> bool:
    position = text.find(link)
    while position >= 0:
        end = position + len(link)
        if end == len(text) or not text[end].isdigit():
            return True
        position = text.find(link, end)
    return False


def _gateway_author_ids(gateway: VkGateway | None) -> frozenset[int]:
    """The bot comments as its community (`from_group`, a negative author id) or as the comment
    token's user; a gateway that can say neither leaves only the link to recognise them by."""
    from_group = getattr(gateway, "from_group", None)
    if isinstance(from_group, int):
        return frozenset({-abs(from_group)})  # the commenter itself is never asked
    own_user_id = getattr(gateway, "own_user_id", None)
    user_id = own_user_id() if callable(own_user_id) else None
    return frozenset() if user_id is None else frozenset({user_id})
