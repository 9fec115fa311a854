"""Photo checks shared by the adapter (cheap, on download) and storage (decoding)."""

from __future__ import annotations

import io
import warnings
from urllib.parse import urlsplit

from bot.vk.errors import PhotoDownloadError

_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)


def sniff_image_type(head: bytes) -> str | None:
    """The image format named by the first bytes (jpeg, png, gif, webp, bmp), or None."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def host_allowed(host: str, allowlist: tuple[str, ...]) -> bool:
    """Suffix match on whole labels: `sun9-1.userapi.com` matches `userapi.com`."""
    host = host.lower().rstrip(".")
    return any(host == allowed or host.endswith("." + allowed) for allowed in allowlist)


def url_host(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PhotoDownloadError(
            f"not an http(s) photo URL: {url[:200]}", reason="bad_url", url=url
        )
    return parts.hostname


def check_image(data: bytes, *, max_pixels: int) -> tuple[int, int]:
    """Decode-check photo bytes without trusting them: returns (width, height), or raises
    PhotoDownloadError with reason `not_image`, `corrupt` or `too_many_pixels` (the
    decompression-bomb guard reads only the header before refusing)."""
    from PIL import Image, UnidentifiedImageError

    if sniff_image_type(data[:16]) is None:
        raise PhotoDownloadError("the bytes are not a known image format", reason="not_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise PhotoDownloadError(
                        f"image has {width}x{height} pixels, over the cap of {max_pixels}",
                        reason="too_many_pixels",
                    )
                image.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise PhotoDownloadError(
            f"image is a decompression bomb: {exc}", reason="too_many_pixels"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise PhotoDownloadError(f"image does not decode: {exc}", reason="corrupt") from exc
    return width, height
