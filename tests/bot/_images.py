"""Small real images for polling tests (generated, deterministic)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def jpeg(seed: int, size: tuple[int, int] = (64, 48), quality: int = 90) -> bytes:
    """A distinct JPEG per seed (blocky noise, so perceptual hashes differ)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(blocks).resize(size, Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def reencoded(data: bytes, quality: int = 60) -> bytes:
    """The same picture saved again: other bytes, same perceptual hash (almost)."""
    with Image.open(io.BytesIO(data)) as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=quality)
        return out.getvalue()


def png_bomb(side: int = 5000) -> bytes:
    """A flat PNG with many pixels and very few bytes."""
    out = io.BytesIO()
    Image.new("L", (side, side), 0).save(out, format="PNG", optimize=True)
    return out.getvalue()
