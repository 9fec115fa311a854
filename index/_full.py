"""`FullVectors`: the float32 copy of one partition's vectors, kept on disk once saved.

FAISS holds each partition as 8-bit codes (a quarter of the float32 size); the exact
re-check of the best candidates and any rebuild of the partition read the float32 vectors
from here. After a save or a load they live in one file (sorted int64 ids, then the rows in
the same order) that is read row by row with `pread`, so the process keeps only the ids in
memory (8 bytes per vector) and the page cache, not its own heap, holds what is read. Vectors
added since the last save stay in memory until the next save writes a new file.

The file is held open by descriptor: a save by another process that removes it after its
own commit does not break the reads of a process that loaded the older manifest.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from index.errors import IndexCorruptError

__all__ = ["VECTORS_SUFFIX", "FullVectors", "vectors_file_bytes"]

VECTORS_SUFFIX = ".f32"
_WRITE_CHUNK = 16_384


def vectors_file_bytes(count: int, dim: int) -> int:
    """Size of a vectors file: `count` int64 ids, then `count` rows of `dim` float32."""
    return count * (8 + 4 * dim)


class FullVectors:
    """Float32 vectors by id: a saved file (read on demand) plus unsaved additions in memory."""

    def __init__(self, dim: int) -> None:
        self._dim = dim
        self._fd: int | None = None
        self._base_ids = np.empty(0, np.int64)  # sorted; row i of the file is _base_ids[i]
        self._removed: set[int] = set()
        self._pending_ids: list[np.ndarray] = []
        self._pending_vecs: list[np.ndarray] = []
        self._merged: tuple[np.ndarray, np.ndarray] | None = None  # sorted pending (ids, vecs)

    def __del__(self) -> None:
        self._close()

    # ---- changes ------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Hold new (normalized) vectors in memory until the next save."""
        self._pending_ids.append(np.asarray(ids, np.int64))
        self._pending_vecs.append(np.asarray(vectors, np.float32))
        self._merged = None

    def remove(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, np.int64)
        in_base = ids[_member(self._base_ids, ids)]
        self._removed.update(in_base.tolist())
        pend_ids, pend_vecs = self._pending()
        if pend_ids.size:
            keep = ~np.isin(pend_ids, ids)
            self._set_pending(pend_ids[keep], pend_vecs[keep])

    # ---- reads --------------------------------------------------------------------------

    def get(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of `ids`, in that order; every id must be held."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        out = np.empty((ids.size, self._dim), np.float32)
        pend_ids, pend_vecs = self._pending()
        done = np.zeros(ids.size, bool)
        if pend_ids.size:
            pos = np.searchsorted(pend_ids, ids).clip(0, pend_ids.size - 1)
            hit = pend_ids[pos] == ids
            out[hit] = pend_vecs[pos[hit]]
            done |= hit
        if not done.all():
            rows = np.searchsorted(self._base_ids, ids[~done])
            if self._base_ids.size == 0 or bool(
                (rows >= self._base_ids.size).any()
                or (self._base_ids[rows.clip(0, self._base_ids.size - 1)] != ids[~done]).any()
            ):
                raise KeyError("asked for a vector the partition does not hold")
            out[~done] = self._read_rows(rows)
        return out

    def all(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (id, vector) held, sorted by id (read into memory: for rebuilds)."""
        ids = self.ids()
        return ids, self.get(ids) if ids.size else np.empty((0, self._dim), np.float32)

    def ids(self) -> np.ndarray:
        """Every id held, sorted."""
        base = self._base_ids
        if self._removed:
            base = base[~np.isin(base, np.fromiter(self._removed, np.int64))]
        pend_ids, _ = self._pending()
        return np.sort(np.concatenate([base, pend_ids]))

    # ---- files --------------------------------------------------------------------------

    def write(self, path: Path) -> None:
        """Write every vector held to `path` (ids sorted, then rows), chunk by chunk."""
        ids = self.ids()
        with path.open("wb") as fh:
            fh.write(ids.tobytes())
            for start in range(0, ids.size, _WRITE_CHUNK):
                fh.write(self.get(ids[start : start + _WRITE_CHUNK]).tobytes())
            fh.flush()
            os.fsync(fh.fileno())

    def attach(self, path: Path, count: int) -> None:
        """Read from the file at `path` from now on; it holds exactly what is held now."""
        self._open(path, count)
        self._removed.clear()
        self._set_pending(np.empty(0, np.int64), np.empty((0, self._dim), np.float32))

    def open(self, path: Path, count: int) -> None:
        """Start from a saved file (at load)."""
        self._open(path, count)

    def _open(self, path: Path, count: int) -> None:
        expected = vectors_file_bytes(count, self._dim)
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size != expected:
                raise IndexCorruptError(f"{path} has {size} bytes, expected {expected}")
            ids = np.frombuffer(_pread_all(fd, 8 * count, 0), np.int64).copy()
        except BaseException:
            os.close(fd)
            raise
        if ids.size > 1 and not bool((np.diff(ids) > 0).all()):
            os.close(fd)
            raise IndexCorruptError(f"{path}: ids are not sorted and unique")
        self._close()
        self._fd, self._base_ids = fd, ids

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    # ---- internals ----------------------------------------------------------------------

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        if self._fd is None:
            raise KeyError("no saved vectors to read")
        row_bytes = 4 * self._dim
        start = 8 * self._base_ids.size
        out = np.empty((rows.size, self._dim), np.float32)
        order = np.argsort(rows, kind="stable")
        for i in order:  # in file order: reads stay sequential where rows are close
            raw = _pread_all(self._fd, row_bytes, start + int(rows[i]) * row_bytes)
            out[i] = np.frombuffer(raw, np.float32)
        return out

    def _pending(self) -> tuple[np.ndarray, np.ndarray]:
        if self._merged is None:
            if self._pending_ids:
                ids = np.concatenate(self._pending_ids)
                vecs = np.concatenate(self._pending_vecs)
                order = np.argsort(ids, kind="stable")
                self._set_pending(ids[order], vecs[order])
            else:
                self._set_pending(np.empty(0, np.int64), np.empty((0, self._dim), np.float32))
        assert self._merged is not None
        return self._merged

    def _set_pending(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        self._merged = (ids, vecs)
        self._pending_ids = [ids] if ids.size else []
        self._pending_vecs = [vecs] if ids.size else []


def _member(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    if sorted_ids.size == 0:
        return np.zeros(ids.size, bool)
    pos = np.searchsorted(sorted_ids, ids).clip(0, sorted_ids.size - 1)
    return sorted_ids[pos] == ids


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    parts = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            raise IndexCorruptError("a vectors file ended early")
        parts.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(parts)
