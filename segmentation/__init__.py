"""Cutting animals out of photos: image in, a list of `AnimalCrop` out."""

from segmentation import _pixellib, _u2netp  # noqa: F401  (register the backends)
from segmentation._base import (
    AnimalCrop,
    Segmenter,
    Species,
    available_segmenters,
    build_segmenter,
    register_segmenter,
)
from segmentation._image import check_image, read_image
from segmentation._pixellib import crops_from_pixellib
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
    "crops_from_pixellib",
    "default_u2netp_path",
    "read_image",
    "register_segmenter",
]
