"""`run_scheduler`: jobs from config, the immediate poll, hooks, signals, the lock."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot import storage
from bot.config import PollingSettings, Settings, VkSettings
from bot.fakevk import FakeVkServer
from bot.polling import PollReport
from bot.scheduler import add_jobs, crontab_trigger, run_scheduler
from bot.vk.errors import TokenError
from tests.bot._images import jpeg


@pytest.fixture
def settings(database_url: str, vk_settings: VkSettings, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, vk=vk_settings, var_dir=tmp_path / "var")


def add_group(settings: Settings, fake_vk: FakeVkServer, vk_id: int = 1) -> None:
    fake_vk.add_group(vk_id, f"g{vk_id}", "Группа")
    fake_vk.add_post(vk_id, text="Пропала кошка", photos=[jpeg(vk_id)])
    engine = storage.open_database(settings.database_url)
    try:
        with storage.session_scope(engine) as session:
            storage.upsert_group(
                session, vk_id=vk_id, screen_name=f"g{vk_id}", title="Группа",
                now=storage_now(),
            )
    finally:
        engine.dispose()


def storage_now():
    from datetime import UTC, datetime

    return datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_jobs_are_built_from_config() -> None:
    settings = Settings(
        polling=PollingSettings(interval_minutes=7, reindex_cron="15 3 * * 1-5")
    )
    scheduler = BlockingScheduler()
    add_jobs(scheduler, settings, poll=lambda: None, reindex=lambda: None)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"poll", "reindex"}
    poll, reindex = jobs["poll"], jobs["reindex"]
    assert isinstance(poll.trigger, IntervalTrigger)
    assert poll.trigger.interval == timedelta(minutes=7)
    assert isinstance(reindex.trigger, CronTrigger)
    saturday = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert reindex.trigger.get_next_fire_time(None, saturday) == datetime(
        2026, 11, 23, 3, 15, tzinfo=UTC
    )  # crontab's 1-5 is Monday to Friday
    for job in (poll, reindex):
        assert job.max_instances == 1 and job.coalesce is True


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("30 4 * * *", datetime(2026, 11, 23, 5, 0), datetime(2026, 11, 24, 4, 30)),
        ("0 9 * * 0", datetime(2026, 11, 23, 0, 0), datetime(2026, 11, 29, 9, 0)),  # Sunday
        ("0 9 * * 7", datetime(2026, 11, 23, 0, 0), datetime(2026, 11, 29, 9, 0)),
        ("0 9 * * 1,3", datetime(2026, 11, 23, 10, 0), datetime(2026, 11, 25, 9, 0)),
        # crontab's */2 is Sun, Tue, Thu, Sat (APScheduler alone would say Mon, Wed, …)
        ("0 9 * * */2", datetime(2026, 11, 23, 10, 0), datetime(2026, 11, 24, 9, 0)),
        ("0 9 * * 1-5/2", datetime(2026, 11, 23, 10, 0), datetime(2026, 11, 25, 9, 0)),
    ],
)
def test_crontab_weekdays_mean_what_crontab_means(expression, after, expected) -> None:
    trigger = crontab_trigger(expression)
    fire = trigger.get_next_fire_time(None, after.replace(tzinfo=UTC))
    assert fire == expected.replace(tzinfo=UTC)


def test_run_polls_at_once_calls_hooks_and_stops_on_sigterm(
    settings: Settings, fake_vk: FakeVkServer
) -> None:
    add_group(settings, fake_vk)
    reports: list[PollReport] = []

    def hook(report: PollReport) -> None:
        reports.append(report)
        os.kill(os.getpid(), signal.SIGTERM)

    def broken_hook(report: PollReport) -> None:
        raise RuntimeError("a later stage failed")

    previous = signal.getsignal(signal.SIGTERM)
    run_scheduler(settings, after_poll=[broken_hook, hook], clock=storage_now)
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers are restored
    assert len(reports) == 1
    assert reports[0].new_posts == 1 and reports[0].photos_stored == 1
    engine = storage.open_database(settings.database_url)
    try:  # the single-instance lock was released
        with storage.instance_lock(engine, lock_dir=settings.var_dir):
            pass
    finally:
        engine.dispose()


def test_sigterm_during_start_up_ends_the_run_cleanly(
    settings: Settings, fake_vk: FakeVkServer
) -> None:
    """Regression: a SIGTERM that arrived before the scheduler started killed the process
    (exit -15) instead of ending the run."""
    add_group(settings, fake_vk)

    def stages(_sessions: object, _gateway: object) -> object:
        os.kill(os.getpid(), signal.SIGTERM)  # while `run` is still starting up
        return None

    previous = signal.getsignal(signal.SIGTERM)
    run_scheduler(settings, stages=stages, clock=storage_now)  # type: ignore[arg-type]
    assert signal.getsignal(signal.SIGTERM) is previous
    assert fake_vk.calls["execute"] == 0  # it stopped before the first poll


def test_run_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'new.db'}", var_dir=tmp_path)
    with pytest.raises(storage.DatabaseNotMigratedError, match="petmatch db upgrade"):
        run_scheduler(settings)


def test_second_run_refuses(settings: Settings, fake_vk: FakeVkServer) -> None:
    engine = storage.open_database(settings.database_url)
    try:
        with (
            storage.instance_lock(engine, lock_dir=settings.var_dir),
            pytest.raises(storage.AlreadyRunningError),
        ):
            run_scheduler(settings)
    finally:
        engine.dispose()


def test_dead_token_stops_the_run(settings: Settings, fake_vk: FakeVkServer) -> None:
    add_group(settings, fake_vk)
    fake_vk.inject_fault("execute", 5, times=None)
    with pytest.raises(TokenError, match="dead or wrong"):
        run_scheduler(settings, clock=storage_now)
