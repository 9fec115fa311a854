"""`petmatch run`: APScheduler 3 runs the poll job every `polling.interval_minutes` and the
reindex job on `polling.reindex_cron` (UTC). Jobs are built from config at start-up (no job
store), one instance at a time, missed runs coalesced; one poll runs immediately.

SIGTERM/SIGINT let the current step finish (a wall batch, a photo, a post) and then exit; the
single-instance lock is held until the running jobs have returned. The processing stages plug
in as `stages`: a `process` job works through the backlog every
`polling.process_interval_seconds` in its own thread, so slow vision never blocks polling, and
the reindex job rebuilds their index. `after_poll` hooks see each `PollReport`.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any, Protocol

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from bot import storage
from bot.config import Settings
from bot.polling import PollReport, poll_cycle
from bot.vk.errors import TokenError
from bot.vk.models import VkGateway

__all__ = ["PollHook", "Stages", "StagesFactory", "add_jobs", "crontab_trigger", "run_scheduler"]

logger = logging.getLogger("petmatch.bot.scheduler")

PollHook = Callable[[PollReport], None]
Clock = Callable[[], datetime]


class Stages(Protocol):
    """What `run` needs of the processing pipeline."""

    def process_pending(
        self, *, now: datetime, limit: int | None = None, should_stop: Callable[[], bool]
    ) -> object: ...

    def rebuild_index(self) -> object: ...

    def catch_up_index(self) -> object: ...


StagesFactory = Callable[[storage.SessionFactory, VkGateway], Stages]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _no_reindex() -> None:
    logger.info("reindex: nothing to do yet (the index stage is not installed)")


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def crontab_trigger(expression: str) -> CronTrigger:
    """A UTC CronTrigger for a standard crontab line. APScheduler 3 reads numeric weekdays
    with 0 = Monday; crontab means 0 (or 7) = Sunday, so numbers become names first."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a crontab expression has 5 fields, got {expression!r}")
    parts = []
    for part in fields[4].split(","):
        days, _, step = part.partition("/")
        if step and re.fullmatch(r"\*|\d+(-\d+)?", days) and step.isdigit():
            # a step counts from crontab's Sunday = 0: spell the days out
            first, _, last = ("0-6" if days == "*" else days).partition("-")
            numbers = range(int(first), int(last or 6) + 1, int(step))
            parts.extend(_day_name(str(n)) for n in numbers)
            continue
        days = re.sub(r"\d+", lambda m: _day_name(m.group()), days)
        parts.append(f"{days}/{step}" if step else days)
    fields[4] = ",".join(dict.fromkeys(parts))
    return CronTrigger.from_crontab(" ".join(fields), timezone=UTC)


def _day_name(number: str) -> str:
    value = int(number)
    if not 0 <= value <= 7:
        raise ValueError(f"day of week {value} is not in 0..7")
    return _DAY_NAMES[value]


def add_jobs(
    scheduler: BaseScheduler,
    settings: Settings,
    *,
    poll: Callable[[], None],
    reindex: Callable[[], None],
    process: Callable[[], None] | None = None,
    start_at: datetime | None = None,
) -> None:
    """Add the poll, reindex and (when given) process jobs built from `settings`; the poll and
    the process jobs first run at `start_at`."""
    # One instance of each job at a time; runs missed while busy are coalesced into one.
    common: dict[str, Any] = {
        "max_instances": 1,
        "coalesce": True,
        "misfire_grace_time": None,
        "replace_existing": True,
    }
    if process is not None:
        scheduler.add_job(
            process,
            IntervalTrigger(seconds=settings.polling.process_interval_seconds, timezone=UTC),
            id="process",
            name="process pending posts",
            next_run_time=start_at,
            **common,
        )
    scheduler.add_job(
        poll,
        IntervalTrigger(minutes=settings.polling.interval_minutes, timezone=UTC),
        id="poll",
        name="poll VK groups",
        next_run_time=start_at,
        **common,
    )
    scheduler.add_job(
        reindex,
        crontab_trigger(settings.polling.reindex_cron),
        id="reindex",
        name="rebuild the index",
        **common,
    )


