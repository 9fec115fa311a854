"""Storage errors.

StorageError                    anything the storage layer refuses
├── DatabaseNotMigratedError    the schema is missing or behind the code: run `petmatch db upgrade`
├── AlreadyRunningError         another `petmatch run` holds the single-instance lock
└── NotFoundError               a referenced row (group, post, photo) does not exist
"""

from __future__ import annotations

__all__ = ["AlreadyRunningError", "DatabaseNotMigratedError", "NotFoundError", "StorageError"]


class StorageError(Exception):
    """Something the storage layer refuses."""


class DatabaseNotMigratedError(StorageError):
    """The database schema is missing or older than the code."""

    def __init__(self, detail: str = "") -> None:
        message = "database is not migrated: run `petmatch db upgrade`"
        super().__init__(f"{message} ({detail})" if detail else message)


class AlreadyRunningError(StorageError):
    """Another `petmatch run` already works on this database."""


class NotFoundError(StorageError):
    """A referenced row does not exist."""
