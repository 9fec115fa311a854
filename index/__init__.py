"""Vector index: partitioned FAISS search by stable id, atomic persistence, and matching.

`FaissIndex` stores L2-normalized vectors of one model, partitioned by `PartitionKey`
(species, kind, city), held as 8-bit codes whose best candidates are re-checked in float32
read from disk; exact up to 50k vectors per partition and IVF beyond. `matching` turns
animal-level hits into ranked post candidates and a `Match` decision.
"""

from index._store import MANIFEST_NAME, FaissIndex
from index._types import Candidate, IndexManifest, ManifestPartition, PartitionInfo, PartitionKey
from index.errors import (
    DuplicateIdError,
    IndexCorruptError,
    IndexLoadError,
    IndexNotFoundError,
    InvalidVectorError,
    ModelMismatchError,
    StaleIndexError,
    VectorIndexError,
)
from index.matching import (
    AnimalHit,
    AnimalPair,
    Match,
    MatchPolicy,
    PostCandidate,
    PostRef,
    decide,
    explain,
    hits_from_candidates,
    rank_post_candidates,
)

__all__ = [
    "MANIFEST_NAME",
    "AnimalHit",
    "AnimalPair",
    "Candidate",
    "DuplicateIdError",
    "FaissIndex",
    "IndexCorruptError",
    "IndexLoadError",
    "IndexManifest",
    "IndexNotFoundError",
    "InvalidVectorError",
    "ManifestPartition",
    "Match",
    "MatchPolicy",
    "ModelMismatchError",
    "PartitionInfo",
    "PartitionKey",
    "PostCandidate",
    "PostRef",
    "StaleIndexError",
    "VectorIndexError",
    "decide",
    "explain",
    "hits_from_candidates",
    "rank_post_candidates",
]
