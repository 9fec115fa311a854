"""`petmatch groups add | remove | list`: the VK communities petmatch polls."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import typer

from bot.cli._context import fail, print_json, settings_from

groups_app = typer.Typer(
    help=(
        "The VK communities petmatch polls.\n\n"
        "Example: petmatch groups add https://vk.com/poteryashki_msk --city Москва"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the `groups` sub-app to the root app."""
    app.add_typer(groups_app, name="groups")


#: The database column for a group's city (`groups.city`, String(255)).
MAX_CITY_CHARS = 255

# What `groups add` says for each `GroupRefusal.reason`.
_REFUSALS = {
    "bad_ref": lambda r: str(r.cause),
    "not_found": lambda r: f"unknown VK community {r.name!r}: {r.cause}",
    "dead_token": lambda r: f"the VK token is dead or wrong: {r.cause}",
    "vk_error": lambda r: f"could not look up {r.name!r} on VK: {r.cause}",
    "deactivated": lambda r: f"VK community {r.name!r} is {r.cause}; it cannot be polled",
    "closed": lambda r: (
        f"VK community {r.name!r} is closed or private; petmatch can only read open walls"
    ),
}


@contextmanager
def _one_line_database_errors() -> Iterator[None]:
    """A value the database refuses becomes one line, not a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        fail(f"the database refused the group: {(first[0] if first else type(exc).__name__)[:200]}")


def projected_daily_calls(walls: int, interval_minutes: float, walls_per_execute: int) -> dict:
    """VK calls per day that polling `walls` walls every `interval_minutes` needs (one page
    per wall and cycle; every `wall.get` inside an `execute` counts against the quota)."""
    cycles = 24 * 60 / interval_minutes
    return {
        "cycles_per_day": round(cycles, 2),
        "wall.get": math.ceil(walls * cycles),
        "execute": math.ceil(math.ceil(walls / walls_per_execute) * cycles),
    }


@groups_app.command("add")
def add(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="VK URL, screen name or numeric id of the community."),
    city: str = typer.Option(None, help="Default city for posts that name none."),
    comments: bool = typer.Option(
        None, "--comments/--no-comments", help="Allow petmatch to comment in this group."
    ),
    shadow: bool = typer.Option(
        None,
        "--shadow/--no-shadow",
        help="Shadow mode: record what would be said (`petmatch comments list`), post nothing.",
    ),
    kind: str = typer.Option(
        None,
        "--kind",
        help=(
            "What the group publishes: lost, found or mixed. Decides the side of a post whose "
            "text describes an animal but does not say lost or found."
        ),
    ),
) -> None:
    """Add a VK community to poll (or update its city / commenting / shadow flags / kind).

    Example: petmatch groups add https://vk.com/poteryashki_msk --city Москва --kind lost
    """
    from bot import storage
    from bot.cli.db_cmd import open_migrated
    from bot.cli.run_cmd import build_gateway, record_calls
    from bot.group_checks import GroupRefusal, pollable_group

    if kind is not None and kind not in storage.GROUP_KINDS:
        fail(f"--kind must be one of {', '.join(storage.GROUP_KINDS)}, not {kind!r}")
    settings = settings_from(ctx)
    if city is not None and len(city) > MAX_CITY_CHARS:
        fail(f"--city is {len(city)} characters long; at most {MAX_CITY_CHARS} fit")
    engine = open_migrated(settings)
    gateway = build_gateway(settings)
    try:
        try:
            info = pollable_group(gateway, ref)
        except GroupRefusal as refusal:
            fail(_REFUSALS[refusal.reason](refusal))
        finally:
            record_calls(engine, gateway)
        now = datetime.now(UTC)
        with _one_line_database_errors(), storage.session_scope(engine) as session:
            group, created = storage.upsert_group(
                session,
                vk_id=info.id,
                screen_name=info.screen_name,
                title=info.name,
                now=now,
                city=city,
                comments_enabled=comments,
                shadow_mode=shadow,
                kind=kind,
            )
    finally:
        gateway.close()
        engine.dispose()
    verb = "added" if created else "updated"
    typer.echo(
        f"{verb} {group.screen_name} (id {group.vk_id}, {group.title!r}); city: "
        f"{group.city or '-'}; comments: {'on' if group.comments_enabled else 'off'}"
        + ("; shadow mode" if group.shadow_mode else "")
        + f"; publishes: {group.kind or 'mixed'}"
    )


@groups_app.command("remove")
def remove(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="Screen name, URL or numeric id of an added group."),
) -> None:
    """Stop polling a group (its stored posts stay).

    Example: petmatch groups remove poteryashki_msk
    """
    from bot import storage
    from bot.cli.db_cmd import open_migrated

    engine = open_migrated(settings_from(ctx))
    try:
        with storage.session_scope(engine) as session:
            group = storage.find_group(session, ref)
            if group is None:
                fail(f"no added group matches {ref!r} (see `petmatch groups list`)")
            storage.remove_group(session, group.vk_id)
    finally:
        engine.dispose()
    typer.echo(f"removed {group.screen_name} (id {group.vk_id})")


@groups_app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the groups with their poll state, and the projected daily VK calls.

    Example: petmatch groups list --json
    """
    from bot import storage
    from bot.cli.db_cmd import open_migrated

    settings = settings_from(ctx)
    engine = open_migrated(settings)
    now = datetime.now(UTC)
    try:
        with storage.session_scope(engine) as session:
            groups = storage.list_groups(session)
            today = {c.method: c.count for c in storage.vk_calls_on(session, now.date())}
            problems = storage.problem_counts(session)
    finally:
        engine.dispose()
    walls = sum(1 for g in groups if g.accessible)
    projection = projected_daily_calls(
        walls, settings.polling.interval_minutes, settings.vk.walls_per_execute
    )
    quota = settings.vk.daily_wall_get_quota
    warning = None
    if projection["wall.get"] > quota:
        interval = math.ceil(walls * 24 * 60 / quota) if walls else 0
        warning = (
            f"polling {walls} groups every {settings.polling.interval_minutes:g} min needs "
            f"{projection['wall.get']} wall.get calls a day, over the quota of {quota}; "
            f"poll every {interval} min or fewer groups"
        )
    if as_json:
        payload: dict[str, Any] = {
            "groups": [
                {**_group_json(g), "skipped_items": problems.get(g.vk_id, 0)} for g in groups
            ],
            "interval_minutes": settings.polling.interval_minutes,
            "projected_daily_calls": projection,
            "daily_wall_get_quota": quota,
            "calls_today": today,
            "warning": warning,
        }
        print_json(payload)
    else:
        _print_table(groups, problems)
        typer.echo(
            f"projected per day at every {settings.polling.interval_minutes:g} min: "
            f"{projection['wall.get']} wall.get (quota {quota}), {projection['execute']} execute; "
            f"today so far: {today.get('wall.get', 0)} wall.get, {today.get('execute', 0)} execute"
        )
    if warning:
        typer.echo(f"warning: {warning}", err=True)


