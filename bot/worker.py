"""`petmatch worker`: the vision stage (download, segment, embed) of posts claimed from
PostgreSQL.

Any number of workers, on any machines that reach the same database, take posts whose text
stage is done with `SELECT … FOR UPDATE SKIP LOCKED`, and hold that row lock while they work:
two workers never hold the same post, and a worker that dies mid-post drops its connection
and with it the lock, so the post is claimed again (what it had already downloaded,
segmented or embedded is reused). The scheduler of `petmatch run` (with `workers.enabled`)
polls and records each post's photo URLs; the worker downloads the photos still pending
exactly as the single-process poll does (`bot.downloads`: size and pixel limits, deadlines,
retries with backoff, one commit per photo), with no VK token (`PhotoDownloader`). A photo
that failed transiently holds its post back for `polling.interval_minutes`, as a poll cycle
would, until its attempts are spent; a bad photo is recorded and the post goes on without it.
The post's move to the `vision` stage and the `vision_runs` row are committed in the claiming
transaction, so a post is finished once. The scheduler indexes, matches and comments.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot import storage
from bot.downloads import (
    Fetched,
    NearDuplicateCache,
    PhotoDownloading,
    PhotoOutcome,
    fetch_photo,
    store_fetched,
)
from bot.files import DatabaseFiles
from bot.pipeline import CouldNotLookError, Pipeline, Stage
from bot.storage import workers as worker_store
from bot.storage.records import Photo, PhotoState, Post, PostState

__all__ = ["VisionWorker", "WorkerReport", "default_worker_name"]

logger = logging.getLogger("petmatch.worker")

#: A post's photos download this many at a time (the poll cycle uses 4 threads too).
_DOWNLOAD_THREADS = 4


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class WorkerReport:
    posts: int = 0
    failed: int = 0
    retry_later: int = 0  # a local error: the post is looked at again later
    waiting: int = 0  # a photo failed to download for now: the post is claimed again later
    photos_downloaded: int = 0
    photos_failed: int = 0  # for good (bad bytes, refused, attempts spent)
    photos_retry_later: int = 0
    photos_segmented: int = 0
    animals: int = 0


class VisionWorker:
    """Claims posts one at a time, downloads their pending photos and runs the pipeline's
    vision stage on them."""

    def __init__(
        self,
        pipeline: Pipeline,
        sessions: storage.SessionFactory,
        name: str,
        *,
        downloader: PhotoDownloading,
    ) -> None:
        self._pipeline = pipeline
        self._sessions = sessions
        self._downloader = downloader
        self._near = NearDuplicateCache()
        settings = pipeline.settings
        self._photo_retry_after = timedelta(minutes=settings.polling.interval_minutes)
        self._max_pixels = settings.vk.max_photo_pixels
        self._photos_dir = settings.photos_dir
        # Like the poll cycle: with `workers.files: database` photos travel in the database.
        self._shared = DatabaseFiles(sessions) if settings.workers.files == "database" else None
        self.name = name

    def process_one(
        self,
        report: WorkerReport,
        *,
        now: Callable[[], datetime],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> int | None:
        """Claim and finish one post; its id, or None when there is nothing to claim (or
        the post had to be left as it was: a stop request, an unrecorded photo failure)."""
        session = self._sessions()
        try:
            post = worker_store.claim_post_for_vision(
                session, now=now(), photo_retry_after=self._photo_retry_after
            )
            if post is None:
                session.rollback()
                return None
            pending, recorded = self._download_photos(post, report, now=now, stop=should_stop)
            if pending:  # not this round: the claim skips the post until its photos are due
                session.rollback()
                report.waiting += 1
                return post.id if recorded and not should_stop() else None
            started = now()
            finished: list[bool] = []

            def finish(error: str | None) -> None:
                finished.append(True)
                storage.set_post_state(
                    session,
                    post.id,
                    PostState.PROCESSING,
                    now=now(),
                    stage=Stage.VISION,
                    error=error,
                )
                worker_store.record_vision_run(session, post.id, self.name, now=now())

            try:
                done = self._pipeline.run_vision_stage(post, now=started, finish=finish)
                report.photos_segmented += done.photos_segmented
                report.animals += done.animals
                if not finished:  # a photo went back to pending: not this round
                    session.rollback()
                    return None
            except CouldNotLookError as exc:  # a local error: look again later, not failed
                session.rollback()
                self._pipeline.look_again_later(post, exc, now=started)
                report.retry_later += 1
                return post.id
            except Exception as exc:  # one post's failure never stops the worker
                logger.exception("post %s failed in the vision stage", post.url)
                storage.set_post_state(
                    session,
                    post.id,
                    PostState.FAILED,
                    now=now(),
                    stage=post.stage,
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                )
                report.failed += 1
            session.commit()
            if finished:
                self._pipeline.forget_failed_looks(post)
            report.posts += 1
            logger.info("worker %s finished the vision stage of post #%d", self.name, post.id)
            return post.id
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _download_photos(
        self,
        post: Post,
        report: WorkerReport,
        *,
        now: Callable[[], datetime],
        stop: Callable[[], bool],
    ) -> tuple[int, bool]:
        """Download the post's pending photos, each committed on its own (in sessions of
        their own: the claim's row lock stays held meanwhile). Returns (photos still
        pending, whether each of their failures was recorded on its row)."""
        with storage.session_scope(self._sessions) as session:
            todo = [
                p for p in storage.photos_of_post(session, post.id) if p.state is PhotoState.PENDING
            ]
            if todo:
                self._near.refresh(session)
        pending = 0
        recorded = True
        if not todo:
            return pending, recorded

        def fetch(photo: Photo) -> Fetched:  # in a thread: no database session here
            return fetch_photo(
                self._downloader,
                photo.source_url,
                max_pixels=self._max_pixels,
                photos_dir=self._photos_dir,
                shared=self._shared,
            )

        # In parallel, as the poller does: the claim's row lock is held while they download.
        pool = ThreadPoolExecutor(max_workers=_DOWNLOAD_THREADS, thread_name_prefix="photo")
        try:
            futures = [pool.submit(fetch, photo) for photo in todo]
            for n, (photo, future) in enumerate(zip(todo, futures, strict=True)):
                if stop():  # the photos stored so far stay; the rest wait for the next claim
                    return pending + len(todo) - n, False
                outcome = self._record(photo, future.result(), report, now=now)
                if outcome is None:
                    recorded = False
                if outcome in (None, PhotoOutcome.RETRY_LATER):
                    pending += 1
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return pending, recorded

    def _record(
        self, photo: Photo, result: Fetched, report: WorkerReport, *, now: Callable[[], datetime]
    ) -> str | None:
        """Record one downloaded photo; its `PhotoOutcome`, or None when recording failed."""
        try:
            outcome = store_fetched(self._sessions, photo, result, self._near, now=now())
        except Exception:  # one photo's surprise (a database hiccup) never ends the worker
            logger.exception("photo %d: storing it failed; trying again later", photo.id)
            return None
        if outcome in (PhotoOutcome.STORED, PhotoOutcome.NEAR_DUPLICATE, PhotoOutcome.IDENTICAL):
            report.photos_downloaded += 1
        elif outcome == PhotoOutcome.FAILED:
            report.photos_failed += 1
        elif outcome == PhotoOutcome.RETRY_LATER:
            report.photos_retry_later += 1
        return outcome

    def run(
        self,
        *,
        should_stop: Callable[[], bool],
        poll_seconds: float,
        max_posts: int = 0,
        exit_when_idle: float = 0.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> WorkerReport:
        """Work until `should_stop()`, `max_posts` posts, or `exit_when_idle` seconds idle."""
        report = WorkerReport()
        idle_since = time.monotonic()
        while not should_stop() and not (max_posts and report.posts >= max_posts):
            if self.process_one(report, now=now, should_stop=should_stop) is not None:
                idle_since = time.monotonic()
                continue
            if exit_when_idle and time.monotonic() - idle_since >= exit_when_idle:
                break
            deadline = time.monotonic() + poll_seconds
            while time.monotonic() < deadline and not should_stop():
                time.sleep(min(0.2, poll_seconds))
        return report
