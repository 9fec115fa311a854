"""The single-instance lock of `petmatch run`: a PostgreSQL advisory lock, or a lock file
next to a SQLite database."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Engine, text

from bot.storage.errors import AlreadyRunningError

_LOCK_NAME = "petmatch.run"
ADVISORY_KEY = zlib.crc32(_LOCK_NAME.encode())  # a stable 32-bit key


def _lock_file(engine: Engine, fallback_dir: Path) -> Path:
    database = engine.url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        return Path(database).expanduser().resolve().with_name(Path(database).name + ".lock")
    fallback_dir.mkdir(parents=True, exist_ok=True)
    return fallback_dir / "petmatch.lock"


@contextmanager
def instance_lock(engine: Engine, *, lock_dir: Path) -> Iterator[None]:
    """Hold the lock for the block; raise `AlreadyRunningError` if another process has it."""
    message = "another petmatch run (or poll) is already working on this database"
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}
            ).scalar()
            connection.commit()
            if not got:
                raise AlreadyRunningError(message)
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
                connection.commit()
        return
    lock = FileLock(str(_lock_file(engine, lock_dir)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise AlreadyRunningError(message) from None
    try:
        yield
    finally:
        lock.release()
