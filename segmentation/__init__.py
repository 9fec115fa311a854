"""Cutting animals out of photos: image in, a list of `AnimalCrop` out."""

from segmentation._base import (
    AnimalCrop,
    Segmenter,
    Species,
    available_segmenters,
    build_segmenter,
    register_segmenter,
)

__all__ = [
    "AnimalCrop",
    "Segmenter",
    "Species",
    "available_segmenters",
    "build_segmenter",
    "register_segmenter",
]
