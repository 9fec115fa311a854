"""`FaissIndex`: partitioned cosine-similarity search over vectors with stable int64 ids.

Each partition is one FAISS index over 8-bit codes of the vectors plus a float32 copy
(`FullVectors`, on disk once saved). Vectors are L2-normalized, so inner product is cosine
similarity; the codes are the components scaled to the int8 range and rounded
(`QT_8bit_direct_signed`: a quarter of the float32 memory, and the fastest 8-bit scan FAISS
has here; see `_codes`). A search takes the best `max(RECHECK_FACTOR * k, RECHECK_MIN)`
candidates by code and re-ranks them by the exact float32 similarity, which is also the
similarity returned. Small partitions are exact scans (`IndexIDMap2` over
`IndexScalarQuantizer`). A partition that grows past `exact_limit` is rebuilt as an
`IndexIVFScalarQuantizer` with its own ids and a hash-table direct map: `IndexIDMap2` cannot
wrap an IVF index and still remove ids, because IVF keeps the internal ids it was given while
the id map compacts. The IVF's `nprobe` is tuned when it is built so that recall@10 (after the
re-check) against exact search reaches `target_recall` on perturbed copies of the partition's
own vectors.

Saving writes each changed partition to a new file, then replaces `manifest.json`
atomically (`os.replace`): the manifest is the commit point, so a crash mid-save leaves the
previous manifest and the files it names untouched. Files no manifest names are removed
after the commit. One writer per directory at a time: `save` holds an exclusive `flock` on
`.lock` in the directory (NFS carries it to other machines), so a nightly rebuild and the
running bot never delete each other's files mid-save.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from pydantic import ValidationError

from index._full import VECTORS_SUFFIX, FullVectors, vectors_file_bytes
from index._types import (
    FORMAT_VERSION,
    Candidate,
    IndexManifest,
    ManifestPartition,
    PartitionInfo,
    PartitionKey,
    Structure,
)
from index.errors import (
    DuplicateIdError,
    IndexCorruptError,
    IndexNotFoundError,
    InvalidVectorError,
    ModelMismatchError,
    StaleIndexError,
)

__all__ = ["MANIFEST_NAME", "FaissIndex"]

log = logging.getLogger("petmatch.index")

MANIFEST_NAME = "manifest.json"
_TMP_PREFIX = ".tmp-"
_LOCK_NAME = ".lock"
_PARTITION_SUFFIX = ".faiss"
_HASH_CHUNK = 1 << 22
_CODE_MAX = 127.0
_CODE_SIGMAS = 8.0
_QTYPE = faiss.ScalarQuantizer.QT_8bit_direct_signed
RECHECK_FACTOR = 4
RECHECK_MIN = 64
DEFAULT_EXACT_LIMIT = 50_000
_ADD_CHUNK = 32_768
_TRAIN_POINTS_PER_LIST = 64


class _Partition:
    """One FAISS index plus the bookkeeping the store needs about it."""

    __slots__ = ("dirty", "file", "full", "index", "structure", "trained_count")

    def __init__(
        self,
        index: faiss.Index,
        structure: Structure,
        trained_count: int | None,
        full: FullVectors,
    ) -> None:
        self.index = index
        self.structure: Structure = structure
        self.trained_count = trained_count
        self.full = full
        self.dirty = True
        self.file: ManifestPartition | None = None

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        # In chunks: the float32 input of the codes would otherwise double a large add.
        for start in range(0, ids.shape[0], _ADD_CHUNK):
            stop = start + _ADD_CHUNK
            self.index.add_with_ids(_codes(vectors[start:stop]), ids[start:stop])
        self.full.add(ids, vectors)

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[float, int]]]:
        """Top-`k` (similarity, id) per query: candidates by code, ranked in float32."""
        pool = min(self.count, max(RECHECK_FACTOR * k, RECHECK_MIN))
        # The 8-bit direct codec quantizes the query too: it gets the same scale and rounding.
        _, found = self.index.search(_codes(queries), pool)
        out = []
        for query, row in zip(queries, found, strict=True):
            ids = row[row >= 0]
            out.append(_rerank(query, ids, self.full.get(ids), k) if ids.size else [])
        return out

    @property
    def count(self) -> int:
        return int(self.index.ntotal)


class FaissIndex:
    """Vectors of one model, partitioned by `PartitionKey`, searched by cosine similarity."""

    def __init__(
        self,
        model_id: str,
        dim: int,
        *,
        exact_limit: int = DEFAULT_EXACT_LIMIT,
        target_recall: float = 0.98,
        retrain_growth: float = 4.0,
    ) -> None:
        if not model_id:
            raise ValueError("model_id must be a non-empty string")
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        if exact_limit < 1:
            raise ValueError(f"exact_limit must be at least 1, got {exact_limit}")
        if not 0.0 < target_recall <= 1.0:
            raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
        self._model_id = model_id
        self._dim = dim
        self._exact_limit = exact_limit
        self._target_recall = target_recall
        self._retrain_growth = retrain_growth
        self._parts: dict[PartitionKey, _Partition] = {}
        self._owner: dict[int, PartitionKey] = {}
        self._saved_dir: Path | None = None

    # ---- properties -------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def exact_limit(self) -> int:
        return self._exact_limit

    def __len__(self) -> int:
        return len(self._owner)

    def __contains__(self, vector_id: object) -> bool:
        return isinstance(vector_id, int | np.integer) and int(vector_id) in self._owner

    def partition_of(self, vector_id: int) -> PartitionKey | None:
        """The partition that holds `vector_id`, or None."""
        return self._owner.get(int(vector_id))

    def partitions(self) -> list[PartitionInfo]:
        """Every non-empty partition with its size and structure, sorted by key."""
        infos = []
        for key, part in self._parts.items():
            nlist = nprobe = None
            if part.structure == "ivf":
                ivf = part.index
                nlist, nprobe = int(ivf.nlist), int(ivf.nprobe)
            infos.append(
                PartitionInfo(
                    key=key, count=part.count, structure=part.structure, nlist=nlist, nprobe=nprobe
                )
            )
        return sorted(infos, key=lambda i: (i.key.species, i.key.kind, i.key.city or ""))

    def count(self, key: PartitionKey) -> int:
        part = self._parts.get(key)
        return part.count if part is not None else 0

    # ---- add / remove -----------------------------------------------------------------

    def add(
        self,
        key: PartitionKey,
        ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray,
        *,
        model_id: str,
    ) -> None:
        """Add vectors of `model_id` under unique int64 `ids` to partition `key`.

        Vectors are L2-normalized on the way in (the caller's array is not modified).
        Raises `ModelMismatchError` for another model or dimension, `DuplicateIdError`
        for an id already stored anywhere in the index.
        """
        self._check_model(model_id)
        matrix = self._prepare(vectors)
        id_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if id_arr.shape[0] != matrix.shape[0]:
            raise InvalidVectorError(
                f"{id_arr.shape[0]} ids for {matrix.shape[0]} vectors; they must pair up"
            )
        if matrix.shape[0] == 0:
            return
        if np.unique(id_arr).shape[0] != id_arr.shape[0]:
            raise DuplicateIdError("the same id appears twice in one add() call")
        taken = [int(i) for i in id_arr if int(i) in self._owner]
        if taken:
            raise DuplicateIdError(
                f"{len(taken)} id(s) already stored, e.g. {taken[0]} in "
                f"{self._owner[taken[0]]}; remove them first"
            )
        part = self._parts.get(key)
        new_total = (part.count if part else 0) + matrix.shape[0]
        if part is None and new_total > self._exact_limit:
            part = self._build_ivf(id_arr, matrix)
            self._parts[key] = part
        elif part is None:
            part = _Partition(_new_exact(self._dim), "exact", None, FullVectors(self._dim))
            part.add(id_arr, matrix)
            self._parts[key] = part
        elif self._needs_rebuild(part, new_total):
            old_ids, old_vecs = _extract(part)
            part = self._build_ivf(
                np.concatenate([old_ids, id_arr]), np.concatenate([old_vecs, matrix])
            )
            self._parts[key] = part
        else:
            part.add(id_arr, matrix)
        part.dirty = True
        self._owner.update(dict.fromkeys(id_arr.tolist(), key))

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """Remove vectors by id wherever they are; unknown ids are ignored. Returns the count."""
        by_key: dict[PartitionKey, list[int]] = {}
        for raw in np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids).reshape(-1):
            vid = int(raw)
            key = self._owner.get(vid)
            if key is not None:
                by_key.setdefault(key, []).append(vid)
        removed = 0
        for key, id_list in by_key.items():
            part = self._parts[key]
            id_arr = np.unique(np.asarray(id_list, dtype=np.int64))
            n = int(part.index.remove_ids(id_arr))
            part.full.remove(id_arr)
            if n != id_arr.shape[0]:
                raise IndexCorruptError(
                    f"partition {key} removed {n} of {id_arr.shape[0]} ids it should hold"
                )
            removed += n
            for vid in id_list:
                self._owner.pop(vid, None)
            part.dirty = True
            if part.count == 0:
                del self._parts[key]
            elif part.structure == "ivf" and part.count < self._exact_limit // 2:
                kept_ids, kept_vecs = _extract(part)
                exact = _Partition(_new_exact(self._dim), "exact", None, FullVectors(self._dim))
                exact.add(kept_ids, kept_vecs)
                self._parts[key] = exact
        return removed

    def get_vector(self, vector_id: int) -> np.ndarray:
        """The stored (normalized) vector of `vector_id`; KeyError if absent."""
        key = self._owner.get(int(vector_id))
        if key is None:
            raise KeyError(f"id {vector_id} is not in the index")
        return self._parts[key].full.get(np.array([int(vector_id)], np.int64))[0]

    # ---- search -----------------------------------------------------------------------

    def search(
        self,
        vectors: np.ndarray,
        keys: PartitionKey | Sequence[PartitionKey],
        k: int = 10,
        *,
        model_id: str | None = None,
    ) -> list[list[Candidate]]:
        """For each query vector, the top-`k` stored vectors across `keys`, best first.

        Several keys (same species and opposite kind in the cities within reach, say) are
        searched separately and merged by similarity. Missing partitions are empty. When
        `model_id` is given it must be the index's.
        """
        if model_id is not None:
            self._check_model(model_id)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        queries = self._prepare(vectors)
        key_list = [keys] if isinstance(keys, PartitionKey) else list(dict.fromkeys(keys))
        nq = queries.shape[0]
        pooled: list[list[tuple[float, int, PartitionKey]]] = [[] for _ in range(nq)]
        for key in key_list:
            part = self._parts.get(key)
            if part is None or part.count == 0:
                continue
            for qi, hits in enumerate(part.search(queries, min(k, part.count))):
                pooled[qi].extend((sim, vid, key) for sim, vid in hits)
        results: list[list[Candidate]] = []
        for rows in pooled:
            rows.sort(key=lambda r: (-r[0], r[1]))
            results.append(
                [
                    Candidate(id=vid, similarity=min(1.0, max(-1.0, sim)), partition=key)
                    for sim, vid, key in rows[:k]
                ]
            )
        return results

    # ---- persistence ------------------------------------------------------------------

    def save(self, directory: str | Path) -> IndexManifest:
        """Save atomically into `directory`; unchanged partitions are not rewritten. Another
        process saving into the same directory waits for this one to finish."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with _save_lock(directory):
            return self._save_locked(directory)

    def _save_locked(self, directory: Path) -> IndexManifest:
        token = uuid.uuid4().hex[:12]
        same_dir = self._saved_dir is not None and _same_path(self._saved_dir, directory)
        entries: list[ManifestPartition] = []
        written: list[tuple[_Partition, ManifestPartition]] = []
        for key in sorted(self._parts, key=lambda k: (k.species, k.kind, k.city or "")):
            part = self._parts[key]
            reuse = part.file
            if (
                not part.dirty
                and same_dir
                and reuse is not None
                and (directory / reuse.file).is_file()
                and (directory / reuse.file).stat().st_size == reuse.bytes
            ):
                entries.append(reuse)
                continue
            name = f"{key.slug()}.{token}{_PARTITION_SUFFIX}"
            tmp = directory / f"{_TMP_PREFIX}{name}"
            faiss.write_index(part.index, str(tmp))
            _fsync_file(tmp)
            digest, size = _sha256(tmp)
            os.replace(tmp, directory / name)
            vectors = _write_vectors(part, directory, name)
            entry = ManifestPartition(
                key=key,
                file=name,
                count=part.count,
                structure=part.structure,
                bytes=size,
                sha256=digest,
                trained_count=part.trained_count,
                **vectors,
            )
            entries.append(entry)
            written.append((part, entry))
        manifest = IndexManifest(
            format_version=FORMAT_VERSION,
            model_id=self._model_id,
            dim=self._dim,
            total=len(self._owner),
            partitions=tuple(entries),
        )
        _fsync_dir(directory)
        tmp_manifest = directory / f"{_TMP_PREFIX}{token}.{MANIFEST_NAME}"
        tmp_manifest.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        _fsync_file(tmp_manifest)
        os.replace(tmp_manifest, directory / MANIFEST_NAME)
        _fsync_dir(directory)
        # Committed: only now is the in-memory state "clean" against this directory.
        for part, entry in written:
            assert entry.vectors_file is not None
            part.full.attach(directory / entry.vectors_file, entry.count)
            part.file = entry
            part.dirty = False
        self._saved_dir = directory
        _remove_unreferenced(
            directory, {e.file for e in entries} | {e.vectors_file or "" for e in entries}
        )
        log.info(
            "saved index %s (%d vectors, %d partitions, %d rewritten) to %s",
            self._model_id,
            manifest.total,
            len(entries),
            len(written),
            directory,
        )
        return manifest

    @staticmethod
    def read_manifest(directory: str | Path) -> IndexManifest:
        """The manifest of a saved index, without loading it (to check model_id first)."""
        directory = Path(directory)
        path = directory / MANIFEST_NAME
        if not path.is_file():
            raise IndexNotFoundError(f"no saved index at {directory} (missing {MANIFEST_NAME})")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            manifest = IndexManifest.model_validate(raw)
        except (OSError, UnicodeDecodeError, ValueError, ValidationError) as exc:
            raise IndexCorruptError(f"unreadable manifest {path}: {exc}") from exc
        if manifest.format_version != FORMAT_VERSION:
            raise IndexCorruptError(
                f"{path}: format_version {manifest.format_version}, expected {FORMAT_VERSION}"
            )
        return manifest

    @classmethod
    def load(cls, directory: str | Path, **options: Any) -> FaissIndex:
        """Load a saved index (see `_load_unlocked` for `options` and errors), never while
        another process is in the middle of saving into the same directory."""
        with _save_lock(Path(directory), shared=True):
            return cls._load_unlocked(directory, **options)

    @classmethod
    def _load_unlocked(
        cls,
        directory: str | Path,
        *,
        model_id: str | None = None,
        dim: int | None = None,
        verify: bool = True,
        exact_limit: int = DEFAULT_EXACT_LIMIT,
        target_recall: float = 0.98,
        retrain_growth: float = 4.0,
    ) -> FaissIndex:
        """Load a saved index, checking sizes and sha256 of every file (unless `verify=False`).

        Raises `IndexNotFoundError`, `IndexCorruptError`, or `StaleIndexError` when `model_id`
        / `dim` are given and differ from the saved ones; all are `IndexLoadError`, after
        which the caller rebuilds.
        """
        directory = Path(directory)
        manifest = cls.read_manifest(directory)
        if model_id is not None and manifest.model_id != model_id:
            raise StaleIndexError(
                f"index at {directory} holds vectors of {manifest.model_id!r}, "
                f"not {model_id!r}: rebuild it"
            )
        if dim is not None and manifest.dim != dim:
            raise StaleIndexError(
                f"index at {directory} has dimension {manifest.dim}, not {dim}: rebuild it"
            )
        store = cls(
            manifest.model_id,
            manifest.dim,
            exact_limit=exact_limit,
            target_recall=target_recall,
            retrain_growth=retrain_growth,
        )
        seen_keys: set[PartitionKey] = set()
        for entry in manifest.partitions:
            if entry.key in seen_keys:
                raise IndexCorruptError(f"{directory}: partition {entry.key} listed twice")
            seen_keys.add(entry.key)
            part = _load_partition(directory, entry, manifest.dim, verify=verify)
            ids = _ids_of(part)
            if np.unique(ids).shape[0] != ids.shape[0] or any(int(i) in store._owner for i in ids):
                raise IndexCorruptError(f"{directory}: duplicate ids in {entry.file}")
            if not np.array_equal(np.sort(ids), part.full.ids()):
                raise IndexCorruptError(f"{directory}: {entry.vectors_file} holds other ids")
            store._owner.update(dict.fromkeys(ids.tolist(), entry.key))
            part.file = entry
            part.dirty = False
            store._parts[entry.key] = part
        if len(store._owner) != manifest.total:
            raise IndexCorruptError(
                f"{directory}: {len(store._owner)} vectors, manifest says {manifest.total}"
            )
        store._saved_dir = directory
        log.info(
            "loaded index %s (%d vectors, %d partitions) from %s",
            manifest.model_id,
            manifest.total,
            len(manifest.partitions),
            directory,
        )
        return store

    # ---- internals --------------------------------------------------------------------

    def _check_model(self, model_id: str) -> None:
        if model_id != self._model_id:
            raise ModelMismatchError(
                f"vectors of model {model_id!r} cannot go into an index of {self._model_id!r}; "
                "rebuild the index for the new model instead of mixing them"
            )

    def _prepare(self, vectors: np.ndarray) -> np.ndarray:
        arr = np.asarray(vectors)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2:
            raise InvalidVectorError(f"vectors must be (n, d), got shape {arr.shape}")
        if arr.shape[1] != self._dim:
            raise ModelMismatchError(
                f"vectors of dimension {arr.shape[1]} cannot go into an index of dimension "
                f"{self._dim} ({self._model_id})"
            )
        matrix = np.array(arr, dtype=np.float32, copy=True, order="C")
        if not np.isfinite(matrix).all():
            raise InvalidVectorError("vectors contain NaN or infinite values")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if matrix.shape[0] and float(norms.min()) <= 1e-12:
            raise InvalidVectorError("a vector of zero length cannot be normalized")
        matrix /= norms
        return matrix

    def _needs_rebuild(self, part: _Partition, new_total: int) -> bool:
        """Exact grown past the limit, or IVF grown far past what its centroids were fit on."""
        if part.structure == "exact":
            return new_total > self._exact_limit
        return part.trained_count is not None and new_total > (
            self._retrain_growth * part.trained_count
        )

    def _build_ivf(self, ids: np.ndarray, vectors: np.ndarray) -> _Partition:
        n = vectors.shape[0]
        nlist = max(1, min(int(math.sqrt(n)), n // 8, 8192))
        quantizer = faiss.IndexFlatIP(self._dim)
        # Without residuals: the codes are the vectors themselves, as in exact partitions.
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, self._dim, nlist, _QTYPE, faiss.METRIC_INNER_PRODUCT, False
        )
        ivf.cp.min_points_per_centroid = 5
        ivf.cp.max_points_per_centroid = _TRAIN_POINTS_PER_LIST
        # k-means would subsample to this many points anyway; sampling first saves a copy.
        sample = np.random.default_rng(0).permutation(n)[: nlist * _TRAIN_POINTS_PER_LIST]
        ivf.train(_codes(vectors[np.sort(sample)]))
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        part = _Partition(ivf, "ivf", n, FullVectors(self._dim))
        part.add(ids, vectors)
        ivf.nprobe = _tune_nprobe(part, ids, vectors, self._target_recall)
        log.info("built IVF partition: %d vectors, nlist=%d, nprobe=%d", n, nlist, ivf.nprobe)
        return part


def _new_exact(dim: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexScalarQuantizer(dim, _QTYPE, faiss.METRIC_INNER_PRODUCT))


def _codes(vectors: np.ndarray) -> np.ndarray:
    """What FAISS stores for normalized vectors: components scaled so that 8 standard
    deviations of a unit vector's component (1/sqrt(d)) reach 127, rounded and clipped (the
    8-bit direct codec truncates and wraps around, so that happens here). At 1280-d that is
    about 5 levels per standard deviation instead of 1 at a plain x127; the rare larger
    components are clipped, which only coarsens the candidate list the float32 re-check
    ranks."""
    scale = _CODE_MAX / min(1.0, _CODE_SIGMAS / math.sqrt(vectors.shape[1]))
    return np.clip(np.rint(vectors * scale), -_CODE_MAX, _CODE_MAX).astype(np.float32)


def _rerank(
    query: np.ndarray, ids: np.ndarray, vectors: np.ndarray, k: int
) -> list[tuple[float, int]]:
    """The `k` best of the candidates by exact float32 similarity (ties by id)."""
    sims = vectors @ query
    order = np.lexsort((ids, -sims))[:k]
    return [(float(sims[i]), int(ids[i])) for i in order]


def _write_vectors(part: _Partition, directory: Path, name: str) -> dict[str, str | int]:
    """Write the partition's float32 copy beside its codes file; manifest fields for it."""
    vectors_name = name.removesuffix(_PARTITION_SUFFIX) + VECTORS_SUFFIX
    tmp = directory / f"{_TMP_PREFIX}{vectors_name}"
    part.full.write(tmp)
    digest, size = _sha256(tmp)
    os.replace(tmp, directory / vectors_name)
    return {"vectors_file": vectors_name, "vectors_bytes": size, "vectors_sha256": digest}


def _ids_of(part: _Partition) -> np.ndarray:
    if part.structure == "exact":
        return faiss.vector_to_array(part.index.id_map).astype(np.int64)
    ivf = faiss.extract_index_ivf(part.index)
    lists = ivf.invlists
    chunks = []
    for li in range(ivf.nlist):
        size = lists.list_size(li)
        if size:
            chunks.append(faiss.rev_swig_ptr(lists.get_ids(li), size).copy())
    return np.concatenate(chunks).astype(np.int64) if chunks else np.empty(0, np.int64)


def _extract(part: _Partition) -> tuple[np.ndarray, np.ndarray]:
    """All (ids, vectors) of a partition, in float32."""
    return part.full.all()


def _tune_nprobe(part: _Partition, ids: np.ndarray, vectors: np.ndarray, target: float) -> int:
    """Smallest nprobe whose recall@10 vs exact search reaches `target` on perturbed samples.

    Queries are stored vectors plus noise of four strengths (cosine about 0.97, 0.9, 0.7
    and 0.45 to the original): from a new photo of an animal already in the index to an
    animal that is merely like some in it, which is what searches look like.
    """
    n = vectors.shape[0]
    rng = np.random.default_rng(0)
    sample = rng.choice(n, size=min(n, 400), replace=False)
    noise = rng.standard_normal((sample.shape[0], vectors.shape[1])).astype(np.float32)
    strength = np.resize(np.array([0.25, 0.5, 1.0, 2.0], np.float32), sample.shape[0])
    noise *= (strength / np.linalg.norm(noise, axis=1))[:, None]
    queries = vectors[sample] + noise
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    k = min(10, n)
    _, truth_rows = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    # Compare ids, not rows: the IVF returns the ids it was given.
    truth = [set(ids[row].tolist()) for row in truth_rows]
    groups = np.resize(np.arange(4), sample.shape[0])
    ivf = part.index
    nprobe = 1
    while True:
        ivf.nprobe = nprobe
        found = [[vid for _, vid in hits] for hits in part.search(queries, k)]
        hits = np.array([len(t & set(f)) for t, f in zip(truth, found, strict=True)], np.float64)
        # Every kind of query must reach the target, the far ones included.
        worst = min(float(hits[groups == g].mean()) / k for g in np.unique(groups))
        if worst >= target or nprobe >= ivf.nlist:
            return nprobe
        nprobe = min(ivf.nlist, nprobe * 2)


def _load_partition(
    directory: Path, entry: ManifestPartition, dim: int, *, verify: bool
) -> _Partition:
    path = _checked_file(directory, entry.file, entry.bytes, entry.sha256, verify=verify)
    if entry.vectors_file is None or entry.vectors_bytes is None or entry.vectors_sha256 is None:
        raise IndexCorruptError(f"{directory}: {entry.file} has no float32 vectors file")
    if entry.vectors_bytes != vectors_file_bytes(entry.count, dim):
        raise IndexCorruptError(f"{directory}: {entry.vectors_file} has the wrong size")
    vectors_path = _checked_file(
        directory, entry.vectors_file, entry.vectors_bytes, entry.vectors_sha256, verify=verify
    )
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise IndexCorruptError(f"{directory}: cannot read {entry.file}: {exc}") from exc
    if index.d != dim or int(index.ntotal) != entry.count:
        raise IndexCorruptError(
            f"{directory}: {entry.file} holds {index.ntotal}×{index.d}, "
            f"manifest says {entry.count}×{dim}"
        )
    if entry.structure == "exact":
        ok = isinstance(index, faiss.IndexIDMap2) and isinstance(
            faiss.downcast_index(index.index), faiss.IndexScalarQuantizer
        )
    else:
        ok = isinstance(index, faiss.IndexIVFScalarQuantizer)
    if not ok:
        raise IndexCorruptError(
            f"{directory}: {entry.file} is a {type(index).__name__}, expected {entry.structure}"
        )
    full = FullVectors(dim)
    full.open(vectors_path, entry.count)
    return _Partition(index, entry.structure, entry.trained_count, full)


def _checked_file(
    directory: Path, name: str, size_expected: int, sha256: str, *, verify: bool
) -> Path:
    path = directory / name
    if Path(name).name != name or name.startswith("."):
        raise IndexCorruptError(f"{directory}: bad partition file name {name!r}")
    if not path.is_file():
        raise IndexCorruptError(f"{directory}: partition file {name} is missing")
    size = path.stat().st_size
    if size != size_expected:
        raise IndexCorruptError(
            f"{directory}: {name} has {size} bytes, manifest says {size_expected} (partial?)"
        )
    if verify:
        digest, _ = _sha256(path)
        if digest != sha256:
            raise IndexCorruptError(f"{directory}: sha256 of {name} differs from manifest")
    return path


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _fsync_file(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(directory: Path) -> None:
    # Directory fsync makes the renames durable; not every platform allows it.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


@contextlib.contextmanager
def _save_lock(directory: Path, *, shared: bool = False) -> Iterator[None]:
    """A lock on `directory/.lock`: exclusive for a save, shared for a load (released when
    the process dies). A directory that does not exist or cannot be written goes unlocked:
    a load there fails or reads a folder nobody saves into."""
    import fcntl

    try:
        handle = (directory / _LOCK_NAME).open("a")
    except OSError:
        if not shared:
            raise
        yield
        return
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_unreferenced(directory: Path, keep: set[str]) -> None:
    for path in directory.iterdir():
        name = path.name
        stale = (
            name.endswith((_PARTITION_SUFFIX, VECTORS_SUFFIX)) and name not in keep
        ) or name.startswith(_TMP_PREFIX)
        if stale and path.is_file():
            with contextlib.suppress(OSError):
                path.unlink()
