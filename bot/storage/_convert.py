"""Row → record conversion (private)."""

from __future__ import annotations

from pathlib import Path

from bot.storage._schema import GroupRow, PauseRow, PhotoRow, PostRow
from bot.storage.records import Group, Pause, Photo, PhotoState, Post, PostState


def group(row: GroupRow) -> Group:
    return Group(
        id=row.id,
        vk_id=row.vk_id,
        screen_name=row.screen_name,
        title=row.title,
        city=row.city,
        comments_enabled=row.comments_enabled,
        shadow_mode=row.shadow_mode,
        cursor_post_id=row.cursor_post_id,
        last_polled_at=row.last_polled_at,
        last_error=row.last_error,
        accessible=row.accessible,
        inaccessible_since=row.inaccessible_since,
        next_check_at=row.next_check_at,
        created_at=row.created_at,
        kind=row.kind,
    )


def post(row: PostRow) -> Post:
    return Post(
        id=row.id,
        owner_id=row.owner_id,
        post_id=row.post_id,
        date=row.date,
        edited=row.edited,
        text=row.text,
        is_pinned=row.is_pinned,
        marked_as_ads=row.marked_as_ads,
        can_comment=row.can_comment,
        origin_owner_id=row.origin_owner_id,
        origin_post_id=row.origin_post_id,
        case_id=row.case_id,
        state=PostState(row.state),
        stage=row.stage,
        error=row.error,
        first_seen_at=row.first_seen_at,
        updated_at=row.updated_at,
    )


def photo(row: PhotoRow) -> Photo:
    return Photo(
        id=row.id,
        vk_owner_id=row.vk_owner_id,
        vk_photo_id=row.vk_photo_id,
        source_url=row.source_url,
        sha256=row.sha256,
        phash=row.phash,
        width=row.width,
        height=row.height,
        bytes=row.bytes,
        file_path=Path(row.file_path) if row.file_path else None,
        state=PhotoState(row.state),
        error=row.error,
        attempts=row.attempts,
        duplicate_of=row.duplicate_of,
    )


def pause(row: PauseRow) -> Pause:
    return Pause(id=row.id, scope=row.scope, until=row.until, reason=row.reason)
