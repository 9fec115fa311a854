"""The embedding interface and the backend registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator


class Embeddings(BaseModel):
    """float32 (n, d) L2-normalized vectors, tagged with the model that made them."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    vectors: np.ndarray
    model_id: str  # "<name>@<version>", e.g. "efficientnet_lite0@imagenet-1"

    @field_validator("vectors")
    @classmethod
    def _check_shape(cls, value: np.ndarray) -> np.ndarray:
        if value.ndim != 2 or value.dtype != np.float32:
            raise ValueError(f"vectors must be float32 (n, d), got {value.dtype} {value.shape}")
        return value

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


class Embedder(Protocol):
    """Crops in (RGB uint8 HxWx3, background already removed), vectors out."""

    model_id: str
    dim: int

    def embed(self, crops: Sequence[np.ndarray]) -> Embeddings: ...


EmbedderFactory = Callable[..., Embedder]
_REGISTRY: dict[str, EmbedderFactory] = {}


def register_embedder(name: str) -> Callable[[EmbedderFactory], EmbedderFactory]:
    """Register a backend factory under `name`; duplicates are refused."""

    def decorator(factory: EmbedderFactory) -> EmbedderFactory:
        if name in _REGISTRY:
            raise ValueError(f"embedder {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorator


def build_embedder(name: str, **kwargs: object) -> Embedder:
    """Build a registered backend. Factories never download anything."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise KeyError(f"unknown embedder {name!r}; valid names: {valid}") from None
    return factory(**kwargs)


def available_embedders() -> list[str]:
    return sorted(_REGISTRY)
