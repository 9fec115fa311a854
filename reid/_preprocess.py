"""Turning crops into model input: square letterbox or a plain resize to the model's shape."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def check_crop(crop: np.ndarray) -> np.ndarray:
    """Refuse anything that is not an RGB uint8 HxWx3 image with pixels in it."""
    if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8:
        raise ValueError(f"a crop must be a uint8 numpy array, got {type(crop).__name__}")
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] == 0 or crop.shape[1] == 0:
        raise ValueError(f"a crop must be RGB HxWx3 with pixels, got shape {crop.shape}")
    return crop


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    shrinking = width < image.shape[1] or height < image.shape[0]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit `image` into `size` (h, w) keeping its aspect ratio, centred on black."""
    out_h, out_w = size
    in_h, in_w = image.shape[:2]
    scale = min(out_h / in_h, out_w / in_w)
    new_h = max(1, min(out_h, round(in_h * scale)))
    new_w = max(1, min(out_w, round(in_w * scale)))
    resized = _resize(image, new_w, new_h)
    canvas = np.zeros((out_h, out_w, 3), dtype=np.uint8)
    top = (out_h - new_h) // 2
    left = (out_w - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


def stretch(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize `image` to exactly `size` (h, w), as torchreid feeds OSNet its 256x128 shape."""
    out_h, out_w = size
    return _resize(image, out_w, out_h)


def prepare_batch(
    crops: Sequence[np.ndarray],
    *,
    input_size: tuple[int, int],
    letterbox_crops: bool,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """Crops (RGB uint8) to a normalized float32 NCHW batch of `input_size` (h, w)."""
    fit = letterbox if letterbox_crops else stretch
    batch = np.empty((len(crops), 3, *input_size), dtype=np.float32)
    mean_arr = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
    std_arr = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
    for i, crop in enumerate(crops):
        fitted = fit(check_crop(crop), input_size)
        chw = fitted.transpose(2, 0, 1).astype(np.float32) / 255.0
        batch[i] = (chw - mean_arr) / std_arr
    return batch
