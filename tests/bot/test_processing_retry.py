""" "Could not look" is not "no animal": a local I/O failure during segmentation leaves the post
waiting for another try with backoff, shown in `matches list`, and `failed` with the reason
once the attempts are spent. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from bot import storage
from bot.cli import app
from bot.config import Settings
from bot.pipeline import Pipeline, VisionModels
from bot.polling import poll_cycle
from bot.storage.problems import get_post_retry, list_post_retries
from bot.storage.records import PostState
from tests.bot._fake_vision import add_groups, animal_jpeg, fake_vision, pipeline_settings

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LOST, FOUND = 801, 802


@pytest.fixture
def vision() -> VisionModels:
    return fake_vision()


@pytest.fixture
def settings(fake_vk, database_url, tmp_path) -> Settings:
    return pipeline_settings(fake_vk, database_url, tmp_path / "var")


@pytest.fixture
def world(fake_vk, sessions, settings):
    add_groups(fake_vk, sessions, {LOST: "Москва", FOUND: "Москва"}, now=NOW)
    lost = fake_vk.add_post(
        LOST,
        text="Пропала собака в Москве, рыжая",
        date=int((NOW - timedelta(hours=30)).timestamp()),
        photos=[animal_jpeg("ryzhik")],
    )
    fake_vk.add_post(
        FOUND,
        text="Нашли собаку у метро, Москва, ищем хозяев",
        date=int((NOW - timedelta(hours=2)).timestamp()),
        photos=[animal_jpeg("ryzhik", shift=6)],
    )
    return fake_vk, lost


def _break_crops_folder(settings: Settings) -> None:
    """The crops folder is briefly unusable: a file stands where it should be (this works
    for root too, unlike a permission bit)."""
    crops = settings.var_dir / "crops"
    if crops.is_dir():
        shutil.rmtree(crops)
    crops.parent.mkdir(parents=True, exist_ok=True)
    crops.write_text("not a folder")


def _mend_crops_folder(settings: Settings) -> None:
    (settings.var_dir / "crops").unlink()


def _run(settings, sessions, gateway, vision, now):
    poll_cycle(sessions, gateway, settings, now=now)
    return Pipeline(settings, sessions, gateway, vision=vision).process_pending(now=now)


def _lost_post(sessions, post_id: int) -> storage.Post:
    with storage.session_scope(sessions) as session:
        post = storage.get_post(session, -LOST, post_id)
    assert post is not None
    return post


def test_could_not_look_is_retried_with_backoff_then_the_post_goes_on(
    world, settings, sessions, gateway, vision
):
    fake, lost_id = world
    _break_crops_folder(settings)
    report = _run(settings, sessions, gateway, vision, NOW)

    lost = _lost_post(sessions, lost_id)
    assert lost.state is PostState.PROCESSING  # not `done` with "no animal found"
    assert "could not look" in (lost.error or "") and "no animal" not in (lost.error or "")
    assert len(report.retry_later) == 2 and fake.comments == []
    with storage.session_scope(sessions) as session:
        retry = get_post_retry(session, lost.id)
    assert retry is not None and retry.attempts == 1
    assert retry.next_attempt_at == NOW + timedelta(minutes=settings.processing.retry_base_minutes)

    # Before the backoff is over the post is left alone, even with the folder mended.
    _mend_crops_folder(settings)
    calls = vision.segmenter.calls
    _run(settings, sessions, gateway, vision, NOW + timedelta(minutes=1))
    assert vision.segmenter.calls == calls

    _run(settings, sessions, gateway, vision, NOW + timedelta(minutes=6))
    lost = _lost_post(sessions, lost_id)
    assert lost.state is PostState.DONE and lost.error is None
    assert len(fake.comments) == 1  # the match was found after all
    with storage.session_scope(sessions) as session:
        assert get_post_retry(session, lost.id) is None


def test_could_not_look_fails_for_good_after_the_attempts_and_shows_in_matches_list(
    world, sessions, gateway, vision, fake_vk, database_url, tmp_path
):
    settings = pipeline_settings(fake_vk, database_url, tmp_path / "var")
    settings = settings.model_copy(
        update={"processing": settings.processing.model_copy(update={"max_attempts": 2})}
    )
    _, lost_id = world
    _break_crops_folder(settings)
    _run(settings, sessions, gateway, vision, NOW)

    waiting = _cli_unlooked(database_url, tmp_path, max_attempts=2)
    assert [(r["state"], r["attempts"]) for r in waiting] == [("waiting", 1), ("waiting", 1)]
    assert all("could not look" in r["reason"] and r["next_attempt_at"] for r in waiting)

    report = _run(settings, sessions, gateway, vision, NOW + timedelta(minutes=6))
    lost = _lost_post(sessions, lost_id)
    assert lost.state is PostState.FAILED
    assert "could not look at its photos after 2 attempts" in (lost.error or "")
    assert len(report.failures) == 2
    with storage.session_scope(sessions) as session:
        assert len(list_post_retries(session)) == 2
    failed = _cli_unlooked(database_url, tmp_path, max_attempts=2)
    assert [(r["state"], r["attempts"]) for r in failed] == [("failed", 2), ("failed", 2)]


def _cli_unlooked(database_url: str, tmp_path, *, max_attempts: int) -> list[dict]:
    result = CliRunner().invoke(
        app,
        ["matches", "list", "--all", "--json"],
        env={
            "PETMATCH_DATABASE_URL": database_url,
            "PETMATCH_VAR_DIR": str(tmp_path / "var"),
            "PETMATCH_PROCESSING__MAX_ATTEMPTS": str(max_attempts),
        },
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return [line["unlooked"] for line in lines if "unlooked" in line]


def test_a_vision_worker_looks_again_later_instead_of_failing_the_post(
    world, fake_vk, database_url, tmp_path, sessions, gateway, vision
):
    """`petmatch worker` treats a local I/O error as the pipeline does: wait, then retry."""
    from bot.worker import VisionWorker, WorkerReport

    _, lost_id = world
    settings = pipeline_settings(fake_vk, database_url, tmp_path / "var").model_copy(
        update={"workers": Settings().workers.model_copy(update={"enabled": True})}
    )
    _run(settings, sessions, gateway, vision, NOW)  # text stage; vision is left to workers
    assert _lost_post(sessions, lost_id).stage == "text"
    pipeline = Pipeline(settings, sessions, None, vision=vision)
    worker = VisionWorker(pipeline, sessions, "w1", downloader=gateway)  # it downloads, too

    _break_crops_folder(settings)
    report = WorkerReport()
    while worker.process_one(report, now=lambda: NOW) is not None:
        pass
    lost = _lost_post(sessions, lost_id)
    assert report.retry_later == 2 and report.failed == 0
    assert lost.state is PostState.PROCESSING and "could not look" in (lost.error or "")
    with storage.session_scope(sessions) as session:
        retry = get_post_retry(session, lost.id)
    assert retry is not None and retry.attempts == 1

    _mend_crops_folder(settings)
    assert worker.process_one(WorkerReport(), now=lambda: NOW + timedelta(minutes=1)) is None
    later = WorkerReport()
    while worker.process_one(later, now=lambda: NOW + timedelta(minutes=6)) is not None:
        pass
    lost = _lost_post(sessions, lost_id)
    assert later.posts == 2 and later.retry_later == 0
    assert lost.stage == "vision" and lost.state is PostState.PROCESSING
    with storage.session_scope(sessions) as session:
        assert get_post_retry(session, lost.id) is None
