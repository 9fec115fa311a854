"""One poll cycle: read every due group's wall incrementally, store new and edited posts with
their photo rows, then download the photos that are still missing (`bot.downloads`) — unless
vision workers do (`workers.enabled`): then each worker downloads the photos of the posts it
claims, and the cycle stops at the photo rows.

Crash safety comes from the order of commits. A group's new posts, their cases and their
(pending) photo rows are committed in the same transaction that advances the group's cursor,
so the cursor never covers a post that is not stored. Photos are downloaded afterwards, one
commit each; a photo row stays `pending` until its file is on disk, so a killed run re-fetches
exactly the photos that are missing, and the unique keys (post, photo, sha256) make storing
anything twice impossible.

Posts `marked_as_ads` are not stored at all (the cursor still moves past them).

One bad item never stops more than itself: an unreadable item of a page is recorded as a
problem (group, id as sent, reason, bounded excerpt) and skipped, and the cursor moves past
it; a post the database refuses is recorded the same way; anything unexpected while handling
one group fails that group alone, and the cycle goes on with the others.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError, StatementError
from sqlalchemy.orm import Session

from bot import storage
from bot.config import Settings
from bot.downloads import (
    LOCK_WAIT_SECONDS,
    MAX_PHOTO_ATTEMPTS,
    Fetched,
    PhotoOutcome,
    fetch_photo,
    store_fetched,
)
from bot.files import DatabaseFiles
from bot.photos import NearDuplicateIndex
from bot.storage import PostChange
from bot.vk.errors import (
    CaptchaError,
    GroupAccessError,
    MethodPausedError,
    TokenError,
    VkBugError,
    VkError,
)
from bot.vk.models import SkippedItem, VkGateway, WallPage, WallPost, WallRequest

__all__ = [
    "MAX_PHOTO_ATTEMPTS",
    "GroupOutcome",
    "GroupStatus",
    "PollReport",
    "ProgressCallback",
    "poll_cycle",
]

logger = logging.getLogger("petmatch.bot.polling")

_DOWNLOAD_CHUNK = 32

#: `progress(phase, done, total)` with phase "walls" or "photos".
ProgressCallback = Callable[[str, int, int], None]
SessionMaker = Callable[[], Session]


class GroupStatus:
    OK = "ok"
    ERROR = "error"  # retried next cycle
    INACCESSIBLE = "inaccessible"  # re-checked after `inaccessible_recheck_hours`
    NOT_POLLED = "not_polled"  # the cycle stopped before reaching it (token, pause)


@dataclass(frozen=True, slots=True)
class GroupOutcome:
    vk_id: int
    screen_name: str
    status: str
    new_posts: int = 0
    edited_posts: int = 0
    skipped_ads: int = 0
    pages: int = 0
    cursor_post_id: int = 0
    error: str | None = None
    skipped_items: int = 0


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one cycle did. `token_error` set means polling stopped: the token is dead."""

    started_at: datetime
    duration_seconds: float
    groups_due: int
    groups_ok: int
    groups_failed: int
    groups_inaccessible: int
    new_posts: int
    edited_posts: int
    skipped_ads: int
    skipped_items: int
    photos_stored: int
    photos_identical: int
    photos_near_duplicate: int
    photos_failed: int
    photos_retry_later: int
    vk_calls: Mapping[str, int]
    token_error: str | None = None
    paused: str | None = None
    bugs: tuple[str, ...] = ()
    groups: tuple[GroupOutcome, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the cycle ran and nothing stopped it."""
        return self.token_error is None and self.paused is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["vk_calls"] = dict(self.vk_calls)
        data["ok"] = self.ok
        return data


@dataclass
class _Stats:
    new_posts: int = 0
    edited_posts: int = 0
    skipped_ads: int = 0
    skipped_items: int = 0
    photos_stored: int = 0
    photos_identical: int = 0
    photos_near_duplicate: int = 0
    photos_failed: int = 0
    photos_retry_later: int = 0
    bugs: list[str] = field(default_factory=list)
    outcomes: dict[int, GroupOutcome] = field(default_factory=dict)


@dataclass
class _WallScan:
    """One group's scan in progress: pages read so far and what they hold."""

    group: storage.Group
    offset: int = 0
    pages: int = 0
    done: bool = False
    posts: dict[int, WallPost] = field(default_factory=dict)  # post_id → post, new or edited
    skipped_ads: int = 0
    highest_seen: int = 0
    skipped: list[SkippedItem] = field(default_factory=list)  # unreadable items, recorded


class _Stop(Exception):
    """Ends the wall phase of this cycle (dead token, method paused)."""


def poll_cycle(
    session_factory: SessionMaker,
    gateway: VkGateway,
    settings: Settings,
    *,
    now: datetime,
    progress: ProgressCallback | None = None,
    download_workers: int = 4,
    stop_requested: Callable[[], bool] | None = None,
) -> PollReport:
    """Poll every due group once, then download missing photos (not with `workers.enabled`:
    the workers download them); never raises for VK errors.

    `stop_requested` is checked between steps (a wall batch, a photo): when it turns true
    the cycle ends early with everything done so far committed."""
    should_stop = stop_requested or (lambda: False)
    started = time.monotonic()
    calls_before = _snapshot_calls(gateway)
    own_calls: Counter[str] = Counter()
    stats = _Stats()
    token_error: str | None = None
    paused: str | None = None

    with storage.session_scope(session_factory) as session:
        groups = storage.groups_due(session, now)
        pause = storage.active_pause(
            session, storage.method_scope("execute"), now
        ) or storage.active_pause(session, storage.method_scope("wall.get"), now)
    if pause is not None:
        paused = f"{pause.scope} is paused until {pause.until.isoformat()}: {pause.reason}"
        logger.warning("not polling walls: %s", paused)
    else:
        try:
            _poll_walls(
                session_factory,
                gateway,
                settings,
                groups,
                now,
                stats,
                own_calls,
                progress,
                should_stop,
            )
        except _Stop as stop:
            reason = stop.args[0]
            if isinstance(reason, TokenError):
                token_error = f"the VK token is dead or wrong: {reason}"
                logger.error("polling stopped: %s", token_error)
            else:
                paused = str(reason)
    for group in groups:
        stats.outcomes.setdefault(
            group.vk_id, GroupOutcome(group.vk_id, group.screen_name, GroupStatus.NOT_POLLED)
        )

    # With vision workers the photos are theirs to download (`bot.worker`): the scheduler
    # only records the posts and their photo URLs.
    if not should_stop() and not settings.workers.enabled:
        _download_photos(
            session_factory,
            gateway,
            settings,
            now,
            stats,
            progress,
            download_workers,
            should_stop,
        )

    calls = _calls_since(gateway, calls_before, own_calls)
    if calls:
        with storage.session_scope(session_factory) as session:
            storage.add_vk_calls(session, now.date(), calls)
    outcomes = tuple(stats.outcomes[g.vk_id] for g in groups)
    report = PollReport(
        started_at=now,
        duration_seconds=round(time.monotonic() - started, 3),
        groups_due=len(groups),
        groups_ok=sum(o.status == GroupStatus.OK for o in outcomes),
        groups_failed=sum(o.status == GroupStatus.ERROR for o in outcomes),
        groups_inaccessible=sum(o.status == GroupStatus.INACCESSIBLE for o in outcomes),
        new_posts=stats.new_posts,
        edited_posts=stats.edited_posts,
        skipped_ads=stats.skipped_ads,
        skipped_items=stats.skipped_items,
        photos_stored=stats.photos_stored,
        photos_identical=stats.photos_identical,
        photos_near_duplicate=stats.photos_near_duplicate,
        photos_failed=stats.photos_failed,
        photos_retry_later=stats.photos_retry_later,
        vk_calls=dict(calls),
        token_error=token_error,
        paused=paused,
        bugs=tuple(stats.bugs),
        groups=outcomes,
    )
    logger.info(
        "poll: %d groups (%d ok, %d failed, %d inaccessible), %d new posts, %d edited, "
        "%d photos stored, %d failed, calls %s",
        report.groups_due,
        report.groups_ok,
        report.groups_failed,
        report.groups_inaccessible,
        report.new_posts,
        report.edited_posts,
        report.photos_stored,
        report.photos_failed,
        dict(calls),
    )
    return report


# ---- walls ---------------------------------------------------------------------------


def _poll_walls(
    session_factory: SessionMaker,
    gateway: VkGateway,
    settings: Settings,
    groups: Sequence[storage.Group],
    now: datetime,
    stats: _Stats,
    own_calls: Counter[str],
    progress: ProgressCallback | None,
    should_stop: Callable[[], bool],
) -> None:
    batch_size = settings.vk.walls_per_execute
    done = 0
    if progress:
        progress("walls", 0, len(groups))
    for start in range(0, len(groups), batch_size):
        scans = [_WallScan(group=g) for g in groups[start : start + batch_size]]
        while True:
            active = [s for s in scans if not s.done]
            if not active or should_stop():
                break
            requests = [
                WallRequest(
                    owner_id=s.group.owner_id, offset=s.offset, count=settings.polling.page_size
                )
                for s in active
            ]
            own_calls["execute"] += 1
            own_calls["wall.get"] += len(requests)
            try:
                results: Mapping[int, WallPage | Exception] = gateway.fetch_walls(requests)
            except VkError as exc:
                results = {s.group.owner_id: exc for s in active}
            except Exception as exc:  # a petmatch bug in the batch: these walls fail, not the cycle
                logger.exception("reading %d walls failed unexpectedly", len(active))
                results = {s.group.owner_id: _unexpected(exc) for s in active}
            stop: Exception | None = None
            for scan in active:
                result = results.get(scan.group.owner_id)
                if result is None:
                    result = VkError("execute returned no result for this wall", method="execute")
                if isinstance(result, WallPage):
                    try:
                        _take_page(scan, result, settings, now)
                        if scan.done:
                            _commit_scan(session_factory, scan, now, stats)
                    except Exception as exc:  # one group's surprise never ends the cycle
                        logger.exception("group %s failed unexpectedly", scan.group.screen_name)
                        scan.done = True
                        _group_failed(scan, f"unexpected failure: {_short(exc)}", stats)
                    done += scan.done
                    continue
                scan.done = True
                done += 1
                try:
                    stop = _wall_failed(session_factory, scan, result, settings, now, stats) or stop
                except SQLAlchemyError as exc:
                    logger.exception("group %s: recording its error failed", scan.group.screen_name)
                    _group_failed(scan, f"database: {_short(exc)}", stats)
            if progress:
                progress("walls", done, len(groups))
            if stop is not None:
                raise _Stop(stop)


def _take_page(scan: _WallScan, page: WallPage, settings: Settings, now: datetime) -> None:
    """Add one page to the scan and decide whether the scan goes on."""
    cursor = scan.group.cursor_post_id
    edit_window = timedelta(hours=settings.polling.edited_window_hours)
    reached_cursor = False
    for item in page.skipped:
        scan.skipped.append(item)
        if item.post_id is not None and item.post_id > cursor:
            scan.highest_seen = max(scan.highest_seen, item.post_id)  # skipped, not re-read
    for post in page.posts:
        if post.owner_id != scan.group.owner_id:
            continue
        if post.post_id > cursor:
            scan.highest_seen = max(scan.highest_seen, post.post_id)
            if post.marked_as_ads:
                scan.skipped_ads += post.post_id not in scan.posts
                continue
            scan.posts[post.post_id] = post
            continue
        if not post.is_pinned:
            reached_cursor = True  # a pinned old post never stops the scan
        if post.edited is not None and not post.marked_as_ads and now - post.edited <= edit_window:
            scan.posts[post.post_id] = post  # stored already; upsert keeps it unless edited grew
    scan.pages += 1
    scan.offset += settings.polling.page_size
    full_page = page.items_read >= settings.polling.page_size and scan.offset < page.count
    if reached_cursor or not full_page or scan.pages >= settings.polling.max_pages:
        if not reached_cursor and full_page and cursor:
            logger.warning(
                "group %s: %d pages were all new; older posts beyond them are not read",
                scan.group.screen_name,
                scan.pages,
            )
        scan.done = True


def _commit_scan(
    session_factory: SessionMaker, scan: _WallScan, now: datetime, stats: _Stats
) -> None:
    """Store the scan's posts and skipped items and advance the cursor in one transaction.
    When the database refuses the batch for what is in it (a value no column takes), the
    posts are stored one by one and each refused one is recorded as a problem instead."""
    group = scan.group
    try:
        try:
            new, edited, refused, updated = _store_scan(
                session_factory, scan, now, one_by_one=False
            )
        except (DataError, IntegrityError, StatementError) as exc:
            if not _is_data_problem(exc):
                raise
            logger.warning(
                "group %s: the database refused a post (%s); storing them one by one",
                group.screen_name,
                _short(exc),
            )
            new, edited, refused, updated = _store_scan(session_factory, scan, now, one_by_one=True)
    except storage.NotFoundError:
        logger.info("group %s was removed during the poll", group.screen_name)
        return
    except SQLAlchemyError as exc:
        # Nothing of this group was committed (one transaction), so its cursor did not move
        # and the next cycle reads the same posts again.
        logger.exception("group %s: storing its posts failed", group.screen_name)
        _group_failed(scan, f"database: {_short(exc)}", stats)
        return
    skipped = len(scan.skipped) + refused
    stats.new_posts += new
    stats.edited_posts += edited
    stats.skipped_ads += scan.skipped_ads
    stats.skipped_items += skipped
    if new or edited:
        logger.info("group %s: %d new, %d edited posts", group.screen_name, new, edited)
    if skipped:
        logger.warning(
            "group %s: %d malformed items skipped (see `petmatch problems list`)",
            group.screen_name,
            skipped,
        )
    stats.outcomes[group.vk_id] = GroupOutcome(
        vk_id=group.vk_id,
        screen_name=group.screen_name,
        status=GroupStatus.OK,
        new_posts=new,
        edited_posts=edited,
        skipped_ads=scan.skipped_ads,
        pages=scan.pages,
        cursor_post_id=updated.cursor_post_id,
        skipped_items=skipped,
    )


def _store_scan(
    session_factory: SessionMaker, scan: _WallScan, now: datetime, *, one_by_one: bool
) -> tuple[int, int, int, storage.Group]:
    """(new, edited, refused, group after the cursor moved). `one_by_one` puts each post in
    its own savepoint, so a post the database refuses is recorded and the rest stored."""
    group = scan.group
    new = edited = refused = 0
    with storage.session_scope(session_factory) as session:
        # A vision worker holding one of these posts fails this group for this cycle (its
        # cursor stays), rather than holding the whole poll up.
        storage.limit_lock_wait(session, LOCK_WAIT_SECONDS)
        for post in sorted(scan.posts.values(), key=lambda p: p.post_id):
            if not one_by_one:
                _, change = storage.upsert_post(session, post, now=now)
            else:
                try:
                    with session.begin_nested():
                        _, change = storage.upsert_post(session, post, now=now)
                except (DataError, IntegrityError, StatementError) as exc:
                    if not _is_data_problem(exc):
                        raise
                    refused += 1
                    _record_skipped(session, group, _refused_item(post, exc), now)
                    continue
            new += change is PostChange.NEW
            edited += change is PostChange.EDITED
        for item in scan.skipped:
            _record_skipped(session, group, item, now)
        updated = storage.advance_cursor(
            session, group.id, max(group.cursor_post_id, scan.highest_seen), now
        )
    return new, edited, refused, updated


def _is_data_problem(exc: SQLAlchemyError) -> bool:
    """A value the database refuses (too long, out of range, not encodable) rather than the
    database being unreachable: only then may one post be skipped for it."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, OperationalError):
        return False
    if isinstance(exc, DBAPIError):
        return isinstance(exc, DataError | IntegrityError)
    return isinstance(exc, StatementError)  # a bind parameter that would not convert


def _refused_item(post: WallPost, exc: Exception) -> SkippedItem:
    return SkippedItem(
        owner_id=post.owner_id,
        post_ref=str(post.post_id),
        post_id=post.post_id,
        reason=f"the database refused the post: {_short(exc)}",
        excerpt=post.model_dump_json()[:500],
    )


def _record_skipped(session: Session, group: storage.Group, item: SkippedItem, now: datetime):
    storage.record_problem(
        session,
        group_vk_id=group.vk_id,
        owner_id=item.owner_id,
        post_ref=item.post_ref,
        reason=item.reason,
        excerpt=item.excerpt,
        now=now,
    )


def _group_failed(scan: _WallScan, message: str, stats: _Stats) -> None:
    """This group failed this cycle (its cursor did not move); the next cycle retries it."""
    group = scan.group
    stats.outcomes[group.vk_id] = GroupOutcome(
        vk_id=group.vk_id,
        screen_name=group.screen_name,
        status=GroupStatus.ERROR,
        pages=scan.pages,
        cursor_post_id=group.cursor_post_id,
        error=message,
    )


def _unexpected(exc: Exception) -> VkError:
    return VkError(f"unexpected failure: {_short(exc)}")


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:300] if text else "") or type(exc).__name__


def _wall_failed(
    session_factory: SessionMaker,
    scan: _WallScan,
    error: Exception,
    settings: Settings,
    now: datetime,
    stats: _Stats,
) -> Exception | None:
    """Apply the VK error policy to one wall; return the error when the cycle must stop."""
    group = scan.group
    message = str(error)
    status = GroupStatus.ERROR
    stop: Exception | None = None
    with storage.session_scope(session_factory) as session:
        if isinstance(error, TokenError):
            stop = error
        elif isinstance(error, GroupAccessError):
            status = GroupStatus.INACCESSIBLE
            recheck = timedelta(hours=settings.vk.inaccessible_recheck_hours)
            logger.warning(
                "group %s is inaccessible (%s); re-checking after %s",
                group.screen_name,
                message,
                now + recheck,
            )
            storage.mark_group_inaccessible(session, group.id, message, now, recheck)
        elif isinstance(error, CaptchaError):
            until = now + timedelta(hours=settings.vk.captcha_pause_hours)
            if storage.active_pause(session, storage.WRITES_SCOPE, now) is None:
                logger.warning(
                    "VK asks for a captcha (%s): all writes pause until %s", message, until
                )
                storage.add_pause(
                    session, storage.WRITES_SCOPE, until=until, reason=message, now=now
                )
            storage.record_group_error(session, group.id, message, now)
        elif isinstance(error, MethodPausedError):
            method = error.method or "wall.get"
            scope = storage.method_scope(method)
            until = now + timedelta(hours=settings.vk.method_pause_hours)
            if storage.active_pause(session, scope, now) is None:
                logger.warning("%s hit its daily limit: paused until %s", method, until)
                storage.add_pause(session, scope, until=until, reason=message, now=now)
            storage.record_group_error(session, group.id, message, now)
            stop = MethodPausedError(
                f"{scope} is paused until {until.isoformat()}: {message}", code=29, method=method
            )
        elif isinstance(error, VkBugError):
            logger.error(
                "VK says our request is wrong (a petmatch bug): method=%s code=%s group=%s: %s",
                error.method,
                error.code,
                group.screen_name,
                message,
            )
            stats.bugs.append(
                f"{error.method} (code {error.code}) for {group.screen_name}: {message}"
            )
            storage.record_group_error(session, group.id, f"bug: {message}", now)
        else:
            logger.warning("group %s: %s; retrying next cycle", group.screen_name, message)
            storage.record_group_error(session, group.id, message, now)
    if not isinstance(error, TokenError):
        stats.outcomes[group.vk_id] = GroupOutcome(
            vk_id=group.vk_id,
            screen_name=group.screen_name,
            status=status,
            cursor_post_id=group.cursor_post_id,
            error=message,
        )
    return stop


# ---- photos --------------------------------------------------------------------------


def _download_photos(
    session_factory: SessionMaker,
    gateway: VkGateway,
    settings: Settings,
    now: datetime,
    stats: _Stats,
    progress: ProgressCallback | None,
    workers: int,
    should_stop: Callable[[], bool],
) -> None:
    """Download every pending photo; each one is committed on its own."""
    with storage.session_scope(session_factory) as session:
        pending = storage.pending_photos(session)
        near = NearDuplicateIndex(storage.stored_phashes(session)) if pending else None
    if not pending or near is None:
        return
    total = len(pending)
    if progress:
        progress("photos", 0, total)

    max_pixels = settings.vk.max_photo_pixels
    photos_dir = settings.photos_dir
    # Workers on other machines read photos from the database when `workers.files` says so.
    shared = DatabaseFiles(session_factory) if settings.workers.files == "database" else None

    def fetch(photo: storage.Photo) -> Fetched:
        """Download, check and write one photo (in a worker thread: no database here)."""
        return fetch_photo(
            gateway, photo.source_url, max_pixels=max_pixels, photos_dir=photos_dir, shared=shared
        )

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="photo")
    try:
        for chunk_start in range(0, total, _DOWNLOAD_CHUNK):
            if should_stop():
                break
            chunk = pending[chunk_start : chunk_start + _DOWNLOAD_CHUNK]
            futures = [pool.submit(fetch, photo) for photo in chunk]
            for photo, future in zip(chunk, futures, strict=True):
                if should_stop():
                    break
                try:
                    _store_photo(session_factory, photo, future.result(), near, now, stats)
                except Exception:  # one photo's surprise (a database hiccup) never ends the cycle
                    logger.exception("photo %d: storing it failed; retrying next cycle", photo.id)
                    stats.photos_retry_later += 1
            if progress:
                progress("photos", min(chunk_start + len(chunk), total), total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _store_photo(
    session_factory: SessionMaker,
    photo: storage.Photo,
    result: Fetched,
    near: NearDuplicateIndex,
    now: datetime,
    stats: _Stats,
) -> None:
    outcome = store_fetched(session_factory, photo, result, near, now=now)
    if outcome == PhotoOutcome.FAILED:
        stats.photos_failed += 1
    elif outcome == PhotoOutcome.RETRY_LATER:
        stats.photos_retry_later += 1
    elif outcome == PhotoOutcome.IDENTICAL:
        stats.photos_identical += 1
    elif outcome in (PhotoOutcome.STORED, PhotoOutcome.NEAR_DUPLICATE):
        stats.photos_stored += 1
        stats.photos_near_duplicate += outcome == PhotoOutcome.NEAR_DUPLICATE


# ---- call accounting -----------------------------------------------------------------


def _snapshot_calls(gateway: VkGateway) -> tuple[Any, Counter[str]] | None:
    counts = getattr(gateway, "calls_today", None)
    if not isinstance(counts, Mapping):
        return None
    return getattr(gateway, "calls_day", None), Counter(counts)


def _calls_since(
    gateway: VkGateway, before: tuple[Any, Counter[str]] | None, own: Counter[str]
) -> dict[str, int]:
    """Calls made during the cycle: the gateway's own counters when it keeps them."""
    if before is None:
        return {k: v for k, v in own.items() if v}
    day_before, counts_before = before
    counts = Counter(getattr(gateway, "calls_today", {}))
    if getattr(gateway, "calls_day", None) != day_before:
        counts_before = Counter()  # the gateway's day rolled over mid-cycle
    diff = counts - counts_before
    return {k: v for k, v in sorted(diff.items()) if v}
