"""One contract suite, run on exact and IVF partitions alike."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from index import (
    DuplicateIdError,
    FaissIndex,
    IndexLoadError,
    InvalidVectorError,
    ModelMismatchError,
    PartitionKey,
    StaleIndexError,
)
from tests.index.conftest import (
    CAT_FOUND,
    CAT_FOUND_SPB,
    CAT_LOST,
    DIM,
    DOG_FOUND,
    MODEL,
    PARTITIONS,
    PER_PARTITION,
    clustered,
)

finite = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False, width=32)
vectors_1d = arrays(np.float32, DIM, elements=finite).filter(
    lambda v: float(np.linalg.norm(v)) > 1e-3
)
NEW_ID = 9_000_000


def test_structure_is_the_one_under_test(filled, structure):
    store, _ = filled
    assert {p.structure for p in store.partitions()} == {structure}
    assert len(store) == PER_PARTITION * len(PARTITIONS)
    if structure == "ivf":
        assert all(p.nlist and p.nprobe for p in store.partitions())


@pytest.mark.parametrize("structure_name", ["exact", "ivf"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vector=vectors_1d)
def test_inserted_vector_finds_itself_first(filled_cache, structure_name, vector):
    store, _ = filled_cache(structure_name)
    store.add(CAT_FOUND, [NEW_ID], vector[None, :], model_id=MODEL)
    try:
        (hits,) = store.search(vector, CAT_FOUND, k=5)
        assert hits[0].id == NEW_ID
        assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    finally:
        assert store.remove([NEW_ID]) == 1
    assert NEW_ID not in store


@pytest.mark.parametrize("structure_name", ["exact", "ivf"])
@settings(max_examples=30, deadline=None)
@given(
    queries=arrays(np.float32, (3, DIM), elements=finite).filter(
        lambda q: bool((np.linalg.norm(q, axis=1) > 1e-3).all())
    )
)
def test_scores_stay_in_range_and_sorted(filled_cache, structure_name, queries):
    store, _ = filled_cache(structure_name)
    results = store.search(queries, list(PARTITIONS), k=15)
    assert len(results) == 3
    for hits in results:
        assert len(hits) == 15
        sims = [h.similarity for h in hits]
        assert all(-1.0 <= s <= 1.0 for s in sims)
        assert sims == sorted(sims, reverse=True)


def test_remove_then_readd(filled):
    store, ids = filled
    victim = int(ids[CAT_LOST][7])
    vec = store.get_vector(victim)
    assert store.search(vec, CAT_LOST, k=1)[0][0].id == victim
    assert store.remove([victim, 123456789]) == 1
    assert victim not in store
    assert store.count(CAT_LOST) == PER_PARTITION - 1
    assert all(h.id != victim for h in store.search(vec, CAT_LOST, k=20)[0])
    assert store.remove([victim]) == 0
    store.add(CAT_LOST, [victim], vec, model_id=MODEL)
    assert store.search(vec, CAT_LOST, k=1)[0][0].id == victim


def test_remove_everything_drops_the_partition(filled):
    store, ids = filled
    assert store.remove(ids[DOG_FOUND]) == PER_PARTITION
    assert store.count(DOG_FOUND) == 0
    assert DOG_FOUND not in {p.key for p in store.partitions()}
    assert store.search(np.ones(DIM, np.float32), DOG_FOUND, k=3) == [[]]


def test_partition_isolation(filled):
    """A cat never sees a dog, lost never sees lost, Moscow never sees Saint Petersburg."""
    store, ids = filled
    rng = np.random.default_rng(5)
    queries = np.concatenate([store.get_vector(int(i))[None] for i in ids[DOG_FOUND][:20]])
    queries = np.concatenate([queries, clustered(rng, 20)])
    for key in (CAT_FOUND, CAT_LOST, CAT_FOUND_SPB):
        allowed = set(ids[key].tolist())
        for hits in store.search(queries, key, k=25):
            assert hits
            assert all(h.id in allowed and h.partition == key for h in hits)


def test_search_across_partitions_merges_by_similarity(filled):
    store, ids = filled
    own = int(ids[CAT_FOUND_SPB][3])
    (hits,) = store.search(store.get_vector(own), [CAT_FOUND, CAT_FOUND_SPB], k=30)
    assert hits[0].id == own
    assert {h.partition for h in hits} <= {CAT_FOUND, CAT_FOUND_SPB}
    sims = [h.similarity for h in hits]
    assert sims == sorted(sims, reverse=True)
    alone = store.search(store.get_vector(own), CAT_FOUND, k=30)[0]
    from_moscow = [h for h in hits if h.partition == CAT_FOUND]
    assert [h.id for h in from_moscow] == [h.id for h in alone[: len(from_moscow)]]


def test_missing_partition_is_empty(filled):
    store, _ = filled
    nowhere = PartitionKey(species="cat", kind="found", city="Урюпинск")
    assert store.search(np.ones((2, DIM), np.float32), nowhere, k=5) == [[], []]


def test_other_model_is_refused(filled):
    store, _ = filled
    vec = np.ones((1, DIM), np.float32)
    with pytest.raises(ModelMismatchError, match="other-model@2"):
        store.add(CAT_LOST, [1], vec, model_id="other-model@2")
    with pytest.raises(ModelMismatchError, match="dimension"):
        store.add(CAT_LOST, [1], np.ones((1, DIM + 1), np.float32), model_id=MODEL)
    with pytest.raises(ModelMismatchError):
        store.search(vec, CAT_LOST, model_id="other-model@2")
    with pytest.raises(ModelMismatchError):
        store.search(np.ones((1, 7), np.float32), CAT_LOST)
    assert 1 not in store


def test_duplicate_ids_are_refused(filled):
    store, ids = filled
    vec = np.ones((1, DIM), np.float32)
    with pytest.raises(DuplicateIdError):
        store.add(DOG_FOUND, [int(ids[CAT_LOST][0])], vec, model_id=MODEL)
    with pytest.raises(DuplicateIdError):
        store.add(DOG_FOUND, [77, 77], np.ones((2, DIM), np.float32), model_id=MODEL)
    assert 77 not in store


@pytest.mark.parametrize(
    "bad",
    [np.zeros((1, DIM), np.float32), np.full((1, DIM), np.nan, np.float32)],
    ids=["zero", "nan"],
)
def test_invalid_vectors_are_refused(filled, bad):
    store, _ = filled
    with pytest.raises(InvalidVectorError):
        store.add(CAT_LOST, [5], bad, model_id=MODEL)
    with pytest.raises(ValueError):
        store.search(bad, CAT_LOST)


def test_callers_array_is_not_modified(filled):
    store, _ = filled
    vec = np.full((1, DIM), 3.0, np.float32)
    before = vec.copy()
    store.add(CAT_LOST, [42], vec, model_id=MODEL)
    store.search(vec, CAT_LOST)
    np.testing.assert_array_equal(vec, before)


def test_restart_gives_the_same_results(filled, tmp_path):
    store, ids = filled
    rng = np.random.default_rng(9)
    queries = clustered(rng, 30)
    before = store.search(queries, [CAT_FOUND, CAT_FOUND_SPB], k=10)
    manifest = store.save(tmp_path / "idx")
    assert manifest.total == len(store)
    assert {p.key for p in manifest.partitions} == set(PARTITIONS)
    again = FaissIndex.load(tmp_path / "idx", model_id=MODEL, dim=DIM)
    assert again.model_id == MODEL and again.dim == DIM and len(again) == len(store)
    assert again.partitions() == store.partitions()
    assert again.search(queries, [CAT_FOUND, CAT_FOUND_SPB], k=10) == before
    # The loaded index keeps working: add, remove, save, load.
    again.remove(ids[CAT_LOST][:10])
    again.add(CAT_LOST, [55], queries[:1], model_id=MODEL)
    again.save(tmp_path / "idx")
    third = FaissIndex.load(tmp_path / "idx")
    assert third.count(CAT_LOST) == PER_PARTITION - 9
    assert third.search(queries[0], CAT_LOST, k=1)[0][0].id == 55


def test_load_of_another_model_is_stale(filled, tmp_path):
    store, _ = filled
    store.save(tmp_path)
    with pytest.raises(StaleIndexError, match="rebuild") as info:
        FaissIndex.load(tmp_path, model_id="osnet_x0_25@pets-1")
    assert isinstance(info.value, IndexLoadError)
    assert isinstance(info.value, ModelMismatchError)
    with pytest.raises(StaleIndexError):
        FaissIndex.load(tmp_path, dim=DIM * 2)
    assert FaissIndex.read_manifest(tmp_path).model_id == MODEL
