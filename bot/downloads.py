"""One photo from its VK URL to a stored row: download, check, write the file, record it.

The poll cycle of a single `petmatch run` and the vision workers (`workers.enabled`) both go
through here, so a photo is treated the same wherever it is downloaded: the download is
bounded (`PhotoDownloader`: allow-listed hosts, byte cap, deadline, retries with backoff),
the bytes are decoded under a pixel limit, the file is written content-addressed (under
`photos_dir`, or into the database with `workers.files: database`) and only then is the row
recorded, one commit per photo. A row stays `pending` until that commit, so a process killed
in between leaves the photo to be downloaded again; the file it may have written is
overwritten under the same name, and the unique sha256 merges a second copy into the first.

A photo that fails transiently stays `pending` (counted in `attempts`) and is tried again
later, up to `MAX_PHOTO_ATTEMPTS`; anything else fails it for good. A bad photo is recorded
on its row and never stops the other photos of its post.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from bot import storage
from bot.files import FileStore
from bot.photos import BadPhotoError, NearDuplicateIndex, PhotoContent, inspect_photo
from bot.photos import store_photo_file as _write_local
from bot.storage.records import Photo, PhotoState
from bot.vk.errors import PhotoDownloadError, VkError

__all__ = [
    "LOCK_WAIT_SECONDS",
    "MAX_PHOTO_ATTEMPTS",
    "Fetched",
    "NearDuplicateCache",
    "NearDuplicates",
    "PhotoDownloading",
    "PhotoOutcome",
    "download_failure",
    "fetch_photo",
    "store_fetched",
]

logger = logging.getLogger("petmatch.bot.downloads")

#: A photo that failed transiently this many times is given up on (state `failed`).
MAX_PHOTO_ATTEMPTS = 5
#: How long recording a photo waits for its row (a worker, or the poller, may hold it).
LOCK_WAIT_SECONDS = 30.0
#: Download failures that may heal by themselves; everything else fails the photo for good.
_TRANSIENT_PHOTO_REASONS = ("timeout", "connection", "http_5", "http_429")

SessionMaker = Callable[[], Session]


class PhotoDownloading(Protocol):
    """What fetching needs: `VkApiGateway` or, without a token, `PhotoDownloader`."""

    def download_photo(self, url: str) -> bytes: ...


class NearDuplicates(Protocol):
    """`NearDuplicateIndex`, or a worker's `NearDuplicateCache`."""

    def nearest(self, phash: str) -> int | None: ...

    def add(self, photo_id: int, phash: str) -> None: ...


class PhotoOutcome:
    """What `store_fetched` did with one photo."""

    STORED = "stored"
    NEAR_DUPLICATE = "near_duplicate"  # stored, and a near copy of an earlier photo
    IDENTICAL = "identical"  # the same bytes as a stored photo: merged into it
    FAILED = "failed"  # for good
    RETRY_LATER = "retry_later"  # still pending, `attempts` counted
    TAKEN = "taken"  # another process recorded the photo first; nothing written


@dataclass(frozen=True, slots=True)
class Fetched:
    """A photo after download, checks and file write — or why that failed."""

    content: PhotoContent | None = None
    path: Path | None = None
    error: Exception | None = None


def fetch_photo(
    downloader: PhotoDownloading,
    url: str,
    *,
    max_pixels: int,
    photos_dir: Path,
    shared: FileStore | None = None,
) -> Fetched:
    """Download, check and write one photo; never raises (no database here, so it may run in
    a thread). `shared` set: the file goes there (`workers.files: database`)."""
    try:
        data = downloader.download_photo(url)
    except Exception as exc:  # recorded per photo; one bad photo never stops the rest
        return Fetched(error=exc)
    try:
        content = inspect_photo(data, max_pixels=max_pixels)
        if shared is not None:
            name = f"photos/{content.sha256[:2]}/{content.sha256}{content.extension}"
            try:
                return Fetched(content=content, path=Path(shared.put(name, data)))
            except SQLAlchemyError as exc:  # the file store is the database: try again later
                failure = OSError(f"the database refused the file: {str(exc).splitlines()[0]}")
                return Fetched(error=failure)
        return Fetched(content=content, path=_write_local(data, content, photos_dir))
    except (BadPhotoError, OSError) as exc:
        return Fetched(error=exc)


def store_fetched(
    session_factory: SessionMaker,
    photo: Photo,
    result: Fetched,
    near: NearDuplicates,
    *,
    now: datetime,
) -> str:
    """Record `result` on the photo's row (one commit) and say what happened (`PhotoOutcome`).

    The row is locked and read again first: a worker on another machine may have recorded
    the same photo (one shared by two posts) meanwhile, and then nothing is written. Two
    photos with the same bytes recorded at once collide on the unique sha256: the second
    is recorded again, and merges into the first."""
    try:
        return _store(session_factory, photo, result, near, now=now)
    except IntegrityError:
        logger.info("photo %d: the same bytes were stored meanwhile; merging", photo.id)
        return _store(session_factory, photo, result, near, now=now)


