"""`petmatch problems list`: the malformed items polling skipped, and why."""

from __future__ import annotations

import typer

from bot.cli._context import fail, print_json, settings_from

problems_app = typer.Typer(
    help=(
        "Items polling could not read and skipped (malformed posts), kept for a look.\n\n"
        "Example: petmatch problems list --group poteryashki_msk"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the `problems` sub-app to the root app."""
    app.add_typer(problems_app, name="problems")


@problems_app.command("list")
def list_(
    ctx: typer.Context,
    group: str = typer.Option(None, help="Only this group (screen name, URL or id)."),
    limit: int = typer.Option(50, min=1, help="How many, most recently seen first."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List skipped items: group, post id as VK sent it, reason, and an excerpt of the item.

    Example: petmatch problems list --limit 20 --json
    """
    from bot import storage
    from bot.cli.db_cmd import open_migrated

    engine = open_migrated(settings_from(ctx))
    try:
        with storage.session_scope(engine) as session:
            vk_id = None
            if group is not None:
                found = storage.find_group(session, group)
                if found is None:
                    fail(f"no added group matches {group!r} (see `petmatch groups list`)")
                vk_id = found.vk_id
            names = {g.vk_id: g.screen_name for g in storage.list_groups(session)}
            problems = storage.list_problems(session, group_vk_id=vk_id, limit=limit)
    finally:
        engine.dispose()
    for problem in problems:
        record = {
            "group": names.get(problem.group_vk_id or 0, problem.group_vk_id),
            "post": problem.post_ref,
            "post_url": _post_url(problem.owner_id, problem.post_ref),
            "reason": problem.reason,
            "excerpt": problem.excerpt,
            "seen": problem.seen_count,
            "first_seen_at": problem.first_seen_at.isoformat(),
            "last_seen_at": problem.last_seen_at.isoformat(),
        }
        if as_json:
            print_json(record)
            continue
        typer.echo(
            f"{record['group']}  post {problem.post_ref or '?'}  (seen {problem.seen_count}x, "
            f"last {problem.last_seen_at:%Y-%m-%d %H:%M})\n  {problem.reason}\n"
            f"  {problem.excerpt[:200]}"
        )
    if not problems and not as_json:
        typer.echo("no skipped items")


def _post_url(owner_id: int | None, post_ref: str) -> str | None:
    if owner_id is None or not post_ref.isdigit():
        return None
    return f"https://vk.com/wall{owner_id}_{post_ref}"
