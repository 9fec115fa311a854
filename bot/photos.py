"""Photo files: decode checks, a decompression-bomb guard, content-addressed storage under
`settings.photos_dir` (written atomically) and perceptual hashes for near-duplicates."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "NEAR_DUPLICATE_DISTANCE",
    "BadPhotoError",
    "NearDuplicateIndex",
    "PhotoContent",
    "hamming_distance",
    "inspect_photo",
    "store_photo_file",
]

logger = logging.getLogger("petmatch.bot.photos")

#: Perceptual hashes (64-bit pHash) this close are the same picture re-encoded or resized.
NEAR_DUPLICATE_DISTANCE = 6

_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}


class BadPhotoError(ValueError):
    """The bytes are not an acceptable image (not decodable, too many pixels, empty)."""


@dataclass(frozen=True, slots=True)
class PhotoContent:
    """What the checks learned about one photo's bytes."""

    sha256: str
    phash: str
    width: int
    height: int
    size: int
    format: str

    @property
    def extension(self) -> str:
        return _EXTENSIONS.get(self.format, ".img")


def inspect_photo(data: bytes, *, max_pixels: int) -> PhotoContent:
    """Decode `data` fully, refusing images over `max_pixels` before decoding them."""
    if not data:
        raise BadPhotoError("empty body")
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard warns, then raises; both become a refusal here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width <= 0 or height <= 0:
                    raise BadPhotoError(f"image has no pixels ({width}x{height})")
                if width * height > max_pixels:
                    raise BadPhotoError(
                        f"image has {width}x{height} pixels, more than the {max_pixels} allowed"
                    )
                image_format = image.format or "UNKNOWN"
                image.load()
                phash = str(imagehash.phash(_small(image)))
    except BadPhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadPhotoError(f"decompression bomb refused: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadPhotoError(f"not a decodable image: {type(exc).__name__}: {exc}") from exc
    return PhotoContent(
        sha256=hashlib.sha256(data).hexdigest(),
        phash=phash,
        width=width,
        height=height,
        size=len(data),
        format=image_format,
    )


def _small(image: Image.Image) -> Image.Image:
    """A cheap box-downscale to at most ~256 px before pHash: the hash only looks at 32x32,
    and resizing a full photo with Lanczos costs more than decoding it."""
    gray = image.convert("L")
    factor = max(1, min(gray.size) // 128)
    return gray.reduce(factor) if factor > 1 else gray


def store_photo_file(data: bytes, content: PhotoContent, photos_dir: Path) -> Path:
    """Write the bytes once under `photos_dir/<sha[:2]>/<sha><ext>` (temp file + rename)."""
    folder = photos_dir / content.sha256[:2]
    target = folder / f"{content.sha256}{content.extension}"
    if target.exists() and target.stat().st_size == content.size:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=content.extension)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target


def hamming_distance(a: str, b: str) -> int:
    """Bits that differ between two hex perceptual hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


class NearDuplicateIndex:
    """Stored photos' perceptual hashes in memory, for "is this one a near copy?" lookups."""

    def __init__(self, items: list[tuple[int, str]] | None = None) -> None:
        self._ids: list[int] = []
        self._array = np.zeros(max(64, len(items or ())), dtype=np.uint64)
        for photo_id, phash in items or ():
            self.add(photo_id, phash)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, photo_id: int, phash: str) -> None:
        if len(self._ids) == len(self._array):
            self._array = np.concatenate([self._array, np.zeros_like(self._array)])
        self._array[len(self._ids)] = np.uint64(int(phash, 16))
        self._ids.append(photo_id)

    def nearest(self, phash: str, max_distance: int = NEAR_DUPLICATE_DISTANCE) -> int | None:
        """The id of the closest earlier photo within `max_distance` bits, if any."""
        if not self._ids:
            return None
        hashes = self._array[: len(self._ids)]
        distances = np.bitwise_count(hashes ^ np.uint64(int(phash, 16)))
        best = int(np.argmin(distances))
        return self._ids[best] if int(distances[best]) <= max_distance else None
