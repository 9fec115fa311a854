"""`petmatch db upgrade | current`, and the database helpers other commands share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from bot.cli._context import fail, print_json, settings_from

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bot.config import Settings

db_app = typer.Typer(
    help="Database schema (Alembic migrations).\n\nExample: petmatch db upgrade",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the `db` sub-app to the root app."""
    app.add_typer(db_app, name="db")


def display_url(url: str) -> str:
    """The database URL with any password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def open_migrated(settings: Settings) -> Engine:
    """An engine on a migrated database, or one clear line and exit 1."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.storage import DatabaseNotMigratedError, ensure_migrated, open_database

    try:
        engine = open_database(settings.database_url)
        ensure_migrated(engine)
    except DatabaseNotMigratedError as exc:
        fail(str(exc))
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot open the database {display_url(settings.database_url)}: {_short(exc)}")
    return engine


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


@db_app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    revision: str = typer.Option("head", help="Target revision."),
) -> None:
    """Create or update the schema to the newest revision.

    Example: petmatch db upgrade
    """
    from sqlalchemy.exc import SQLAlchemyError

    from bot.storage import current_revision, open_database, upgrade_database

    settings = settings_from(ctx)
    try:
        engine = open_database(settings.database_url)
        try:
            upgrade_database(engine, revision)
            now_at = current_revision(engine)
        finally:
            engine.dispose()
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot migrate {display_url(settings.database_url)}: {_short(exc)}")
    typer.echo(f"database {display_url(settings.database_url)} is at revision {now_at}")


@db_app.command("current")
def current(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the schema revision of the database and the newest one the code knows.

    Example: petmatch db current --json
    """
    from sqlalchemy.exc import SQLAlchemyError

    from bot.storage import current_revision, head_revision, open_database

    settings = settings_from(ctx)
    try:
        engine = open_database(settings.database_url)
        try:
            at = current_revision(engine)
        finally:
            engine.dispose()
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot open {display_url(settings.database_url)}: {_short(exc)}")
    head = head_revision()
    payload = {
        "database": display_url(settings.database_url),
        "current": at,
        "head": head,
        "up_to_date": at == head,
    }
    if as_json:
        print_json(payload)
        return
    typer.echo(f"database: {payload['database']}")
    typer.echo(f"current:  {at or '(not migrated)'}")
    typer.echo(f"head:     {head}")
    if at != head:
        typer.echo("run `petmatch db upgrade` to update it")
