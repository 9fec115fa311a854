"""Vision workers on PostgreSQL: three `petmatch worker` processes and one `petmatch run`
scheduler over 300 posts, one worker killed with SIGKILL half way; the workers download every
photo (the scheduler only records them), every post is finished exactly once and the
scheduler's index holds exactly the database's vectors.

The processes run the real CLI with the fake segmenter/embedder swapped in (a small start-up
script below); photos and crops travel through the database (`workers.files: database`)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot import storage
from bot.cli import app
from bot.fakevk import FakeVkServer
from bot.storage import workers as worker_store
from bot.storage.records import PhotoState, PostState
from tests.bot._fake_vision import ANIMAL_COLOURS, add_groups, animal_jpeg
from tests.bot.conftest import _truncate_all

REPO = Path(__file__).resolve().parents[2]
GROUPS = tuple(range(701, 711))
POSTS = 300
NOW = datetime.now(UTC)

# The real CLI, with a fake vision stage that takes a little while per photo, so that a
# worker is killed in the middle of a post rather than between posts.
BOOT = """
import sys, time
import bot.pipeline as pipeline
from tests.bot import _fake_vision as fake

class SlowSegmenter(fake.FakeSegmenter):
    def segment(self, image):
        time.sleep(0.02)
        return super().segment(image)

