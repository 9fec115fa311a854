"""Engines, sessions and migrations. Alembic is configured in code so it works from an
installed package: `script_location` points at `bot/migrations`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.storage.errors import DatabaseNotMigratedError

logger = logging.getLogger("petmatch.storage")
# Alembic announces every plugin and context at INFO on each schema check; keep its warnings.
for _name in ("alembic.runtime.plugins", "alembic.runtime.migration"):
    logging.getLogger(_name).setLevel(logging.WARNING)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

SessionFactory = Callable[[], Session]


def open_database(url: str) -> Engine:
    """An engine for `url`; SQLite gets its folder created, WAL, foreign keys and a busy wait."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
    finally:
        cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory; objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False, future=True)


@contextmanager
def session_scope(engine_or_factory: Engine | SessionFactory) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back on an exception."""
    factory = (
        session_factory(engine_or_factory)
        if isinstance(engine_or_factory, Engine)
        else engine_or_factory
    )
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def limit_lock_wait(session: Session, seconds: float) -> None:
    """Give up on a row lock after `seconds` in this transaction (PostgreSQL's `lock_timeout`;
    SQLite has one writer and its own busy timeout). A vision worker holds its claimed post
    while it works, and a wait that spans a worker's two connections is a deadlock PostgreSQL
    cannot see: a bounded wait turns it into an error the caller retries later."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL lock_timeout = {int(seconds * 1000)}"))


def alembic_config(engine: Engine) -> Config:
    """An Alembic config for `engine`, with no ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade_database(engine: Engine, revision: str = "base") -> None:
    """Revert migrations down to `revision` (tests and emergencies)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    with engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(heads) if heads else None


def head_revision() -> str:
    """The newest revision the code knows."""
    script = ScriptDirectory.from_config(_script_config())
    return ",".join(script.get_heads())


def _script_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def ensure_migrated(engine: Engine) -> None:
    """Raise `DatabaseNotMigratedError` unless the database is at the code's head revision."""
    current = current_revision(engine)
    head = head_revision()
    if current is None:
        raise DatabaseNotMigratedError("no schema yet")
    if set(current.split(",")) != set(head.split(",")):
        raise DatabaseNotMigratedError(f"at {current}, code expects {head}")
