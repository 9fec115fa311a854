"""VK call counts per day and pauses (writes, one method)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage import _convert
from bot.storage._schema import PauseRow, VkCallRow
from bot.storage.records import Pause, VkCallCount

__all__ = [
    "WRITES_SCOPE",
    "active_pause",
    "active_pauses",
    "add_pause",
    "add_vk_calls",
    "method_scope",
    "vk_calls_on",
]

WRITES_SCOPE = "writes"


def method_scope(method: str) -> str:
    """The pause scope for one VK method: `method:wall.get`."""
    return f"method:{method}"


def add_vk_calls(session: Session, day: date, counts: Mapping[str, int]) -> None:
    """Add today's calls per method to the running totals."""
    for method, count in counts.items():
        if count <= 0:
            continue
        row = session.scalar(
            select(VkCallRow).where(VkCallRow.day == day, VkCallRow.method == method)
        )
        if row is None:
            session.add(VkCallRow(day=day, method=method, count=count))
        else:
            row.count += count
    session.flush()


def vk_calls_on(session: Session, day: date) -> list[VkCallCount]:
    rows = session.scalars(select(VkCallRow).where(VkCallRow.day == day).order_by(VkCallRow.method))
    return [VkCallCount(day=r.day, method=r.method, count=r.count) for r in rows]


def add_pause(
    session: Session, scope: str, *, until: datetime, reason: str, now: datetime
) -> Pause:
    """Pause `scope` (`writes` or `method:<name>`) until `until`."""
    row = PauseRow(scope=scope, until=until, reason=reason[:2000], created_at=now)
    session.add(row)
    session.flush()
    return _convert.pause(row)


def active_pauses(session: Session, now: datetime) -> list[Pause]:
    rows = session.scalars(select(PauseRow).where(PauseRow.until > now).order_by(PauseRow.until))
    return [_convert.pause(r) for r in rows]


def active_pause(session: Session, scope: str, now: datetime) -> Pause | None:
    """The pause on `scope` that lasts longest, if any is active."""
    row = session.scalar(
        select(PauseRow)
        .where(PauseRow.scope == scope, PauseRow.until > now)
        .order_by(PauseRow.until.desc())
    )
    return None if row is None else _convert.pause(row)
