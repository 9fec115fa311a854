"""Errors raised by `segmentation`.

SegmentationError
 ├── SegmentationModelNotFoundError  a model file or optional library is missing
 └── ImageDecodeError                the bytes or file are not a readable image
"""

from __future__ import annotations

__all__ = ["ImageDecodeError", "SegmentationError", "SegmentationModelNotFoundError"]


class SegmentationError(Exception):
    """Base of every `segmentation` error."""


class SegmentationModelNotFoundError(SegmentationError, FileNotFoundError):
    """A model file (or the optional library a backend needs) is not there."""


class ImageDecodeError(SegmentationError, ValueError):
    """The input could not be decoded as an image (corrupt, truncated, not an image)."""
