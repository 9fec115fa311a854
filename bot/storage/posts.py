"""Posts, the cases they belong to, and their photo links."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.storage import _convert
from bot.storage._schema import CaseRow, PhotoRow, PostPhotoRow, PostRow
from bot.storage.errors import NotFoundError
from bot.storage.records import Photo, PhotoState, Post, PostState
from bot.vk.models import PhotoRef, WallPost

__all__ = [
    "PostChange",
    "count_posts",
    "get_post",
    "pending_posts",
    "photos_of_post",
    "posts_of_case",
    "set_post_state",
    "upsert_post",
]


class PostChange(StrEnum):
    NEW = "new"
    EDITED = "edited"
    UNCHANGED = "unchanged"


def _case_id(session: Session, owner_id: int, post_id: int, now: datetime) -> int:
    case_id = session.scalar(
        select(CaseRow.id).where(
            CaseRow.origin_owner_id == owner_id, CaseRow.origin_post_id == post_id
        )
    )
    if case_id is None:
        row = CaseRow(origin_owner_id=owner_id, origin_post_id=post_id, created_at=now)
        session.add(row)
        session.flush()
        case_id = row.id
    return case_id


def _photo_row(session: Session, ref: PhotoRef, now: datetime) -> PhotoRow:
    row = session.scalar(
        select(PhotoRow).where(
            PhotoRow.vk_owner_id == ref.owner_id, PhotoRow.vk_photo_id == ref.photo_id
        )
    )
    if row is None:
        row = PhotoRow(
            vk_owner_id=ref.owner_id,
            vk_photo_id=ref.photo_id,
            source_url=ref.url,
            width=ref.width,
            height=ref.height,
            state=PhotoState.PENDING,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
    elif row.state in (PhotoState.PENDING, PhotoState.FAILED) and row.source_url != ref.url:
        row.source_url = ref.url  # VK URLs carry signatures that expire; keep the fresh one
        row.updated_at = now
    if row.state == PhotoState.MERGED and row.duplicate_of is not None:
        target = session.get(PhotoRow, row.duplicate_of)
        if target is not None:
            return target
    return row


def _link_photos(session: Session, post_row: PostRow, photos: tuple[PhotoRef, ...], now: datetime):
    session.execute(delete(PostPhotoRow).where(PostPhotoRow.post_id == post_row.id))
    seen: set[int] = set()
    for position, ref in enumerate(photos):
        photo = _photo_row(session, ref, now)
        if photo.id in seen:
            continue
        seen.add(photo.id)
        session.add(PostPhotoRow(post_id=post_row.id, photo_id=photo.id, position=position))
    session.flush()


def upsert_post(session: Session, post: WallPost, *, now: datetime) -> tuple[Post, PostChange]:
    """Store a wall post with its case and (pending) photo rows.

    A known post is rewritten and set back to `pending` only when its `edited` time grew;
    otherwise only its volatile flags (pinned, comments open) are refreshed."""
    row = session.scalar(
        select(PostRow).where(PostRow.owner_id == post.owner_id, PostRow.post_id == post.post_id)
    )
    if row is None:
        origin_owner = post.origin_owner_id if post.origin_post_id is not None else None
        origin_post = post.origin_post_id if origin_owner is not None else None
        case_key = (
            (origin_owner, origin_post)
            if origin_owner is not None and origin_post is not None
            else (post.owner_id, post.post_id)
        )
        row = PostRow(
            owner_id=post.owner_id,
            post_id=post.post_id,
            date=post.date,
            edited=post.edited,
            text=post.text,
            is_pinned=post.is_pinned,
            marked_as_ads=post.marked_as_ads,
            can_comment=post.can_comment,
            origin_owner_id=origin_owner,
            origin_post_id=origin_post,
            case_id=_case_id(session, *case_key, now),
            state=PostState.PENDING,
            first_seen_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        _link_photos(session, row, post.photos, now)
        return _convert.post(row), PostChange.NEW
    change = PostChange.UNCHANGED
    if post.edited is not None and (row.edited is None or post.edited > row.edited):
        row.edited = post.edited
        row.text = post.text
        row.state = PostState.PENDING
        row.stage = None
        row.error = None
        _link_photos(session, row, post.photos, now)
        change = PostChange.EDITED
    if (row.is_pinned, row.can_comment) != (post.is_pinned, post.can_comment):
        row.is_pinned = post.is_pinned
        row.can_comment = post.can_comment
    if change is PostChange.EDITED or session.is_modified(row):
        row.updated_at = now
    session.flush()
    return _convert.post(row), change


def get_post(session: Session, owner_id: int, post_id: int) -> Post | None:
    """A stored post by its VK key."""
    row = session.scalar(
        select(PostRow).where(PostRow.owner_id == owner_id, PostRow.post_id == post_id)
    )
    return None if row is None else _convert.post(row)


def get_post_by_pk(session: Session, post_pk: int) -> Post:
    """A stored post by its database id (`Post.id`); NotFoundError when there is none."""
    row = session.get(PostRow, post_pk)
    if row is None:
        raise NotFoundError(f"post #{post_pk} does not exist")
    return _convert.post(row)


def posts_of_case(session: Session, case_id: int) -> list[Post]:
    """Every post (original and reposts) of one case, oldest first."""
    rows = session.scalars(select(PostRow).where(PostRow.case_id == case_id).order_by(PostRow.id))
    return [_convert.post(r) for r in rows]


def pending_posts(session: Session, *, limit: int = 100) -> list[Post]:
    """Posts waiting for the processing stages or part-way through them (a crash left them
    there), oldest post date first."""
    rows = session.scalars(
        select(PostRow)
        .where(PostRow.state.in_((PostState.PENDING, PostState.PROCESSING)))
        .order_by(PostRow.date, PostRow.id)
        .limit(limit)
    )
    return [_convert.post(r) for r in rows]


def set_post_state(
    session: Session,
    post_pk: int,
    state: PostState,
    *,
    now: datetime,
    stage: str | None = None,
    error: str | None = None,
) -> Post:
    """Move a post along the pipeline (`post_pk` is `Post.id`)."""
    row = session.get(PostRow, post_pk)
    if row is None:
        raise NotFoundError(f"post #{post_pk} does not exist")
    row.state = state
    row.stage = stage
    row.error = error
    row.updated_at = now
    session.flush()
    return _convert.post(row)


def photos_of_post(session: Session, post_pk: int) -> list[Photo]:
    """The photos linked to a post, in post order."""
    rows = session.scalars(
        select(PhotoRow)
        .join(PostPhotoRow, PostPhotoRow.photo_id == PhotoRow.id)
        .where(PostPhotoRow.post_id == post_pk)
        .order_by(PostPhotoRow.position)
    )
    return [_convert.photo(r) for r in rows]


def count_posts(session: Session) -> int:
    """How many posts are stored."""
    return session.scalar(select(func.count()).select_from(PostRow)) or 0
