"""Fixtures for the index contract suite: the same tests run on every index structure."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from index import FaissIndex, PartitionKey

MODEL = "test-model@1"
DIM = 32
PER_PARTITION = 400

CAT_LOST = PartitionKey(species="cat", kind="lost", city="Москва")
CAT_FOUND = PartitionKey(species="cat", kind="found", city="Москва")
DOG_FOUND = PartitionKey(species="dog", kind="found", city="Москва")
CAT_FOUND_SPB = PartitionKey(species="cat", kind="found", city="Санкт-Петербург")
PARTITIONS = (CAT_LOST, CAT_FOUND, DOG_FOUND, CAT_FOUND_SPB)

Filled = tuple[FaissIndex, dict[PartitionKey, np.ndarray]]

# Limits that make the prefilled partitions exact or IVF.
STRUCTURES = {"exact": 200_000, "ivf": 64}


def clustered(rng: np.random.Generator, n: int, dim: int = DIM, clusters: int = 20) -> np.ndarray:
    """Vectors around a few random centres, like embeddings of a few look-alike animals."""
    centres = rng.standard_normal((clusters, dim))
    labels = rng.integers(0, clusters, size=n)
    return (centres[labels] + 0.6 * rng.standard_normal((n, dim))).astype(np.float32)


def build_filled(structure: str, seed: int = 0) -> Filled:
    """An index with PER_PARTITION vectors in each of PARTITIONS; ids are disjoint per key."""
    rng = np.random.default_rng(seed)
    store = FaissIndex(MODEL, DIM, exact_limit=STRUCTURES[structure])
    ids_by_key = {}
    for n, key in enumerate(PARTITIONS):
        ids = np.arange(PER_PARTITION, dtype=np.int64) + (n + 1) * 100_000
        store.add(key, ids, clustered(rng, PER_PARTITION), model_id=MODEL)
        ids_by_key[key] = ids
    return store, ids_by_key


@pytest.fixture(params=sorted(STRUCTURES))
def structure(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def filled(structure: str) -> Filled:
    return build_filled(structure)


@pytest.fixture(scope="session")
def filled_cache() -> Callable[[str], Filled]:
    """Filled indexes built once per structure, for property tests that restore what they change."""
    cache: dict[str, Filled] = {}

    def get(structure: str) -> Filled:
        if structure not in cache:
            cache[structure] = build_filled(structure, seed=1)
        return cache[structure]

    return get