def _group_json(group: Any) -> dict[str, Any]:
    return {
        "vk_id": group.vk_id,
        "screen_name": group.screen_name,
        "title": group.title,
        "city": group.city,
        "comments_enabled": group.comments_enabled,
        "shadow_mode": group.shadow_mode,
        "kind": group.kind or "mixed",
        "cursor_post_id": group.cursor_post_id,
        "last_polled_at": group.last_polled_at.isoformat() if group.last_polled_at else None,
        "last_error": group.last_error,
        "accessible": group.accessible,
        "inaccessible_since": (
            group.inaccessible_since.isoformat() if group.inaccessible_since else None
        ),
        "next_check_at": group.next_check_at.isoformat() if group.next_check_at else None,
    }


def _print_table(groups: list[Any], problems: dict[int, int]) -> None:
    from rich.console import Console
    from rich.table import Table

    if not groups:
        typer.echo("no groups yet: petmatch groups add <vk url | screen name | id>")
        return
    table = Table(
        "id", "screen name", "title", "city", "kind", "comments", "cursor", "last poll", "state",
        "skipped",
    )
    for g in groups:
        recheck = f"{g.next_check_at:%Y-%m-%d %H:%M}" if g.next_check_at else "next cycle"
        state = "ok" if g.accessible else f"inaccessible, re-check {recheck}"
        if g.accessible and g.last_error:
            state = f"error: {g.last_error[:60]}"
        table.add_row(
            str(g.vk_id),
            g.screen_name,
            g.title[:40],
            g.city or "-",
            g.kind or "mixed",
            "on" if g.comments_enabled else "off",
            str(g.cursor_post_id),
            f"{g.last_polled_at:%Y-%m-%d %H:%M}" if g.last_polled_at else "never",
            state,
            str(problems.get(g.vk_id, 0)),
        )
    Console(width=160).print(table)
    if any(problems.get(g.vk_id) for g in groups):
        typer.echo("skipped: malformed items polling recorded and skipped (petmatch problems list)")
