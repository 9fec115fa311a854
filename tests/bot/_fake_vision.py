"""A fake segmenter and embedder for pipeline tests: fast, deterministic, and honest about
identity. Each test animal is a solid colour; the embedder maps colours to directions, so the
same colour gives the same vector and different colours point elsewhere."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from reid import Embeddings
from segmentation import AnimalCrop, Species

#: Colours far apart as directions from grey: one per test animal.
ANIMAL_COLOURS = {
    "ryzhik": (235, 120, 20),
    "sharik": (20, 60, 230),
    "murka": (30, 220, 60),
    "bobik": (230, 30, 200),
}
NO_ANIMAL = (128, 128, 128)  # a grey "poster": the fake segmenter finds nothing


def animal_jpeg(name: str, *, size: tuple[int, int] = (96, 72), shift: int = 0) -> bytes:
    """A photo of test animal `name`; `shift` changes the bytes, not the identity."""
    colour = tuple(min(255, c + shift) for c in ANIMAL_COLOURS[name]) if name else NO_ANIMAL
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="JPEG", quality=95 - shift)
    return out.getvalue()


def poster_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 72), NO_ANIMAL).save(out, format="JPEG")
    return out.getvalue()


class FakeSegmenter:
    name = "fake"

    def __init__(self) -> None:
        self.calls = 0

    def segment(self, image: np.ndarray) -> list[AnimalCrop]:
        self.calls += 1
        mean = image.reshape(-1, 3).mean(axis=0)
        if np.abs(mean - 128).max() < 20:
            return []
        h, w = image.shape[:2]
        species = Species.DOG if mean[2] > mean[0] else Species.CAT
        return [
            AnimalCrop(
                species=species,
                score=0.9,
                box=(0, 0, w, h),
                mask=np.ones((h, w), dtype=bool),
                crop=image.copy(),
            )
        ]


class FakeEmbedder:
    model_id = "fake-colour@1"
    dim = 8

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self._projection = np.linalg.qr(rng.normal(size=(self.dim, 3)))[0].astype(np.float32)
        self.calls = 0

    def embed(self, crops: Sequence[np.ndarray]) -> Embeddings:
        self.calls += 1
        means = np.stack([c.reshape(-1, 3).mean(axis=0) / 255.0 - 0.5 for c in crops])
        vectors = means.astype(np.float32) @ self._projection.T
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return Embeddings(vectors=vectors.astype(np.float32), model_id=self.model_id)