pipeline.build_vision = lambda settings: pipeline.VisionModels(
    SlowSegmenter(), fake.FakeEmbedder(), fake.fake_policy()
)
from bot.cli import app
app(sys.argv[1:], prog_name="petmatch")
"""


@pytest.fixture
def pg_url(pg_migrated_url: str) -> str:
    _truncate_all(pg_migrated_url)
    return pg_migrated_url


@pytest.fixture
def engine(pg_url: str) -> Iterator[storage.SessionFactory]:
    engine = storage.open_database(pg_url)
    yield storage.session_factory(engine)
    engine.dispose()


def _env(vk: FakeVkServer, url: str, var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETMATCH_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "PETMATCH_DATABASE_URL": url,
            "PETMATCH_VAR_DIR": str(var_dir),
            "PETMATCH_VK__API_URL": vk.api_url,
            "PETMATCH_VK__TOKEN": vk.token,
            "PETMATCH_VK__PHOTO_HOSTS": '["127.0.0.1"]',
            "PETMATCH_VK__RATE_LIMIT_PER_SECOND": "1000",
            "PETMATCH_POLLING__INTERVAL_MINUTES": "600",
            "PETMATCH_POLLING__PROCESS_INTERVAL_SECONDS": "0.5",
            "PETMATCH_POLLING__PROCESS_BATCH": "400",
            "PETMATCH_WORKERS__ENABLED": "true",
            "PETMATCH_WORKERS__FILES": "database",
            "PETMATCH_WORKERS__POLL_SECONDS": "0.2",
            "PETMATCH_LOG_LEVEL": "INFO",
        }
    )
    return env


def _start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-c", BOOT, *args], env=env, stdout=handle, stderr=subprocess.STDOUT
        )


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _runs(sessions: storage.SessionFactory) -> dict[int, int]:
    with storage.session_scope(sessions) as session:
        return worker_store.count_vision_runs(session)


def _states(sessions: storage.SessionFactory) -> dict[str, int]:
    from bot.storage._schema import PostRow

    with storage.session_scope(sessions) as session:
        states = list(session.scalars(select(PostRow.state)))
    return {str(s): states.count(s) for s in set(states)}


@pytest.mark.postgres
@pytest.mark.slow
def test_three_workers_and_a_scheduler_finish_every_post_once(
    fake_vk: FakeVkServer, pg_url: str, engine: storage.SessionFactory, tmp_path: Path
) -> None:
    add_groups(fake_vk, engine, dict.fromkeys(GROUPS, "Москва"), now=NOW, comments=False)
    names = sorted(ANIMAL_COLOURS)
    for n in range(POSTS):
        text = "Пропала собака, помогите найти" if n % 2 else "Найдена собака, ищем хозяев"
        photo = animal_jpeg(names[n % len(names)], size=(64 + n % 40, 48 + n // 40))
        fake_vk.add_post(GROUPS[n % len(GROUPS)], text=text, photos=[photo])
    env = _env(fake_vk, pg_url, tmp_path / "var")
    scheduler = _start(env, tmp_path / "run.log", "run")
    workers = [
        _start(env, tmp_path / f"worker{i}.log", "worker", "--name", f"w{i}") for i in range(3)
    ]
    try:
        _wait_for(lambda: sum(_runs(engine).values()) >= POSTS // 2, 60, "half of the posts")
        workers[0].send_signal(signal.SIGKILL)
        assert workers[0].wait(timeout=10) == -signal.SIGKILL
        _wait_for(
            lambda: _states(engine).get(PostState.DONE.value, 0) == POSTS, 60, "every post done"
        )
    finally:
        for process in (scheduler, *workers[1:]):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (scheduler, *workers):
            process.wait(timeout=30)
    logs = {p.name: p.read_text(errors="replace") for p in tmp_path.glob("*.log")}
    assert scheduler.returncode == 0, logs["run.log"][-3000:]

    runs = _runs(engine)
    assert len(runs) == POSTS and set(runs.values()) == {1}, "a post finished twice or never"
    # The workers downloaded every photo; the scheduler only recorded their URLs.
    assert ", 0 photos stored" in logs["run.log"] and "photos stored" in logs["run.log"]
    assert fake_vk.calls["photo"] >= POSTS
    downloaded = [_downloaded(logs[f"worker{i}.log"]) for i in (1, 2)]
    assert all(downloaded), logs["worker1.log"][-2000:]
    with storage.session_scope(engine) as session:
        from bot.storage._schema import PhotoRow

        photos = list(session.execute(select(PhotoRow.state, PhotoRow.file_path)))
    assert len(photos) == POSTS
    assert {state for state, _ in photos} == {PhotoState.STORED}
    assert all(path.startswith("db:photos/") for _, path in photos)
    with storage.session_scope(engine) as session:
        from bot.storage._worker_schema import VisionRunRow

        by_worker = {w: 0 for w in ("w0", "w1", "w2")}
        for worker in session.scalars(select(VisionRunRow.worker)):
            by_worker[worker] += 1
    assert by_worker["w1"] and by_worker["w2"], by_worker  # the survivors took over

    _assert_index_equals_database(engine, tmp_path / "var" / "index")


def _downloaded(log: str) -> int:
    """Photos downloaded, from the report a worker prints when it stops."""
    match = re.search(r"(\d+) photos downloaded", log)
    assert match is not None, log[-2000:]
    return int(match.group(1))


def _assert_index_equals_database(sessions: storage.SessionFactory, index_root: Path) -> None:
    from bot.storage import pipeline as store
    from index import FaissIndex

    (directory,) = [p for p in index_root.iterdir() if p.is_dir()]
    index = FaissIndex.load(directory)
    with storage.session_scope(sessions) as session:
        entries = list(store.index_entries(session, model_id=index.model_id))
    assert len(entries) == POSTS  # one animal per post
    assert len(index) == len(entries) and all(e.animal_id in index for e, _ in entries)
    for entry, vector in entries:
        stored = index.get_vector(entry.animal_id)
        np.testing.assert_allclose(stored, vector / np.linalg.norm(vector), atol=1e-6)


def test_worker_refuses_sqlite_in_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PETMATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "PostgreSQL" in result.output


@pytest.mark.parametrize("command", ["run", "poll"])
def test_run_and_poll_refuse_workers_on_sqlite_in_one_line(
    tmp_path: Path, monkeypatch, command: str
) -> None:
    # On SQLite no worker can ever claim a post, so a scheduler that leaves the vision stage
    # to workers would look at nothing, silently.
    monkeypatch.setenv("PETMATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("PETMATCH_WORKERS__ENABLED", "true")
    result = CliRunner().invoke(app, [command])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "PostgreSQL" in result.output
    assert not (tmp_path / "x.db").exists()  # refused before anything was created
