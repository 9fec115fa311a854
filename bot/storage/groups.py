"""Groups: the VK communities petmatch polls."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from bot.storage import _convert
from bot.storage._schema import GroupRow
from bot.storage.errors import NotFoundError
from bot.storage.records import Group

__all__ = [
    "advance_cursor",
    "find_group",
    "get_group",
    "groups_due",
    "list_groups",
    "mark_group_inaccessible",
    "record_group_error",
    "remove_group",
    "upsert_group",
]


def upsert_group(
    session: Session,
    *,
    vk_id: int,
    screen_name: str,
    title: str,
    now: datetime,
    city: str | None = None,
    comments_enabled: bool | None = None,
    shadow_mode: bool | None = None,
    kind: str | None = None,
) -> tuple[Group, bool]:
    """Add a group or refresh its name/title (and city/comments/shadow when given); True if
    new."""
    row = session.scalar(select(GroupRow).where(GroupRow.vk_id == vk_id))
    created = row is None
    if row is None:
        row = GroupRow(
            vk_id=vk_id,
            screen_name=screen_name,
            title=title,
            city=city,
            comments_enabled=bool(comments_enabled),
            shadow_mode=bool(shadow_mode),
            cursor_post_id=0,
            accessible=True,
            created_at=now,
            kind=_stored_kind(kind),
        )
        session.add(row)
    else:
        row.screen_name = screen_name
        row.title = title
        if city is not None:
            row.city = city
        if comments_enabled is not None:
            row.comments_enabled = comments_enabled
        if shadow_mode is not None:
            row.shadow_mode = shadow_mode
        if kind is not None:
            row.kind = _stored_kind(kind)
    session.flush()
    return _convert.group(row), created


def get_group(session: Session, vk_id: int) -> Group | None:
    """The group with this positive VK id, if added."""
    row = session.scalar(select(GroupRow).where(GroupRow.vk_id == abs(vk_id)))
    return None if row is None else _convert.group(row)


def find_group(session: Session, ref: str) -> Group | None:
    """A stored group by numeric id (`123`, `-123`, `club123`) or screen name, no VK call."""
    ref = ref.strip().rstrip("/").rsplit("/", 1)[-1].lstrip("@")
    vk_id: int | None = None
    for prefix in ("club", "public", "event", ""):
        tail = ref[len(prefix) :] if ref.startswith(prefix) else None
        if tail and tail.lstrip("-").isdigit():
            vk_id = abs(int(tail))
            break
    condition = GroupRow.screen_name == ref
    if vk_id is not None:
        condition = or_(condition, GroupRow.vk_id == vk_id)
    row = session.scalar(select(GroupRow).where(condition).order_by(GroupRow.id))
    return None if row is None else _convert.group(row)


def remove_group(session: Session, vk_id: int) -> bool:
    """Stop polling a group (its posts stay). True if it existed."""
    result = session.execute(delete(GroupRow).where(GroupRow.vk_id == abs(vk_id)))
    return bool(result.rowcount)


def list_groups(session: Session) -> list[Group]:
    """All groups, oldest first."""
    return [_convert.group(r) for r in session.scalars(select(GroupRow).order_by(GroupRow.id))]


def groups_due(session: Session, now: datetime) -> list[Group]:
    """Groups to poll now: accessible ones, and inaccessible ones whose re-check is due."""
    rows = session.scalars(
        select(GroupRow)
        .where(
            or_(
                GroupRow.accessible.is_(True),
                GroupRow.next_check_at.is_(None),
                GroupRow.next_check_at <= now,
            )
        )
        .order_by(GroupRow.id)
    )
    return [_convert.group(r) for r in rows]


def _row(session: Session, group_id: int) -> GroupRow:
    row = session.get(GroupRow, group_id)
    if row is None:
        raise NotFoundError(f"group #{group_id} does not exist")
    return row


def advance_cursor(session: Session, group_id: int, cursor_post_id: int, now: datetime) -> Group:
    """Record a successful poll: the cursor only moves forward; the group is accessible."""
    row = _row(session, group_id)
    row.cursor_post_id = max(row.cursor_post_id, cursor_post_id)
    row.last_polled_at = now
    row.last_error = None
    row.accessible = True
    row.inaccessible_since = None
    row.next_check_at = None
    session.flush()
    return _convert.group(row)


def record_group_error(session: Session, group_id: int, error: str, now: datetime) -> Group:
    """Remember why the last poll of this group failed (it is retried next cycle)."""
    row = _row(session, group_id)
    row.last_error = error[:2000]
    row.last_polled_at = now
    session.flush()
    return _convert.group(row)


def mark_group_inaccessible(
    session: Session, group_id: int, reason: str, now: datetime, recheck_after: timedelta
) -> Group:
    """The group is closed/banned/private: skip it until `now + recheck_after`."""
    row = _row(session, group_id)
    if row.accessible or row.inaccessible_since is None:
        row.inaccessible_since = now
    row.accessible = False
    row.last_error = reason[:2000]
    row.last_polled_at = now
    row.next_check_at = now + recheck_after
    session.flush()
    return _convert.group(row)


GROUP_KINDS = ("lost", "found", "mixed")


def _stored_kind(kind: str | None) -> str | None:
    """`mixed` (or nothing) is stored as NULL: the group's posts must say their side."""
    if kind is None or kind == "mixed":
        return None
    if kind not in GROUP_KINDS:
        raise ValueError(f"group kind must be one of {', '.join(GROUP_KINDS)}, not {kind!r}")
    return kind
