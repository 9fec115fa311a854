"""Fixtures for `tests/bot`: databases on both backends, and the fake VK server.

`database_url` runs a test on SQLite and on PostgreSQL (127.0.0.1:5432, trust auth). For
PostgreSQL each test session creates its own uniquely named database and drops it at the
end, because several people run tests against that server at once; the pg cases skip with
a reason when the server is unreachable."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from bot.storage import open_database, session_factory, upgrade_database
from tests.bot.fakevk_fixtures import *  # noqa: F403  (fake_vk, vk_settings, gateway)

PG_ADMIN_URL = os.environ.get(
    "PETMATCH_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _pg_admin() -> Engine:
    return create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )


def _pg_create_database() -> str:
    """A fresh database on the PostgreSQL server, or skip when it is unreachable."""
    admin = _pg_admin()
    name = f"petmatch_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any connection failure means "no server"
        pytest.skip(f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {type(exc).__name__}")
    finally:
        admin.dispose()
    return str(make_url_with_database(PG_ADMIN_URL, name))


def make_url_with_database(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _pg_drop_database(url: str) -> None:
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    admin = _pg_admin()
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def pg_migrated_url() -> Iterator[str]:
    """A migrated PostgreSQL database for the whole session."""
    url = _pg_create_database()
    engine = open_database(url)
    try:
        upgrade_database(engine)
    finally:
        engine.dispose()
    yield url
    _pg_drop_database(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = open_database(f"sqlite:///{path}")
    upgrade_database(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    try:
        tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
        if tables:
            with engine.begin() as connection:
                names = ", ".join(f'"{t}"' for t in tables)
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "petmatch.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_migrated_url")
    _truncate_all(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no schema at all, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    # A fresh schema in the session's database is much cheaper than a new database.
    base = request.getfixturevalue("pg_migrated_url")
    schema = f"empty_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield f"{base}?options=-csearch_path%3D{schema}"
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def now() -> datetime:
    return NOW
