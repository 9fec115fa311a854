"""Errors raised by the vector index.

    VectorIndexError                  base of everything `index` raises
    ├── InvalidVectorError            vectors of the wrong shape, NaN/inf, or all zeros
    │                                 (also a ValueError)
    ├── DuplicateIdError              an id that is already stored somewhere in the index
    ├── ModelMismatchError            vectors of another model_id or dimension than the index's
    └── IndexLoadError                a saved index cannot be used: rebuild it from the database
        ├── IndexNotFoundError        no saved index at that path
        ├── IndexCorruptError         manifest unreadable, a file missing, partial, or whose
        │                             sha256, size, count or dimension differs from the manifest
        └── StaleIndexError           a saved index of another model_id or dimension than the
                                      one wanted (also a ModelMismatchError)

Callers that rebuild on any unusable saved index catch `IndexLoadError`.
"""

from __future__ import annotations

__all__ = [
    "DuplicateIdError",
    "IndexCorruptError",
    "IndexLoadError",
    "IndexNotFoundError",
    "InvalidVectorError",
    "ModelMismatchError",
    "StaleIndexError",
    "VectorIndexError",
]


class VectorIndexError(Exception):
    """Base of every error the index raises."""


class InvalidVectorError(VectorIndexError, ValueError):
    """Vectors of the wrong shape, with NaN/inf values, or of zero length."""


class DuplicateIdError(VectorIndexError):
    """An id is already stored in the index (ids are unique across all partitions)."""


class ModelMismatchError(VectorIndexError):
    """Vectors of another model or dimension than the index is tied to."""


class IndexLoadError(VectorIndexError):
    """A saved index cannot be used; the caller rebuilds it."""


class IndexNotFoundError(IndexLoadError):
    """No saved index at the given path."""


class IndexCorruptError(IndexLoadError):
    """The saved index is damaged: unreadable manifest, missing or partial files, bad hash."""


class StaleIndexError(IndexLoadError, ModelMismatchError):
    """The saved index belongs to another model_id or dimension than the one wanted."""
