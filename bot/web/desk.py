"""What the desk does, apart from HTTP: build the queue's cards, record a reviewer's decision
and hand a confirmed pair to the comment stage. Views call these; templates only render."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot import storage
from bot.comment_stage import CommentSender
from bot.commenting import CommentAction
from bot.config import Settings
from bot.storage import pipeline as store
from bot.storage import reviews
from bot.storage.pipeline import CommentState
from bot.storage.reviews import Bucket, Decision, PostView, QueueItem, User

__all__ = ["Card", "DecisionError", "DecisionOutcome", "Desk"]

logger = logging.getLogger("petmatch.web")

GatewayFactory = Callable[[], Any]


class DecisionError(Exception):
    """A decision the desk refuses (the pair is gone, already decided, or cannot be posted)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Card:
    """One candidate pair as a reviewer sees it."""

    match: store.MatchRecord
    bucket: Bucket
    lost: PostView
    found: PostView
    distance_km: float | None
    comment_state: CommentState | None
    can_post: bool
    why: str  # in Russian: what "post the comment" would do, or why it is not offered


@dataclass(frozen=True)
class DecisionOutcome:
    review: reviews.Review
    message: str
    send_comment: bool


# Why a comment cannot go out, in the desk's language. Keys are the comment stage's reasons.
_REASONS_RU = {
    "comments are closed on the post": "комментарии под записью закрыты",
    "commenting is not switched on for this group": "в группе нет согласия на комментарии бота",
    "group is in shadow mode": "группа в теневом режиме: бот только записывает, что сказал бы",
    "dry run": "бот в режиме dry-run: комментарий будет записан, но не опубликован",
    "quiet hours": "тихие часы",
    "minimum gap between comments": "пауза между комментариями",
    "all guardrails passed": "комментарий уйдёт сразу после подтверждения",
    "posted": "комментарий опубликован",
}


def reason_ru(reason: str | None) -> str:
    """The comment stage's reason in Russian (unknown reasons are shown as they are)."""
    if not reason:
        return ""
    if reason in _REASONS_RU:
        return _REASONS_RU[reason]
    if reason.startswith("daily cap"):
        return "достигнут дневной лимит комментариев"
    if reason.startswith("VK writes paused"):
        return "запись в VK приостановлена (капча)"
    return reason