def run_scheduler(
    settings: Settings,
    *,
    after_poll: Sequence[PollHook] = (),
    reindex: Callable[[], None] | None = None,
    stages: StagesFactory | None = None,
    gateway: VkGateway | None = None,
    clock: Clock = _utcnow,
) -> None:
    """Run until SIGTERM/SIGINT. Raises `DatabaseNotMigratedError`, `AlreadyRunningError`,
    or `TokenError` when VK says the token is dead (polling stops)."""
    # Signals are caught from the very start: a SIGTERM during start-up ends the run cleanly
    # instead of killing the process half-way.
    stop = threading.Event()
    schedulers: list[BaseScheduler] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            return
        logger.info("%s: finishing the current step, then exiting", signal.Signals(signum).name)
        stop.set()
        for scheduler in schedulers:
            if scheduler.running:
                scheduler.shutdown(wait=False)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    engine = storage.open_database(settings.database_url)
    try:
        storage.ensure_migrated(engine)
        with storage.instance_lock(engine, lock_dir=settings.var_dir):
            own_gateway = gateway is None
            if gateway is None:
                from bot.vk.credentials import open_vk_gateway

                gateway = open_vk_gateway(settings.vk)
            try:
                _run(
                    settings,
                    engine,
                    gateway,
                    after_poll,
                    reindex or _no_reindex,
                    stages,
                    clock,
                    stop,
                    schedulers,
                )
            finally:
                if own_gateway:
                    gateway.close()  # type: ignore[attr-defined]
    finally:
        engine.dispose()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(
    settings: Settings,
    engine: Engine,
    gateway: VkGateway,
    after_poll: Sequence[PollHook],
    reindex: Callable[[], None],
    stages_factory: StagesFactory | None,
    clock: Clock,
    stop: threading.Event,
    schedulers: list[BaseScheduler],
) -> None:
    sessions = storage.session_factory(engine)
    stages = stages_factory(sessions, gateway) if stages_factory is not None else None
    stages_busy = threading.Lock()  # the process and reindex jobs share the index
    scheduler = BlockingScheduler(timezone=UTC)
    busy = threading.Lock()  # held while a job runs; taken again before the lock is released
    token_failure: list[str] = []

    def stop_scheduler() -> None:
        if scheduler.running:
            scheduler.shutdown(wait=False)

    def poll_job() -> None:
        with busy:
            if stop.is_set():
                stop_scheduler()
                return
            try:
                report = poll_cycle(
                    sessions, gateway, settings, now=clock(), stop_requested=stop.is_set
                )
            except Exception:
                logger.exception("poll cycle failed; the next one runs on schedule")
                return
            if report.token_error:
                token_failure.append(report.token_error)
                logger.error("stopping: %s", report.token_error)
                stop.set()
                stop_scheduler()
                return
            for hook in after_poll:
                if stop.is_set():
                    break
                try:
                    hook(report)
                except Exception:
                    logger.exception("after-poll hook %r failed", hook)

    def reindex_job() -> None:
        with stages_busy:
            if stop.is_set():
                return
            try:
                if stages is not None:
                    stages.rebuild_index()
                else:
                    reindex()
            except Exception:
                logger.exception("reindex failed; the next one runs on schedule")

    def process_job() -> None:
        assert stages is not None
        with stages_busy:
            if stop.is_set():
                return
            try:
                stages.process_pending(
                    now=clock(), limit=settings.polling.process_batch, should_stop=stop.is_set
                )
            except Exception:
                logger.exception("processing failed; the next round runs on schedule")

    add_jobs(
        scheduler,
        settings,
        poll=poll_job,
        reindex=reindex_job,
        process=process_job if stages is not None else None,
        start_at=clock(),
    )
    schedulers.append(scheduler)
    if stop.is_set():  # a signal arrived during start-up
        logger.info("stopped before the first job")
        return
    if stages is not None:
        with stages_busy:
            try:
                stages.catch_up_index()
            except Exception:
                logger.exception("the index could not be caught up; the process job tries again")
    try:
        logger.info(
            "running: poll every %s min, reindex at '%s' (UTC)",
            settings.polling.interval_minutes,
            settings.polling.reindex_cron,
        )
        scheduler.start()
    finally:
        stop.set()
        with busy, stages_busy:  # wait for running jobs to reach a step boundary and return
            pass
        if scheduler.running:
            scheduler.shutdown(wait=True)
    logger.info("stopped")
    if token_failure:
        raise TokenError(token_failure[0])
