"""Frozen data types that cross the index's boundary."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Structure = Literal["exact", "ivf"]

# 2: partitions hold 8-bit codes, with a float32 vectors file beside each.
FORMAT_VERSION = 2


class PartitionKey(BaseModel):
    """Which candidates a query may see: one species, one post kind, one city.

    `city=None` is the partition of posts whose city is unknown.
    """

    model_config = ConfigDict(frozen=True)

    species: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    city: str | None = None

    def slug(self) -> str:
        """A stable, file-name-safe token for this key (cities may be Cyrillic)."""
        raw = f"{self.species}\x1f{self.kind}\x1f{self.city if self.city is not None else ''}"
        if self.city is None:
            raw += "\x1fnone"
        return "p-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:20]

    def __str__(self) -> str:
        return f"{self.species}/{self.kind}/{self.city if self.city is not None else '-'}"


class Candidate(BaseModel):
    """One stored vector returned by a search, with its cosine similarity to the query."""

    model_config = ConfigDict(frozen=True)

    id: int
    similarity: float = Field(ge=-1.0, le=1.0)
    partition: PartitionKey


class PartitionInfo(BaseModel):
    """Size and structure of one partition."""

    model_config = ConfigDict(frozen=True)

    key: PartitionKey
    count: int
    structure: Structure
    nlist: int | None = None
    nprobe: int | None = None


class ManifestPartition(BaseModel):
    """One partition's file, as recorded in the manifest."""

    model_config = ConfigDict(frozen=True)

    key: PartitionKey
    file: str
    count: int = Field(ge=0)
    structure: Structure
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    trained_count: int | None = None
    vectors_file: str | None = None
    vectors_bytes: int | None = Field(None, ge=0)
    vectors_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


class IndexManifest(BaseModel):
    """`manifest.json` of a saved index: written last, so it is the commit point of a save."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int
    model_id: str
    dim: int = Field(gt=0)
    metric: Literal["cosine"] = "cosine"
    total: int = Field(ge=0)
    partitions: tuple[ManifestPartition, ...]
