"""The segmentation interface and the backend registry."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict


class Species(StrEnum):
    CAT = "cat"
    DOG = "dog"
    OTHER = "other"


class AnimalCrop(BaseModel):
    """One animal found in a photo: what it is, where, and its cut-out on black."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    species: Species
    score: float  # species-classifier probability mass for that species, 0..1
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the source image, exclusive end
    mask: np.ndarray  # bool (y1 - y0, x1 - x0): the animal inside the box
    crop: np.ndarray  # uint8 RGB (y1 - y0, x1 - x0, 3), background set to black


class Segmenter(Protocol):
    """Image in (RGB uint8 HxWx3), a list of animals out; none for a photo with no animal."""

    name: str

    def segment(self, image: np.ndarray) -> list[AnimalCrop]: ...


SegmenterFactory = Callable[..., Segmenter]
_REGISTRY: dict[str, SegmenterFactory] = {}


def register_segmenter(name: str) -> Callable[[SegmenterFactory], SegmenterFactory]:
    """Register a backend factory under `name`; duplicates are refused."""

    def decorator(factory: SegmenterFactory) -> SegmenterFactory:
        if name in _REGISTRY:
            raise ValueError(f"segmenter {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorator


def build_segmenter(name: str, **kwargs: object) -> Segmenter:
    """Build a registered backend. Factories never download anything."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise KeyError(f"unknown segmenter {name!r}; valid names: {valid}") from None
    return factory(**kwargs)


def available_segmenters() -> list[str]:
    return sorted(_REGISTRY)
