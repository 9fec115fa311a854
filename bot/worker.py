"""`petmatch worker`: the vision stage (segment, embed) of posts claimed from PostgreSQL.

Any number of workers, on any machines that reach the same database, take posts whose text
stage is done and whose photos are downloaded with `SELECT … FOR UPDATE SKIP LOCKED`, and hold
that row lock while they work: two workers never hold the same post, and a worker that dies
mid-post drops its connection and with it the lock, so the post is claimed again (what it had
already segmented or embedded is reused). The post's move to the `vision` stage and the
`vision_runs` row are committed in the claiming transaction, so a post is finished once.
The scheduler of `petmatch run` (with `workers.enabled`) indexes, matches and comments.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot import storage
from bot.pipeline import CouldNotLookError, Pipeline, Stage
from bot.storage import workers as worker_store
from bot.storage.records import PostState

__all__ = ["VisionWorker", "WorkerReport", "default_worker_name"]

logger = logging.getLogger("petmatch.worker")


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class WorkerReport:
    posts: int = 0
    failed: int = 0
    retry_later: int = 0  # a local error: the post is looked at again later
    photos_segmented: int = 0
    animals: int = 0


class VisionWorker:
    """Claims posts one at a time and runs the pipeline's vision stage on them."""

    def __init__(self, pipeline: Pipeline, sessions: storage.SessionFactory, name: str) -> None:
        self._pipeline = pipeline
        self._sessions = sessions
        self.name = name

    def process_one(self, report: WorkerReport, *, now: Callable[[], datetime]) -> int | None:
        """Claim and finish one post; its id, or None when there is nothing to claim."""
        session = self._sessions()
        try:
            post = worker_store.claim_post_for_vision(session, now=now())
            if post is None:
                session.rollback()
                return None
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
            if self.process_one(report, now=now) is not None:
                idle_since = time.monotonic()
                continue
            if exit_when_idle and time.monotonic() - idle_since >= exit_when_idle:
                break
            deadline = time.monotonic() + poll_seconds
            while time.monotonic() < deadline and not should_stop():
                time.sleep(min(0.2, poll_seconds))
        return report
