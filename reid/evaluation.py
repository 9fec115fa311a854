"""Re-ID evaluation: identity-labelled folders, embedding them, rank-k CMC and mAP.

Identity is the sub-folder name when images sit in sub-folders (`dogfacenet/<id>/<id>.<n>.jpg`)
and otherwise the file-name part before the first `_` (`vk_set2/query/<postid>_<n>.jpg`).
Metrics follow torchreid's convention: a query without any true match in its gallery is
skipped; rank-k is the share of queries whose first true match is within the top k; AP is the
mean precision at each true match.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict

from reid._base import Embedder

__all__ = [
    "IMAGE_SUFFIXES",
    "EmbeddedSet",
    "LabelledImage",
    "RetrievalMetrics",
    "embed_labelled",
    "evaluate_leave_one_out",
    "evaluate_query_gallery",
    "identity_of",
    "list_labelled_images",
    "read_rgb",
    "retrieval_metrics",
]

logger = logging.getLogger("petmatch.reid")

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


class LabelledImage(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: Path
    identity: str


class EmbeddedSet(BaseModel):
    """Vectors for the readable images of a folder, their identities, and what was skipped."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    vectors: np.ndarray  # float32 (n, d)
    identities: tuple[str, ...]
    paths: tuple[Path, ...]
    unreadable: tuple[tuple[Path, str], ...]  # (path, reason)


class RetrievalMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    rank1: float
    rank5: float
    rank10: float
    mAP: float
    cmc: list[float]  # cmc[k - 1] = rank-k accuracy
    queries: int  # queries that had at least one true match
    gallery: int


def identity_of(path: Path, root: Path) -> str:
    """Sub-folder name under `root`, else the file-name part before the first `_`."""
    relative = Path(path).relative_to(root)
    if len(relative.parts) > 1:
        return relative.parts[0]
    return relative.stem.split("_", 1)[0]


def list_labelled_images(root: Path, *, limit_identities: int | None = None) -> list[LabelledImage]:
    """All images under `root` with their identity, sorted; optionally the first N identities."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    items = [
        LabelledImage(path=path, identity=identity_of(path, root))
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if limit_identities is not None:
        keep = set(sorted({item.identity for item in items})[:limit_identities])
        items = [item for item in items if item.identity in keep]
    return items


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 HxWx3; raises `OSError`/`ValueError` when unreadable."""
    with Image.open(path) as image:
        image.load()
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def embed_labelled(
    embedder: Embedder,
    items: Sequence[LabelledImage],
    *,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> EmbeddedSet:
    """Read and embed `items` in batches; unreadable images are logged and skipped."""
    vectors: list[np.ndarray] = []
    identities: list[str] = []
    paths: list[Path] = []
    unreadable: list[tuple[Path, str]] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        crops: list[np.ndarray] = []
        for item in chunk:
            try:
                crops.append(read_rgb(item.path))
            except (OSError, ValueError, UnidentifiedImageError) as exc:
                logger.warning("skipping unreadable image %s: %s", item.path, exc)
                unreadable.append((item.path, str(exc) or type(exc).__name__))
                continue
            identities.append(item.identity)
            paths.append(item.path)
        if crops:
            vectors.append(embedder.embed(crops).vectors)
        if progress is not None:
            progress(len(chunk))
    dim = vectors[0].shape[1] if vectors else 0
    return EmbeddedSet(
        vectors=np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32),
        identities=tuple(identities),
        paths=tuple(paths),
        unreadable=tuple(unreadable),
    )


def retrieval_metrics(matches: np.ndarray, *, gallery: int, max_rank: int = 20) -> RetrievalMetrics:
    """Metrics from a (queries, ranked gallery) bool matrix of true matches, best first.

    Rows without any true match are dropped (torchreid's convention).
    """
    matches = np.asarray(matches, dtype=bool)
    if matches.ndim != 2:
        raise ValueError(f"matches must be 2-D, got shape {matches.shape}")
    matches = matches[matches.any(axis=1)]
    n_queries, n_ranked = matches.shape
    length = min(max_rank, n_ranked)
    if n_queries == 0:
        cmc = np.zeros(length)
        mean_ap = 0.0
    else:
        first_hit = matches.argmax(axis=1)
        cmc = (first_hit[:, None] < np.arange(1, length + 1)[None, :]).mean(axis=0)
        hits = np.cumsum(matches, axis=1)
        precision = hits / np.arange(1, n_ranked + 1)[None, :]
        ap = (precision * matches).sum(axis=1) / matches.sum(axis=1)
        mean_ap = float(ap.mean())

    def rank(k: int) -> float:
        if length == 0:
            return 0.0
        return float(cmc[min(k, length) - 1])

    return RetrievalMetrics(
        rank1=rank(1),
        rank5=rank(5),
        rank10=rank(10),
        mAP=mean_ap,
        cmc=[float(v) for v in cmc],
        queries=int(n_queries),
        gallery=int(gallery),
    )


def _ranked_matches(
    similarity: np.ndarray, query_ids: np.ndarray, gallery_ids: np.ndarray
) -> np.ndarray:
    order = np.argsort(-similarity, axis=1, kind="stable")
    return gallery_ids[order] == query_ids[:, None]


def evaluate_query_gallery(
    query: np.ndarray,
    query_ids: Sequence[str],
    gallery: np.ndarray,
    gallery_ids: Sequence[str],
    *,
    max_rank: int = 20,
) -> RetrievalMetrics:
    """Rank the gallery for every query by cosine similarity (vectors are L2-normalized)."""
    q_ids = np.asarray(query_ids, dtype=object)
    g_ids = np.asarray(gallery_ids, dtype=object)
    if len(q_ids) != len(query) or len(g_ids) != len(gallery):
        raise ValueError("one identity per vector is needed")
    similarity = np.asarray(query, np.float32) @ np.asarray(gallery, np.float32).T
    matches = _ranked_matches(similarity, q_ids, g_ids)
    return retrieval_metrics(matches, gallery=len(g_ids), max_rank=max_rank)


def evaluate_leave_one_out(
    vectors: np.ndarray, identities: Sequence[str], *, max_rank: int = 20
) -> RetrievalMetrics:
    """Each image queries all the others; identities with a single image are distractors only."""
    ids = np.asarray(identities, dtype=object)
    n = len(ids)
    if n != len(vectors):
        raise ValueError("one identity per vector is needed")
    if n < 2:
        return retrieval_metrics(np.zeros((0, 0), bool), gallery=n, max_rank=max_rank)
    vectors = np.asarray(vectors, np.float32)
    similarity = vectors @ vectors.T
    # Self-similarity sinks to the end of each ranking and is then cut off.
    np.fill_diagonal(similarity, -np.inf)
    order = np.argsort(-similarity, axis=1, kind="stable")[:, : n - 1]
    matches = ids[order] == ids[:, None]
    return retrieval_metrics(matches, gallery=n, max_rank=max_rank)
