"""A fake segmenter and embedder for pipeline tests: fast, deterministic, and honest about
identity. Each test animal is a solid colour; the embedder maps colours to directions, so the
same colour gives the same vector and different colours point elsewhere."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

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


def fake_policy() -> Any:
    """A match policy whose curve suits the fake embedder: same colour ≈ 1.0, others far."""
    from index.matching import MatchPolicy

    return MatchPolicy(
        threshold=0.9,
        curve_xs=(-1.0, 0.5, 0.9, 0.99, 1.0),
        curve_ys=(0.0, 0.05, 0.5, 0.97, 0.99),
    )


def fake_vision() -> Any:
    """Fake segmenter, fake embedder and their policy, as the pipeline takes them."""
    from bot.pipeline import VisionModels

    return VisionModels(FakeSegmenter(), FakeEmbedder(), fake_policy())


def pipeline_settings(vk: Any, database_url: str, var_dir: Path, **commenting: Any) -> Any:
    """Settings for a pipeline against fake VK server `vk`; comments without a minimum gap."""
    from bot.config import Settings
    from tests.bot.fakevk_fixtures import make_vk_settings

    return Settings(
        database_url=database_url,
        var_dir=var_dir,
        vk=make_vk_settings(vk),
        commenting={"min_gap_seconds": 0, **commenting},
    )


def add_groups(
    vk: Any, sessions: Any, cities: Mapping[int, str], *, now: datetime, comments: bool = True
) -> None:
    """Create the groups on the fake VK and store them with their city and commenting flag."""
    from bot import storage

    with storage.session_scope(sessions) as session:
        for vk_id, city in cities.items():
            vk.add_group(vk_id, f"g{vk_id}", f"Группа {vk_id}")
            storage.upsert_group(
                session,
                vk_id=vk_id,
                screen_name=f"g{vk_id}",
                title=f"Группа {vk_id}",
                now=now,
                city=city,
                comments_enabled=comments,
            )
