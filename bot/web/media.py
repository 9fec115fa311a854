"""Photos and crops for the desk's pages, read from the project's own store by id.

This is the one place the desk reads image bytes. A local file is served only from inside the
data root's photo and crop folders; a file the vision workers put in the database
(`bot.files`, a `db:` reference) is read from there, so the desk works wherever vision ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from bot import storage
from bot.config import Settings
from bot.files import DB_PREFIX, read_file
from bot.storage import reviews

__all__ = ["ImageKind", "read_image"]

ImageKind = Literal["photo", "crop"]

_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
)


def read_image(
    settings: Settings, sessions: storage.SessionFactory, kind: ImageKind, item_id: int
) -> tuple[bytes, str] | None:
    """The bytes and media type of photo `item_id` or of animal `item_id`'s crop; None when
    there is none, or when the recorded file lies outside the store (never served)."""
    with storage.session_scope(sessions) as session:
        if kind == "photo":
            path, root = reviews.photo_file(session, item_id), settings.photos_dir
        else:
            path, root = reviews.animal_crop_file(session, item_id), settings.var_dir / "crops"
    if path is None:
        return None
    try:
        if str(path).startswith(DB_PREFIX):
            data = read_file(str(path), sessions)
        elif root is not None and _inside(path, Path(root)):
            data = path.read_bytes()
        else:
            return None
    except OSError:
        return None
    media_type = _media_type(data)
    return None if media_type is None else (data, media_type)


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def _media_type(data: bytes) -> str | None:
    """Served as an image only when the bytes are one (never as HTML, whatever the name)."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
