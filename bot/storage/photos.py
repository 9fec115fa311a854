"""Photo rows: pending downloads, stored content (one row per sha256), failures."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.storage import _convert
from bot.storage._schema import PhotoRow, PostPhotoRow
from bot.storage.errors import NotFoundError
from bot.storage.records import Photo, PhotoState

__all__ = [
    "count_photos",
    "find_photo_by_sha256",
    "get_photo",
    "pending_photos",
    "record_photo_failure",
    "record_photo_stored",
    "stored_phashes",
]


def get_photo(session: Session, photo_pk: int) -> Photo | None:
    row = session.get(PhotoRow, photo_pk)
    return None if row is None else _convert.photo(row)


def pending_photos(session: Session, *, limit: int | None = None) -> list[Photo]:
    """Photos still to download (never tried, or failed transiently), oldest first."""
    query = select(PhotoRow).where(PhotoRow.state == PhotoState.PENDING).order_by(PhotoRow.id)
    if limit is not None:
        query = query.limit(limit)
    return [_convert.photo(r) for r in session.scalars(query)]


def find_photo_by_sha256(session: Session, sha256: str) -> Photo | None:
    row = session.scalar(select(PhotoRow).where(PhotoRow.sha256 == sha256))
    return None if row is None else _convert.photo(row)


def stored_phashes(session: Session) -> list[tuple[int, str]]:
    """(photo id, phash hex) of every stored photo, for near-duplicate search."""
    rows = session.execute(
        select(PhotoRow.id, PhotoRow.phash)
        .where(PhotoRow.state == PhotoState.STORED, PhotoRow.phash.is_not(None))
        .order_by(PhotoRow.id)
    )
    return [(pk, phash) for pk, phash in rows]


def _row(session: Session, photo_pk: int) -> PhotoRow:
    row = session.get(PhotoRow, photo_pk)
    if row is None:
        raise NotFoundError(f"photo #{photo_pk} does not exist")
    return row


def record_photo_stored(
    session: Session,
    photo_pk: int,
    *,
    sha256: str,
    phash: str,
    width: int,
    height: int,
    size: int,
    file_path: Path,
    now: datetime,
    near_duplicate_of: int | None = None,
) -> Photo:
    """Record downloaded content for a pending photo and return the photo that now holds it.

    When another photo already holds the same sha256, this row becomes `merged` into it and
    its post links move there (a post linked to both keeps one link)."""
    row = _row(session, photo_pk)
    existing = session.scalar(
        select(PhotoRow).where(PhotoRow.sha256 == sha256, PhotoRow.id != photo_pk)
    )
    if existing is not None:
        _move_links(session, row.id, existing.id)
        row.state = PhotoState.MERGED
        row.duplicate_of = existing.id
        row.error = None
        row.attempts += 1
        row.updated_at = now
        session.flush()
        return _convert.photo(existing)
    row.sha256 = sha256
    row.phash = phash
    row.width = width
    row.height = height
    row.bytes = size
    row.file_path = str(file_path)
    row.state = PhotoState.STORED
    row.error = None
    row.attempts += 1
    row.duplicate_of = near_duplicate_of
    row.updated_at = now
    session.flush()
    return _convert.photo(row)


def _move_links(session: Session, from_pk: int, to_pk: int) -> None:
    already = set(
        session.scalars(select(PostPhotoRow.post_id).where(PostPhotoRow.photo_id == to_pk))
    )
    for link in session.scalars(select(PostPhotoRow).where(PostPhotoRow.photo_id == from_pk)):
        if link.post_id in already:
            session.delete(link)
        else:
            link.photo_id = to_pk
            already.add(link.post_id)
    session.flush()
    # Anything that pointed at the merged row as a near duplicate points at the survivor.
    session.execute(
        update(PhotoRow).where(PhotoRow.duplicate_of == from_pk).values(duplicate_of=to_pk)
    )


def record_photo_failure(
    session: Session, photo_pk: int, error: str, *, now: datetime, final: bool
) -> Photo:
    """Count a failed download; `final` marks it failed for good, else it stays pending."""
    row = _row(session, photo_pk)
    row.attempts += 1
    row.error = error[:2000]
    if final:
        row.state = PhotoState.FAILED
    row.updated_at = now
    session.flush()
    return _convert.photo(row)


def count_photos(session: Session, state: PhotoState | None = None) -> int:
    query = select(func.count()).select_from(PhotoRow)
    if state is not None:
        query = query.where(PhotoRow.state == state)
    return session.scalar(query) or 0
