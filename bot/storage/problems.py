"""Partial failures kept for the operator: malformed items skipped while polling, and posts
whose processing could not look at their photos yet and waits for another try."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from bot.storage import _convert
from bot.storage._problems_schema import PostRetryRow, ProblemRow
from bot.storage._schema import PostRow
from bot.storage.records import Post, PostState

__all__ = [
    "MAX_EXCERPT_CHARS",
    "PostRetry",
    "Problem",
    "UnlookedPost",
    "clear_post_retry",
    "due_pending_posts",
    "get_post_retry",
    "list_post_retries",
    "list_problems",
    "problem_counts",
    "record_problem",
    "schedule_post_retry",
    "unlooked_post",
    "unlooked_posts",
]

#: A skipped item is kept as a bounded excerpt of its raw JSON, never whole.
MAX_EXCERPT_CHARS = 500


@dataclass(frozen=True, slots=True)
class Problem:
    id: int
    group_vk_id: int | None
    owner_id: int | None
    post_ref: str
    reason: str
    excerpt: str
    seen_count: int
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class PostRetry:
    post_pk: int
    attempts: int
    next_attempt_at: datetime
    last_error: str


def record_problem(
    session: Session,
    *,
    group_vk_id: int | None,
    owner_id: int | None,
    post_ref: str,
    reason: str,
    excerpt: str,
    now: datetime,
) -> Problem:
    """Keep one skipped item (the same item and reason again only bumps its count)."""
    post_ref = _clean(post_ref)[:64]
    reason = _clean(reason)[:2000]
    fingerprint = hashlib.sha256(f"{owner_id}\x1f{post_ref}\x1f{reason}".encode()).hexdigest()
    row = session.scalar(select(ProblemRow).where(ProblemRow.fingerprint == fingerprint))
    if row is None:
        row = ProblemRow(
            group_vk_id=group_vk_id,
            owner_id=owner_id,
            post_ref=post_ref,
            reason=reason,
            excerpt=_clean(excerpt)[:MAX_EXCERPT_CHARS],
            fingerprint=fingerprint,
            seen_count=1,
            first_seen_at=now,
            last_seen_at=now,
        )
        session.add(row)
    else:
        row.seen_count += 1
        row.last_seen_at = now
    session.flush()
    return _problem(row)


def list_problems(
    session: Session, *, group_vk_id: int | None = None, limit: int = 100
) -> list[Problem]:
    """Skipped items, most recently seen first."""
    query = select(ProblemRow).order_by(ProblemRow.last_seen_at.desc(), ProblemRow.id.desc())
    if group_vk_id is not None:
        query = query.where(ProblemRow.group_vk_id == group_vk_id)
    return [_problem(r) for r in session.scalars(query.limit(limit))]


def problem_counts(session: Session) -> dict[int, int]:
    """Skipped items per group (`vk_id`)."""
    rows = session.execute(
        select(ProblemRow.group_vk_id, func.count(ProblemRow.id))
        .where(ProblemRow.group_vk_id.is_not(None))
        .group_by(ProblemRow.group_vk_id)
    )
    return {int(vk_id): int(count) for vk_id, count in rows}


def schedule_post_retry(
    session: Session, post_pk: int, *, error: str, next_attempt_at: datetime, now: datetime
) -> PostRetry:
    """Count one more failed look at a post and say when to look again."""
    row = session.get(PostRetryRow, post_pk)
    if row is None:
        row = PostRetryRow(post_id=post_pk, attempts=0)
        session.add(row)
    row.attempts += 1
    row.next_attempt_at = next_attempt_at
    row.last_error = _clean(error)[:2000]
    row.updated_at = now
    session.flush()
    return _retry(row)


def get_post_retry(session: Session, post_pk: int) -> PostRetry | None:
    row = session.get(PostRetryRow, post_pk)
    return None if row is None else _retry(row)


def clear_post_retry(session: Session, post_pk: int) -> None:
    """The post was looked at after all (or given up on): forget its retry state."""
    session.execute(delete(PostRetryRow).where(PostRetryRow.post_id == post_pk))


def list_post_retries(session: Session, *, limit: int = 100) -> list[tuple[Post, PostRetry]]:
    """Posts with a retry state (waiting for another look, or failed after the last one)."""
    rows = session.execute(
        select(PostRow, PostRetryRow)
        .join(PostRetryRow, PostRetryRow.post_id == PostRow.id)
        .order_by(PostRetryRow.updated_at.desc())
        .limit(limit)
    )
    return [(_convert.post(post), _retry(retry)) for post, retry in rows]


@dataclass(frozen=True, slots=True)
class UnlookedPost:
    """A post whose photos could not be looked at: `waiting` for its next try, or `failed`
    for good once the attempts were spent."""

    post: Post
    retry: PostRetry

    @property
    def failed(self) -> bool:
        return self.post.state is PostState.FAILED

    @property
    def state(self) -> str:
        return "failed" if self.failed else "waiting"


#: A retry state only counts while the post is still unlooked; a post that went on (to `done`,
#: say, reset by hand) keeps no claim on the operator's attention.
_UNLOOKED_STATES = (PostState.PENDING, PostState.PROCESSING, PostState.FAILED)


def unlooked_posts(session: Session, *, limit: int = 100) -> list[UnlookedPost]:
    """Posts that could not be looked at, most recently tried first (what `matches list` and
    the desk show)."""
    rows = session.execute(
        select(PostRow, PostRetryRow)
        .join(PostRetryRow, PostRetryRow.post_id == PostRow.id)
        .where(PostRow.state.in_(_UNLOOKED_STATES))
        .order_by(PostRetryRow.updated_at.desc(), PostRow.id.desc())
        .limit(limit)
    )
    return [UnlookedPost(_convert.post(post), _retry(retry)) for post, retry in rows]


def unlooked_post(session: Session, post_pk: int) -> UnlookedPost | None:
    """The one post's "could not look" state, or None when it was looked at (or never tried)."""
    row = session.execute(
        select(PostRow, PostRetryRow)
        .join(PostRetryRow, PostRetryRow.post_id == PostRow.id)
        .where(PostRow.id == post_pk, PostRow.state.in_(_UNLOOKED_STATES))
    ).first()
    return None if row is None else UnlookedPost(_convert.post(row[0]), _retry(row[1]))


def due_pending_posts(session: Session, *, now: datetime, limit: int = 100) -> list[Post]:
    """Like `pending_posts`, leaving out posts whose next look is not due yet."""
    rows = session.scalars(
        select(PostRow)
        .outerjoin(PostRetryRow, PostRetryRow.post_id == PostRow.id)
        .where(
            PostRow.state.in_((PostState.PENDING, PostState.PROCESSING)),
            or_(PostRetryRow.post_id.is_(None), PostRetryRow.next_attempt_at <= now),
        )
        .order_by(PostRow.date, PostRow.id)
        .limit(limit)
    )
    return [_convert.post(r) for r in rows]


def _clean(text: str) -> str:
    """PostgreSQL refuses NUL in text and neither backend stores lone surrogates."""
    return text.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")


def _problem(row: ProblemRow) -> Problem:
    return Problem(
        id=row.id,
        group_vk_id=row.group_vk_id,
        owner_id=row.owner_id,
        post_ref=row.post_ref,
        reason=row.reason,
        excerpt=row.excerpt,
        seen_count=row.seen_count,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
    )


def _retry(row: PostRetryRow) -> PostRetry:
    return PostRetry(
        post_pk=row.post_id,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
    )
