"""The optional PixelLib backend: conversion of its results and honest errors without it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from segmentation import SegmentationModelNotFoundError, Species, build_segmenter
from segmentation._pixellib import _apply_pillow_shims, crops_from_pixellib


def _result(stack_last: bool = True) -> tuple[np.ndarray, dict]:
    h, w = 60, 80
    image = np.full((h, w, 3), 100, np.uint8)
    masks = np.zeros((3, h, w), dtype=bool)
    masks[0, 5:25, 5:30] = True  # cat, 500 px
    masks[1, 30:58, 40:78] = True  # dog, 1064 px
    masks[2, 0:10, 60:70] = True  # person: not ours
    return image, {
        "boxes": np.array([[4, 4, 31, 26], [40, 30, 78, 58], [60, 0, 70, 10]]),
        "class_ids": np.array([15, 16, 0]),
        "scores": np.array([91, 77, 99]),  # PixelLib's 0..100
        "masks": np.moveaxis(masks, 0, 2) if stack_last else masks,
    }


@pytest.mark.parametrize("stack_last", [True, False])
def test_conversion_keeps_cats_and_dogs(stack_last: bool) -> None:
    image, result = _result(stack_last)
    crops = crops_from_pixellib(image, result, min_score=0.5, min_crop_pixels=100)
    assert [c.species for c in crops] == [Species.DOG, Species.CAT]  # largest first
    dog, cat = crops
    assert dog.box == (40, 30, 78, 58) and cat.box == (5, 5, 30, 25)  # tight to the mask
    assert cat.score == pytest.approx(0.91) and dog.score == pytest.approx(0.77)
    assert cat.mask.shape == (20, 25) and cat.mask.all()
    assert (cat.crop == 100).all()


def test_conversion_applies_thresholds_and_checks_shapes() -> None:
    image, result = _result()
    assert [
        c.species for c in crops_from_pixellib(image, result, min_score=0.8, min_crop_pixels=100)
    ] == [Species.CAT]
    assert crops_from_pixellib(image, result, min_crop_pixels=2000) == []
    empty = {
        "boxes": np.zeros((0, 4)),
        "class_ids": np.zeros(0),
        "scores": np.zeros(0),
        "masks": np.zeros((0,)),
    }
    assert crops_from_pixellib(image, empty) == []
    result["masks"] = result["masks"][:10]
    with pytest.raises(ValueError, match="masks"):
        crops_from_pixellib(image, result)


def test_pillow_shims_restore_removed_names() -> None:
    from PIL import Image

    _apply_pillow_shims()
    assert Image.ANTIALIAS == Image.LANCZOS and Image.LINEAR == Image.BILINEAR


@pytest.mark.skipif(importlib.util.find_spec("pixellib") is not None, reason="PixelLib installed")
def test_missing_library_is_an_honest_error(tmp_path: Path) -> None:
    weights = tmp_path / "pointrend_resnet50.pkl"
    weights.write_bytes(b"x")
    with pytest.raises(SegmentationModelNotFoundError, match=r"petmatch\[pixellib\]"):
        build_segmenter("pixellib", weights=weights)
