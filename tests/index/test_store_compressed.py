"""8-bit codes in memory, float32 on disk: the ranking and the similarities stay exact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from index import MANIFEST_NAME, FaissIndex, IndexCorruptError, PartitionKey
from tests.index.conftest import CAT_LOST, DIM, MODEL, clustered


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _exact_top(stored: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    sims = _unit(stored) @ (query / np.linalg.norm(query))
    return [int(ids[i]) for i in np.lexsort((ids, -sims))[:k]]


@pytest.mark.parametrize("exact_limit", [100_000, 200])
def test_results_are_the_exact_float32_top_k_with_exact_similarities(exact_limit, tmp_path):
    rng = np.random.default_rng(3)
    vectors = clustered(rng, 1500)
    ids = np.arange(1500, dtype=np.int64) * 7
    store = FaissIndex(MODEL, DIM, exact_limit=exact_limit, target_recall=1.0)
    store.add(CAT_LOST, ids, vectors, model_id=MODEL)
    queries = clustered(rng, 40)
    for when in ("in memory", "after save and load"):
        if when != "in memory":
            store.save(tmp_path)
            store = FaissIndex.load(tmp_path, exact_limit=exact_limit)
        found = store.search(queries, CAT_LOST, k=10)
        for query, hits in zip(queries, found, strict=True):
            assert [h.id for h in hits] == _exact_top(vectors, ids, query, 10), when
            expected = (
                _unit(vectors[np.searchsorted(ids, [h.id for h in hits])])
                @ _unit(query[None]).ravel()
            )
            np.testing.assert_allclose([h.similarity for h in hits], expected, atol=1e-5)


def test_saved_index_reads_float32_vectors_from_its_file(tmp_path):
    rng = np.random.default_rng(4)
    vectors = clustered(rng, 300)
    store = FaissIndex(MODEL, DIM)
    store.add(CAT_LOST, np.arange(300), vectors, model_id=MODEL)
    manifest = store.save(tmp_path)
    (entry,) = manifest.partitions
    assert entry.vectors_file and (tmp_path / entry.vectors_file).stat().st_size == 300 * (
        8 + 4 * DIM
    )
    loaded = FaissIndex.load(tmp_path)
    np.testing.assert_allclose(loaded.get_vector(17), _unit(vectors[17:18])[0], atol=1e-6)
    # New vectors after a load are found alongside the saved ones, then saved together.
    key = PartitionKey(species="cat", kind="lost", city="Москва")
    extra = clustered(rng, 5)
    loaded.add(key, np.arange(1000, 1005), extra, model_id=MODEL)
    assert loaded.search(extra[0], key, k=1)[0][0].id == 1000
    loaded.remove([0, 1001])
    loaded.save(tmp_path)
    again = FaissIndex.load(tmp_path)
    assert len(again) == 303 and 0 not in again and 1001 not in again
    np.testing.assert_allclose(again.get_vector(1004), _unit(extra[4:5])[0], atol=1e-6)
    files = [p for p in tmp_path.iterdir() if p.name != ".lock"]  # the save lock stays
    assert sorted(p.suffix for p in files) == [".f32", ".faiss", ".json"]


def test_damaged_vectors_file_is_corrupt(tmp_path):
    store = FaissIndex(MODEL, DIM)
    store.add(CAT_LOST, np.arange(50), clustered(np.random.default_rng(5), 50), model_id=MODEL)
    manifest = store.save(tmp_path)
    victim = tmp_path / str(manifest.partitions[0].vectors_file)
    data = bytearray(victim.read_bytes())
    data[-3] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="sha256"):
        FaissIndex.load(tmp_path)
    victim.unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        FaissIndex.load(tmp_path)


def test_index_of_the_previous_format_is_rebuilt_not_misread(tmp_path):
    store = FaissIndex(MODEL, DIM)
    store.add(CAT_LOST, np.arange(10), clustered(np.random.default_rng(6), 10), model_id=MODEL)
    store.save(tmp_path)
    path = tmp_path / MANIFEST_NAME
    raw = json.loads(path.read_text())
    raw["format_version"] = 1
    path.write_text(json.dumps(raw))
    with pytest.raises(IndexCorruptError, match="format_version"):
        FaissIndex.load(tmp_path)


def test_default_exact_limit_is_50k():
    assert FaissIndex(MODEL, DIM).exact_limit == 50_000


def test_ranking_holds_at_the_models_dimension_with_small_components():
    """1280-d unit vectors have components near 0.03: codes and queries must keep them."""
    rng = np.random.default_rng(7)
    dim = 1280
    mean = rng.standard_normal(dim)
    vectors = (mean + 0.8 * rng.standard_normal((600, dim))).astype(np.float32)
    ids = np.arange(600, dtype=np.int64)
    store = FaissIndex("wide@1", dim)
    store.add(CAT_LOST, ids, vectors, model_id="wide@1")
    queries = (mean + 0.8 * rng.standard_normal((20, dim))).astype(np.float32)
    for query, hits in zip(queries, store.search(queries, CAT_LOST, k=10), strict=True):
        assert [h.id for h in hits] == _exact_top(vectors, ids, query, 10)
