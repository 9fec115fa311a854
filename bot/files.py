"""Where the vision stage keeps what it writes (photos, crops), behind one interface.

`LocalFiles` (the default) writes under the data root, as one machine needs. `DatabaseFiles`
writes into the database's `stored_files` table, so a worker on another machine, the
scheduler and the review desk read what any of them wrote with nothing shared but the
database. A file is named by a reference string kept in the database (`photos.file_path`,
`animals.crop_path`): a path for a local file, `db:<name>` for one in the database;
`read_file` reads either, whatever the current setting, so switching keeps old files readable.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from bot import storage
from bot.config import Settings
from bot.storage import workers as worker_store

__all__ = ["DB_PREFIX", "DatabaseFiles", "FileStore", "LocalFiles", "file_store", "read_file"]

DB_PREFIX = "db:"


class FileStore(Protocol):
    def put(self, name: str, data: bytes) -> str:
        """Store `data` under the relative `name`; the reference to keep in the database."""
        ...


class LocalFiles:
    """Files under one folder, written atomically (temporary file, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, name: str, data: bytes) -> str:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return str(target)


class DatabaseFiles:
    """Files in the database (`stored_files`), one committed row per file."""

    def __init__(self, sessions: storage.SessionFactory) -> None:
        self._sessions = sessions

    def put(self, name: str, data: bytes) -> str:
        with storage.session_scope(self._sessions) as session:
            worker_store.put_stored_file(session, name, data, now=datetime.now(UTC))
        return DB_PREFIX + name


def file_store(settings: Settings, sessions: storage.SessionFactory) -> FileStore:
    """The store `workers.files` names: `local` (under `var_dir`) or `database`."""
    if settings.workers.files == "database":
        return DatabaseFiles(sessions)
    return LocalFiles(settings.var_dir)


def read_file(reference: str | Path, sessions: storage.SessionFactory) -> bytes:
    """The bytes behind a reference that `put` returned (or a plain path)."""
    text = str(reference)
    if text.startswith(DB_PREFIX):
        with storage.session_scope(sessions) as session:
            return worker_store.read_stored_file(session, text.removeprefix(DB_PREFIX))
    return Path(text).read_bytes()
