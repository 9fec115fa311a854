"""Partitions switch between exact and IVF by size, and IVF stays close to exact."""

from __future__ import annotations

import numpy as np

from index import FaissIndex
from tests.index.conftest import CAT_LOST, DIM, MODEL, clustered


def _recall_at_10(approx: FaissIndex, exact: FaissIndex, queries: np.ndarray) -> float:
    got = approx.search(queries, CAT_LOST, k=10)
    want = exact.search(queries, CAT_LOST, k=10)
    hits = sum(len({c.id for c in g} & {c.id for c in w}) for g, w in zip(got, want, strict=True))
    return hits / (10 * len(queries))


def test_partition_switches_to_ivf_past_the_limit_and_back():
    rng = np.random.default_rng(0)
    store = FaissIndex(MODEL, DIM, exact_limit=500)
    vecs = clustered(rng, 1200)
    store.add(CAT_LOST, np.arange(400), vecs[:400], model_id=MODEL)
    assert store.partitions()[0].structure == "exact"
    store.add(CAT_LOST, np.arange(400, 1200), vecs[400:], model_id=MODEL)
    assert store.partitions()[0].structure == "ivf"
    assert len(store) == 1200
    assert store.search(vecs[1000], CAT_LOST, k=1)[0][0].id == 1000
    store.remove(np.arange(0, 1000))
    (info,) = store.partitions()
    assert info.structure == "exact" and info.count == 200
    assert store.search(vecs[1100], CAT_LOST, k=1)[0][0].id == 1100


def test_ivf_grown_far_past_its_training_is_retrained():
    rng = np.random.default_rng(1)
    store = FaissIndex(MODEL, DIM, exact_limit=100, retrain_growth=2.0)
    vecs = clustered(rng, 1000)
    store.add(CAT_LOST, np.arange(200), vecs[:200], model_id=MODEL)
    small = store.partitions()[0].nlist
    store.add(CAT_LOST, np.arange(200, 1000), vecs[200:], model_id=MODEL)
    assert store.partitions()[0].nlist > small


def test_ivf_recall_at_10_against_exact():
    rng = np.random.default_rng(2)
    vecs = clustered(rng, 6000, clusters=60)
    exact = FaissIndex(MODEL, DIM)
    approx = FaissIndex(MODEL, DIM, exact_limit=1000)
    for store in (exact, approx):
        store.add(CAT_LOST, np.arange(6000), vecs, model_id=MODEL)
    assert approx.partitions()[0].structure == "ivf"
    queries = clustered(np.random.default_rng(3), 200, clusters=60)
    # New vectors: the generator's centres differ from the stored ones, so use stored
    # vectors plus noise as well, which is what a new photo of a known animal looks like.
    near = vecs[:200] + 0.3 * rng.standard_normal((200, DIM)).astype(np.float32)
    assert _recall_at_10(approx, exact, near) >= 0.95
    assert _recall_at_10(approx, exact, queries) >= 0.95
