"""The groups page's operations: the same steps as `petmatch groups add/remove` and the
comment/shadow switches, with errors in the desk's language."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from bot import storage
from bot.config import Settings
from bot.storage.records import Group

__all__ = ["GroupError", "add_group", "groups_overview", "remove_group", "switch_group"]


class GroupError(Exception):
    """A group operation that could not be done; the message is for the page."""


# What the page says for each `GroupRefusal.reason`.
_REFUSALS = {
    "bad_ref": lambda r: f"Не понимаю ссылку на группу: {r.cause}",
    "not_found": lambda r: f"Такой группы в VK нет: {r.name}",
    "dead_token": lambda r: "Токен VK не действует.",
    "vk_error": lambda r: f"VK не ответил: {type(r.cause).__name__}",
    "deactivated": lambda r: f"Группа {r.name} удалена или заблокирована ({r.cause}).",
    "closed": lambda r: f"Группа {r.name} закрыта: бот читает только открытые стены.",
}


def add_group(
    sessions: storage.SessionFactory,
    gateway: Any,
    ref: str,
    *,
    city: str | None,
    comments: bool,
    shadow: bool,
    now: datetime,
) -> tuple[Group, bool]:
    """Look the community up on VK and add it (or update it), refusing closed or deleted
    communities, as the CLI does."""
    from bot.group_checks import GroupRefusal, pollable_group

    if gateway is None:
        raise GroupError("Нет токена VK: группу нельзя проверить и добавить.")
    try:
        info = pollable_group(gateway, ref)
    except GroupRefusal as refusal:
        raise GroupError(_REFUSALS[refusal.reason](refusal)) from refusal
    with storage.session_scope(sessions) as session:
        return storage.upsert_group(
            session,
            vk_id=info.id,
            screen_name=info.screen_name,
            title=info.name,
            now=now,
            city=city or None,
            comments_enabled=comments,
            shadow_mode=shadow,
        )


def switch_group(
    sessions: storage.SessionFactory,
    vk_id: int,
    *,
    comments: bool | None,
    shadow: bool | None,
    now: datetime,
) -> Group:
    """Turn commenting or shadow mode on or off for an added group."""
    with storage.session_scope(sessions) as session:
        group = storage.get_group(session, vk_id)
        if group is None:
            raise GroupError("Такой группы нет в списке.")
        updated, _ = storage.upsert_group(
            session,
            vk_id=group.vk_id,
            screen_name=group.screen_name,
            title=group.title,
            now=now,
            comments_enabled=comments,
            shadow_mode=shadow,
        )
    return updated


def remove_group(sessions: storage.SessionFactory, vk_id: int) -> Group:
    with storage.session_scope(sessions) as session:
        group = storage.get_group(session, vk_id)
        if group is None:
            raise GroupError("Такой группы нет в списке.")
        storage.remove_group(session, vk_id)
    return group


def groups_overview(
    settings: Settings, sessions: storage.SessionFactory, *, now: datetime
) -> dict[str, Any]:
    """The groups with their state, and the projected daily VK calls against the quota."""
    from bot.cli.groups_cmd import projected_daily_calls

    with storage.session_scope(sessions) as session:
        groups = storage.list_groups(session)
        today = {c.method: c.count for c in storage.vk_calls_on(session, now.date())}
    walls = sum(1 for g in groups if g.accessible)
    projection = projected_daily_calls(
        walls, settings.polling.interval_minutes, settings.vk.walls_per_execute
    )
    quota = settings.vk.daily_wall_get_quota
    advice = None
    if projection["wall.get"] > quota:
        interval = math.ceil(walls * 24 * 60 / quota) if walls else 0
        advice = f"опрашивайте раз в {interval} мин или меньше групп"
    return {
        "groups": groups,
        "projection": projection,
        "quota": quota,
        "today": today,
        "over_quota": projection["wall.get"] > quota,
        "advice": advice,
        "interval": settings.polling.interval_minutes,
    }