class Desk:
    """The review desk's operations on one database."""

    def __init__(
        self,
        settings: Settings,
        sessions: storage.SessionFactory,
        *,
        gateway_factory: GatewayFactory,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._gateway_factory = gateway_factory
        self._clock = clock
        # Preview only: never sends, so it needs no VK gateway.
        self._preview = CommentSender(settings, sessions, gateway=None)

    # ---- the queue ----------------------------------------------------------------------

    def queue(
        self,
        user: User,
        *,
        city: str | None,
        species: str | None,
        page: int,
    ) -> tuple[list[Card], int]:
        size = self._settings.web.queue_page_size
        with storage.session_scope(self._sessions) as session:
            items, total = reviews.review_queue(
                session,
                review_threshold=self._settings.matching.review_threshold,
                sample_every=self._settings.commenting.review_sample_every,
                user_id=user.id,
                city=city or None,
                species=species or None,
                limit=size,
                offset=max(0, page - 1) * size,
            )
            views = reviews.post_views(
                session, [pk for i in items for pk in (i.match.lost_post_pk, i.match.found_post_pk)]
            )
        return [self._card(item, views) for item in items], total

    def card(self, match_id: int) -> Card | None:
        """The card of one pair, whether or not it is still in the queue."""
        with storage.session_scope(self._sessions) as session:
            match = store.get_match(session, match_id)
            if match is None:
                return None
            comment = store.comment_for_pair(session, match.lost_case_id, match.found_case_id)
            views = reviews.post_views(session, [match.lost_post_pk, match.found_post_pk])
        state = comment.state if comment else None
        item = QueueItem(
            match=match,
            bucket=_bucket(match, state),
            comment_state=state,
            comment_reason=comment.reason if comment else None,
        )
        return self._card(item, views)

    def _card(self, item: QueueItem, views: dict[int, PostView]) -> Card:
        lost, found = views[item.match.lost_post_pk], views[item.match.found_post_pk]
        can_post, why = self._offer(item, lost, found)
        return Card(
            match=item.match,
            bucket=item.bucket,
            lost=lost,
            found=found,
            distance_km=_distance(lost, found),
            comment_state=item.comment_state,
            can_post=can_post,
            why=why,
        )

    def _offer(self, item: QueueItem, lost: PostView, found: PostView) -> tuple[bool, str]:
        """Whether "post the comment" is offered, and why (not), as the comment stage sees it."""
        state, reason = item.comment_state, reason_ru(item.comment_reason)
        unsided = [v for v in (lost, found) if v.label is not None and v.label.kind == "unknown"]
        if unsided and state is None:
            # The comment's wording depends on which side each post is on: never guess it.
            return False, "по тексту не ясно, потерян питомец или найден; можно связаться самим"
        if state is CommentState.DEFERRED:
            return True, f"комментарий отложен ({reason}); уйдёт, когда позволят ограничения"
        if state is not None:
            return False, f"комментарий уже записан: {reason or state.value}"
        trigger = _newer(lost, found)
        decision = self._preview.preview(item.match, trigger=trigger.post, now=self._clock())
        text = reason_ru(decision.reason)
        if decision.action is CommentAction.DEFER:
            return True, f"комментарий будет отложен ({text})"
        if decision.action in (CommentAction.POST, CommentAction.DRY_RUN):
            return True, text
        return False, f"публиковать нельзя: {text}; можно связаться самим"

    # ---- decisions ----------------------------------------------------------------------

    def decide(self, user: User, match_id: int, decision: Decision) -> DecisionOutcome:
        """Record a decision at once; a confirmation to post is handed to the comment stage
        by the caller (`send_comment`), a rejection cancels a comment still waiting."""
        card = self.card(match_id)
        if card is None:
            raise DecisionError("Такой пары нет.", status=404)
        with storage.session_scope(self._sessions) as session:
            earlier = reviews.latest_decision(session, match_id)
        if earlier is not None and decision is not Decision.SKIP:
            raise DecisionError(
                f"Пару уже решил(а) {earlier.reviewer}: {DECISION_LABELS[earlier.decision]}."
            )
        if decision is Decision.SAME_COMMENT and not card.can_post:
            raise DecisionError(f"Комментарий не предлагается: {card.why}")
        now = self._clock()
        with storage.session_scope(self._sessions) as session:
            review = reviews.record_review(
                session, card.match, user=user, decision=decision, bucket=card.bucket, now=now
            )
            comment = store.comment_for_pair(
                session, card.match.lost_case_id, card.match.found_case_id
            )
            if (
                decision is Decision.DIFFERENT
                and comment is not None
                and comment.state in (CommentState.DEFERRED, CommentState.PENDING)
            ):
                store.update_comment(
                    session,
                    comment.id,
                    state=CommentState.SKIPPED,
                    reason=f"reviewer {user.name} judged the animals different",
                    now=now,
                )
        send = decision is Decision.SAME_COMMENT and comment is None
        logger.info("review: %s decided %s on match #%d", user.name, decision.value, match_id)
        return DecisionOutcome(review=review, message=_DONE_MESSAGES[decision], send_comment=send)

    def send_comment(self, match_id: int) -> None:
        """Run the comment stage for a confirmed pair now: the same guardrails, once per pair,
        caps and quiet hours as automatic comments (a deferred one waits for the scheduler)."""
        now = self._clock()
        with storage.session_scope(self._sessions) as session:
            match = store.get_match(session, match_id)
            if match is None:
                return
            views = reviews.post_views(session, [match.lost_post_pk, match.found_post_pk])
        trigger = _newer(views[match.lost_post_pk], views[match.found_post_pk]).post
        gateway = self._gateway_factory()
        try:
            CommentSender(self._settings, self._sessions, gateway).comment_on(
                match,
                trigger=trigger,
                now=now,
                record=lambda state: logger.info("desk comment #%d: %s", match_id, state),
            )
        except Exception:  # the decision stands; the log says why the comment did not go
            logger.exception("the comment for match #%d failed", match_id)
        finally:
            _record_calls(self._sessions, gateway, now)
            if gateway is not None:
                gateway.close()


DECISION_LABELS = {
    Decision.SAME_COMMENT: "то же животное, комментарий",
    Decision.SAME_MANUAL: "то же животное, связались сами",
    Decision.DIFFERENT: "разные животные",
    Decision.SKIP: "пропуск",
}

_DONE_MESSAGES = {
    Decision.SAME_COMMENT: "Записано: то же животное. Комментарий передан боту.",
    Decision.SAME_MANUAL: "Записано: то же животное, вы свяжетесь сами.",
    Decision.DIFFERENT: "Записано: разные животные.",
    Decision.SKIP: "Пара пропущена.",
}


def _bucket(match: store.MatchRecord, state: CommentState | None) -> Bucket:
    if state is CommentState.POSTED:
        return Bucket.SAMPLE
    return Bucket.HELD if match.accepted else Bucket.UNCERTAIN


def _newer(lost: PostView, found: PostView) -> PostView:
    """The post the pipeline would have been processing when it met the pair: the newer one."""
    return max((lost, found), key=lambda v: (v.post.date, v.post.id))


def _distance(lost: PostView, found: PostView) -> float | None:
    a = lost.label.city if lost.label else None
    b = found.label.city if found.label else None
    if a is None or b is None:
        return None
    if a == b:
        return 0.0
    from text import distance_km

    return distance_km(a, b)


def _record_calls(sessions: storage.SessionFactory, gateway: Any, now: datetime) -> None:
    counts = dict(getattr(gateway, "calls_today", {}) or {})
    if counts:
        with storage.session_scope(sessions) as session:
            storage.add_vk_calls(session, now.date(), counts)
