"""Cutting animals out of photos: image in, a list of `AnimalCrop` out."""

from segmentation import _u2netp  # noqa: F401  (registers the `u2netp` backend)
from segmentation._base import (
    AnimalCrop,
    Segmenter,
    Species,
    available_segmenters,
    build_segmenter,
    register_segmenter,
)
from segmentation._image import check_image, read_image
from segmentation._u2netp import CLASSIFIER_FILE, U2netpSegmenter, default_u2netp_path
from segmentation.errors import (
    ImageDecodeError,
    SegmentationError,
    SegmentationModelNotFoundError,
)

__all__ = [
    "CLASSIFIER_FILE",
    "AnimalCrop",
    "ImageDecodeError",
    "SegmentationError",
    "SegmentationModelNotFoundError",
    "Segmenter",
    "Species",
    "U2netpSegmenter",
    "available_segmenters",
    "build_segmenter",
    "check_image",
    "default_u2netp_path",
    "read_image",
    "register_segmenter",
]
