"""`petmatch web`, `petmatch users add | list | remove` and `petmatch calibrate --from-reviews`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from bot.cli._context import fail, print_json, settings_from

users_app = typer.Typer(
    help="Accounts of the review desk.\n\nExample: petmatch users add anna --role volunteer",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add `web`, `users` and `calibrate` to the root app."""
    app.command("web")(web)
    app.add_typer(users_app, name="users")
    app.command("calibrate")(calibrate)


def web(
    ctx: typer.Context,
    host: str = typer.Option(None, help="Address to listen on (default: web.host, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default: web.port, 8080)."),
) -> None:
    """Run the review desk: the queue of uncertain pairs, search by photo, groups, dashboard.

    Example: petmatch web --host 0.0.0.0 --port 8080
    """
    import uvicorn

    from bot import storage
    from bot.cli.db_cmd import open_migrated
    from bot.web import create_app

    settings = settings_from(ctx)
    engine = open_migrated(settings)
    app = create_app(settings, sessions=storage.session_factory(engine))
    host = host or settings.web.host
    port = settings.web.port if port is None else port
    typer.echo(f"review desk on http://{host}:{port}/ (Ctrl-C stops it)", err=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                    lifespan="off", ws="none", server_header=False)
    finally:
        engine.dispose()


def _read_password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            fail(f"cannot read {password_file}: {exc.strerror or exc}")
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Login name."),
    role: str = typer.Option("volunteer", help="admin or volunteer."),
    password_file: Path = typer.Option(
        None, "--password-file", help="Read the password from this file (else a prompt)."
    ),
) -> None:
    """Create a desk account; the password comes from a prompt, a file or stdin.

    Example: petmatch users add anna --role admin --password-file /run/secrets/anna
    """
    from bot import storage
    from bot.cli.db_cmd import open_migrated
    from bot.storage import reviews
    from bot.web.security import hash_password

    try:
        chosen = reviews.Role(role)
    except ValueError:
        fail("--role must be admin or volunteer")
    name = name.strip()
    if not name or len(name) > 64:
        fail("the name must have 1 to 64 characters")
    try:
        password_hash = hash_password(_read_password(password_file))
    except ValueError as exc:
        fail(str(exc))
    engine = open_migrated(settings_from(ctx))
    try:
        with storage.session_scope(engine) as session:
            reviews.add_user(
                session, name, role=chosen, password_hash=password_hash, now=datetime.now(UTC)
            )
    except ValueError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    typer.echo(f"added {name} ({chosen.value})")


@users_app.command("list")
def users_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the desk accounts and when each last logged in.

    Example: petmatch users list --json
    """
    from bot import storage
    from bot.cli.db_cmd import open_migrated
    from bot.storage import reviews

    engine = open_migrated(settings_from(ctx))
    try:
        with storage.session_scope(engine) as session:
            users = reviews.list_users(session)
    finally:
        engine.dispose()
    rows = [
        {
            "name": u.name,
            "role": u.role.value,
            "created_at": u.created_at.isoformat(),
            "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
        }
        for u in users
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no accounts yet: petmatch users add NAME --role admin")
    for row in rows:
        typer.echo(f"{row['name']:<24} {row['role']:<10} last login {row['last_login_at'] or '-'}")


@users_app.command("remove")
def users_remove(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Login name."),
) -> None:
    """Delete a desk account (its past decisions keep the name).

    Example: petmatch users remove anna
    """
    from bot import storage
    from bot.cli.db_cmd import open_migrated
    from bot.storage import reviews

    engine = open_migrated(settings_from(ctx))
    try:
        with storage.session_scope(engine) as session:
            removed = reviews.remove_user(session, name)
    finally:
        engine.dispose()
    if not removed:
        fail(f"no account named {name!r}")
    typer.echo(f"removed {name}")


def calibrate(
    ctx: typer.Context,
    from_reviews: bool = typer.Option(
        False, "--from-reviews", help="Refit with the pairs reviewers decided on the desk."
    ),
    fit_set: Path = typer.Option(
        Path("../shared/data/reid/vk_set2"),
        "--fit-set",
        help="Identity-labelled folder (query/ and gallery/) of the existing fitting pairs.",
    ),
    holdout_percent: int = typer.Option(
        30, "--holdout-percent", min=10, max=90, help="Reviews held back to judge the refit."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print before/after; save nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Refit the confidence calibration with reviewed pairs plus the existing fitting pairs,
    print before/after on held-back reviews, and save it beside the model.

    Example: petmatch calibrate --from-reviews --fit-set ../shared/data/reid/vk_set2
    """
    from bot.review_calibration import ReviewCalibrationError, calibrate_from_reviews

    if not from_reviews:
        fail("only --from-reviews is supported here; scripts/calibrate.py fits from scratch")
    settings = settings_from(ctx)
    from bot import storage
    from bot.cli.db_cmd import open_migrated

    engine = open_migrated(settings)
    try:
        report = calibrate_from_reviews(
            settings,
            storage.session_factory(engine),
            fit_set=fit_set,
            holdout_percent=holdout_percent,
            save=not dry_run,
        )
    except ReviewCalibrationError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    if as_json:
        print_json(report)
        return
    typer.echo(
        f"reviewed pairs: {report['reviewed']} ({report['reviewed_same']} same), "
        f"fit on {report['fit_reviews']} + {report['fit_set_pairs']} existing pairs, "
        f"judged on {report['held_back']} held-back reviews"
    )
    for name in ("before", "after"):
        row = report[name]
        typer.echo(
            f"{name:<7} threshold {row['threshold']}  precision {row['precision']}  "
            f"recall {row['recall']}  different above {row['different_above']}"
        )
    typer.echo(f"saved: {report['saved']}" if report["saved"] else "not saved (--dry-run)")
