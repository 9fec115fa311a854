"""Re-identification: crops in, L2-normalized vectors out, plus evaluation and calibration."""

from reid._base import (
    Embedder,
    Embeddings,
    available_embedders,
    build_embedder,
    register_embedder,
)

__all__ = [
    "Embedder",
    "Embeddings",
    "available_embedders",
    "build_embedder",
    "register_embedder",
]