def _store(
    session_factory: SessionMaker,
    photo: Photo,
    result: Fetched,
    near: NearDuplicates,
    *,
    now: datetime,
) -> str:
    from bot.storage._schema import PhotoRow

    error: str | None = None
    final = True
    content, path = result.content, result.path
    if isinstance(result.error, BadPhotoError):
        error = str(result.error)
    elif isinstance(result.error, OSError):
        error, final = f"could not write the photo file: {result.error}", False
    elif result.error is not None:
        error, final = download_failure(result.error)
        if not isinstance(result.error, VkError):
            logger.error("photo %d: unexpected download failure", photo.id, exc_info=result.error)
    with storage.session_scope(session_factory) as session:
        storage.limit_lock_wait(session, LOCK_WAIT_SECONDS)
        state = session.scalar(
            select(PhotoRow.state).where(PhotoRow.id == photo.id).with_for_update()
        )
        if state != PhotoState.PENDING:
            return PhotoOutcome.TAKEN
        if error is not None or content is None or path is None:
            current = storage.get_photo(session, photo.id)
            attempts = current.attempts if current is not None else photo.attempts
            final = final or attempts + 1 >= MAX_PHOTO_ATTEMPTS
            logger.warning(
                "photo %d (%s): %s%s",
                photo.id,
                photo.source_url,
                error,
                "" if final else "; retrying later",
            )
            storage.record_photo_failure(
                session, photo.id, error or "unknown", now=now, final=final
            )
            return PhotoOutcome.FAILED if final else PhotoOutcome.RETRY_LATER
        twin = near.nearest(content.phash)
        kept = storage.record_photo_stored(
            session,
            photo.id,
            sha256=content.sha256,
            phash=content.phash,
            width=content.width,
            height=content.height,
            size=content.size,
            file_path=path,
            now=now,
            near_duplicate_of=twin,
        )
    if kept.id != photo.id:
        return PhotoOutcome.IDENTICAL
    near.add(kept.id, content.phash)
    return PhotoOutcome.STORED if twin is None else PhotoOutcome.NEAR_DUPLICATE


def download_failure(error: Exception) -> tuple[str, bool]:
    """(message, final?) for a failed download."""
    if isinstance(error, PhotoDownloadError):
        reason = getattr(error, "reason", "") or ""
        transient = reason.startswith(_TRANSIENT_PHOTO_REASONS)
        return f"{reason or 'download failed'}: {error}", not transient
    if isinstance(error, VkError):
        return str(error), False
    return f"{type(error).__name__}: {error}", False


class NearDuplicateCache:
    """A long-lived process's `NearDuplicateIndex`: every stored photo's hash once, then
    only the photos stored since (by any process) on each `refresh`.

    Rows are found again by `updated_at`, which each process sets from its own clock and
    commits a little later: the look-back covers both, and a photo already held is skipped.
    That look-up scans the photos table, so it runs at most every `every` seconds: a near
    copy another process stored just before may go unlinked (the link is informational;
    identical bytes are merged by sha256 regardless)."""

    def __init__(self, look_back: timedelta = timedelta(minutes=10), *, every: float = 5.0) -> None:
        self._index = NearDuplicateIndex()
        self._known: set[int] = set()
        self._since: datetime | None = None
        self._look_back = look_back
        self._every = every
        self._refreshed_at = float("-inf")

    def __len__(self) -> int:
        return len(self._index)

    def nearest(self, phash: str) -> int | None:
        return self._index.nearest(phash)

    def add(self, photo_id: int, phash: str) -> None:
        if photo_id not in self._known:
            self._known.add(photo_id)
            self._index.add(photo_id, phash)

    def refresh(self, session: Session) -> None:
        from bot.storage._schema import PhotoRow

        if time.monotonic() - self._refreshed_at < self._every:
            return
        self._refreshed_at = time.monotonic()

        query = select(PhotoRow.id, PhotoRow.phash, PhotoRow.updated_at).where(
            PhotoRow.state == PhotoState.STORED, PhotoRow.phash.is_not(None)
        )
        if self._since is not None:
            query = query.where(PhotoRow.updated_at >= self._since - self._look_back)
        latest = self._since
        for photo_id, phash, updated_at in session.execute(query.order_by(PhotoRow.id)):
            if latest is None or updated_at > latest:
                latest = updated_at
            self.add(photo_id, phash)
        self._since = latest
