"""Reading images and checking arrays: the one place that turns bytes into RGB pixels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from segmentation.errors import ImageDecodeError

__all__ = ["check_image", "read_image"]


def read_image(source: bytes | Path | str) -> np.ndarray:
    """Decode image bytes or a file into RGB uint8 HxWx3; `ImageDecodeError` if it is not one."""
    try:
        if isinstance(source, bytes):
            handle: Image.Image = Image.open(io.BytesIO(source))
        else:
            handle = Image.open(Path(source))
        with handle as image:
            image.load()
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        name = "image bytes" if isinstance(source, bytes) else str(source)
        raise ImageDecodeError(f"cannot decode {name} as an image: {exc}") from exc


def check_image(image: np.ndarray) -> np.ndarray:
    """Refuse anything but a non-empty RGB uint8 HxWx3 array (with a clear message)."""
    if not isinstance(image, np.ndarray):
        raise ImageDecodeError(f"expected an RGB numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageDecodeError(
            f"expected RGB uint8 HxWx3, got dtype {image.dtype} shape {image.shape}"
        )
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ImageDecodeError(f"image too small: {image.shape}")
    return image
