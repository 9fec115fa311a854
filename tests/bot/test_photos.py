"""`bot.photos`: decode checks, the bomb guard, atomic content-addressed files, pHash links."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from bot.photos import (
    NEAR_DUPLICATE_DISTANCE,
    BadPhotoError,
    NearDuplicateIndex,
    hamming_distance,
    inspect_photo,
    store_photo_file,
)
from tests.bot._images import jpeg, png_bomb, reencoded

MAX = 40_000_000


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`x`height` (no pixel data worth the name)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_a_good_photo_is_measured_and_hashed() -> None:
    content = inspect_photo(jpeg(1, size=(320, 240)), max_pixels=MAX)
    assert (content.width, content.height, content.format) == (320, 240, "JPEG")
    assert len(content.sha256) == 64 and len(content.phash) == 16
    assert content.extension == ".jpg"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"<html>404</html>", "not a decodable image"),
        (jpeg(1)[:200], "not a decodable image"),  # truncated mid-scan
        (png_header_only(1000, 1000), "not a decodable image"),  # no pixel data
    ],
)
def test_undecodable_bytes_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(BadPhotoError, match=message):
        inspect_photo(data, max_pixels=MAX)


def test_too_many_pixels_are_refused_before_decoding() -> None:
    with pytest.raises(BadPhotoError, match="2000x2000 pixels"):
        inspect_photo(png_bomb(2000), max_pixels=1_000_000)


def test_pillow_bomb_guard_is_a_refusal_too() -> None:
    # 30000² is over twice Pillow's own limit: Pillow raises at open, whatever we allow
    with pytest.raises(BadPhotoError, match="decompression bomb"):
        inspect_photo(png_header_only(30_000, 30_000), max_pixels=10**12)


def test_files_are_content_addressed_and_written_once(tmp_path: Path) -> None:
    data = jpeg(3)
    content = inspect_photo(data, max_pixels=MAX)
    path = store_photo_file(data, content, tmp_path)
    assert path == tmp_path / content.sha256[:2] / f"{content.sha256}.jpg"
    assert path.read_bytes() == data
    mtime = path.stat().st_mtime_ns
    assert store_photo_file(data, content, tmp_path) == path
    assert path.stat().st_mtime_ns == mtime  # not rewritten
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def test_a_truncated_leftover_file_is_replaced(tmp_path: Path) -> None:
    data = jpeg(4)
    content = inspect_photo(data, max_pixels=MAX)
    target = tmp_path / content.sha256[:2] / f"{content.sha256}.jpg"
    target.parent.mkdir(parents=True)
    target.write_bytes(data[:10])
    assert store_photo_file(data, content, tmp_path).read_bytes() == data


def test_near_duplicates_are_found_and_strangers_are_not() -> None:
    original = inspect_photo(jpeg(5, size=(256, 192)), max_pixels=MAX)
    copy = inspect_photo(reencoded(jpeg(5, size=(256, 192)), quality=40), max_pixels=MAX)
    stranger = inspect_photo(jpeg(6, size=(256, 192)), max_pixels=MAX)
    assert copy.sha256 != original.sha256
    assert hamming_distance(original.phash, copy.phash) <= NEAR_DUPLICATE_DISTANCE
    assert hamming_distance(original.phash, stranger.phash) > NEAR_DUPLICATE_DISTANCE
    index = NearDuplicateIndex([(1, original.phash)])
    assert index.nearest(copy.phash) == 1
    assert index.nearest(stranger.phash) is None


def test_index_grows_past_its_first_block() -> None:
    index = NearDuplicateIndex()
    for i in range(200):
        index.add(i, f"{(i * 0x9E3779B97F4A7C15) % 2**64:016x}")
    assert len(index) == 200
    target = f"{(150 * 0x9E3779B97F4A7C15) % 2**64:016x}"
    assert index.nearest(target, max_distance=0) == 150
    assert NearDuplicateIndex().nearest(target) is None
