"""Crash safety: a real `petmatch run` process is killed with SIGKILL mid-poll and
mid-download, restarted, and every post and photo ends up stored exactly once; SIGTERM ends
a run cleanly. The fake VK runs in this process; settings go through the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from bot import storage
from bot.fakevk import FakeVkServer
from tests.bot._images import jpeg

pytestmark = pytest.mark.slow

GROUPS = (1, 2, 3)
POSTS_PER_GROUP = 4
PHOTOS_PER_POST = 2
TOTAL_POSTS = len(GROUPS) * POSTS_PER_GROUP
TOTAL_PHOTOS = TOTAL_POSTS * PHOTOS_PER_POST


@pytest.fixture
def slow_vk() -> Iterator[FakeVkServer]:
    with FakeVkServer(slow_seconds=0.4, hang_seconds=3.0) as server:
        yield server


@pytest.fixture
def env(
    slow_vk: FakeVkServer, database_url: str, tmp_path: Path, exported_models_dir: Path
) -> dict[str, str]:
    values = {
        k: v for k, v in os.environ.items() if not k.startswith("PETMATCH_")
    }
    values.update(
        {
            "PETMATCH_DATABASE_URL": database_url,
            "PETMATCH_VAR_DIR": str(tmp_path / "var"),
            # `run` stops at once without the models it needs
            "PETMATCH_MODELS_DIR": str(exported_models_dir),
            "PETMATCH_VK__API_URL": slow_vk.api_url,
            "PETMATCH_VK__TOKEN": slow_vk.token,
            "PETMATCH_VK__PHOTO_HOSTS": '["127.0.0.1"]',
            "PETMATCH_VK__RATE_LIMIT_PER_SECOND": "100",
            "PETMATCH_POLLING__INTERVAL_MINUTES": "600",
            "PETMATCH_LOG_LEVEL": "INFO",
        }
    )
    return values


@pytest.fixture
def world(slow_vk: FakeVkServer, database_url: str) -> Iterator[storage.SessionFactory]:
    seed = 0
    engine = storage.open_database(database_url)
    with storage.session_scope(engine) as session:
        for gid in GROUPS:
            slow_vk.add_group(gid, f"g{gid}", f"Группа {gid}")
            storage.upsert_group(
                session, vk_id=gid, screen_name=f"g{gid}", title="g",
                now=datetime.now(UTC),
            )
            for _ in range(POSTS_PER_GROUP):
                photos = [jpeg(seed + i) for i in range(PHOTOS_PER_POST)]
                seed += PHOTOS_PER_POST
                slow_vk.add_post(gid, text="Пропала собака", photos=photos)
    yield storage.session_factory(engine)
    engine.dispose()


def petmatch(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """Start the installed `petmatch` console script; its output goes to a log file (a pipe
    nobody reads could fill up and stall it)."""
    log = Path(env["PETMATCH_VAR_DIR"]).parent / f"petmatch-{time.monotonic_ns()}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [_petmatch(), *args], env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    process.log_path = log  # type: ignore[attr-defined]
    return process


def output_of(process: subprocess.Popen[bytes]) -> bytes:
    return process.log_path.read_bytes()  # type: ignore[attr-defined]


def _petmatch() -> str:
    return str(Path(sys.executable).with_name("petmatch"))


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the process to get there")
        time.sleep(0.05)


def counts(sessions: storage.SessionFactory) -> dict[str, int]:
    from bot.storage._schema import PostPhotoRow, PostRow

    with storage.session_scope(sessions) as session:
        return {
            "posts": session.scalar(select(func.count()).select_from(PostRow)) or 0,
            "links": session.scalar(select(func.count()).select_from(PostPhotoRow)) or 0,
            "stored": storage.count_photos(session, storage.PhotoState.STORED),
            "pending": storage.count_photos(session, storage.PhotoState.PENDING),
            "photos": storage.count_photos(session),
        }


def kill9(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def test_kill_9_mid_poll_and_mid_download_loses_nothing_and_stores_nothing_twice(
    slow_vk: FakeVkServer, env: dict[str, str], world: storage.SessionFactory, tmp_path: Path
) -> None:
    # 1. killed while `execute` is in flight: nothing is committed, nothing is lost
    slow_vk.inject_fault("execute", "slow", times=None)
    run = petmatch(env, "run")
    wait_for(lambda: slow_vk.calls["execute"] >= 1)
    kill9(run)
    assert counts(world)["posts"] == 0
    slow_vk.clear_faults()

    # 2. killed mid-download: posts and photo rows are in, some photos are not yet
    slow_vk.inject_fault("photo", "slow", times=None)
    run = petmatch(env, "run")
    wait_for(lambda: counts(world)["stored"] >= 3)
    kill9(run)
    after_kill = counts(world)
    assert after_kill["posts"] == TOTAL_POSTS
    assert 3 <= after_kill["stored"] < TOTAL_PHOTOS
    assert after_kill["pending"] == TOTAL_PHOTOS - after_kill["stored"]
    slow_vk.clear_faults()

    # 3. a restart finishes the job, fetching only what is missing
    photo_calls = slow_vk.calls["photo"]
    execute_calls = slow_vk.calls["execute"]
    done = subprocess.run([_petmatch(), "poll"], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert slow_vk.calls["photo"] - photo_calls == after_kill["pending"]
    assert slow_vk.calls["execute"] - execute_calls == 1
    final = counts(world)
    assert final == {
        "posts": TOTAL_POSTS,
        "links": TOTAL_PHOTOS,
        "stored": TOTAL_PHOTOS,
        "pending": 0,
        "photos": TOTAL_PHOTOS,
    }
    files = [p for p in (tmp_path / "var" / "photos").rglob("*") if p.is_file()]
    assert len([p for p in files if not p.name.startswith(".tmp")]) == TOTAL_PHOTOS
    with storage.session_scope(world) as session:
        shas = session.execute(text("SELECT count(DISTINCT sha256) FROM photos")).scalar()
        groups = storage.list_groups(session)
    assert shas == TOTAL_PHOTOS
    assert all(g.cursor_post_id == POSTS_PER_GROUP for g in groups)


def test_sigterm_finishes_the_step_and_exits_cleanly(
    slow_vk: FakeVkServer, env: dict[str, str], world: storage.SessionFactory
) -> None:
    slow_vk.inject_fault("photo", "slow", times=None)
    run = petmatch(env, "run")
    wait_for(lambda: counts(world)["stored"] >= 1)
    second = subprocess.run([_petmatch(), "run"], env=env, capture_output=True, timeout=60)
    assert second.returncode != 0
    assert b"already working on this database" in second.stderr
    assert b"Traceback" not in second.stderr
    run.send_signal(signal.SIGTERM)
    run.wait(timeout=30)
    output = output_of(run)
    assert run.returncode == 0, output
    assert b"Traceback" not in output and b"stopped" in output
    after = counts(world)
    assert after["stored"] + after["pending"] == TOTAL_PHOTOS  # nothing half-written
