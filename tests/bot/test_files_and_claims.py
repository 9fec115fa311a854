"""The file store (local folder or database) and the claim that keeps workers apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import storage
from bot.files import DB_PREFIX, DatabaseFiles, LocalFiles, file_store, read_file
from bot.storage import workers as worker_store
from bot.storage.records import PostState
from bot.vk.models import WallPost

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_local_and_database_files_read_back_whatever_the_setting(sessions, tmp_path: Path):
    local = LocalFiles(tmp_path).put("crops/1_0.png", b"local bytes")
    shared = DatabaseFiles(sessions).put("crops/1_0.png", b"shared bytes")
    assert Path(local).read_bytes() == b"local bytes" and shared == DB_PREFIX + "crops/1_0.png"
    assert read_file(local, sessions) == b"local bytes"
    assert read_file(shared, sessions) == b"shared bytes"
    DatabaseFiles(sessions).put("crops/1_0.png", b"rewritten")  # a re-run after a crash
    assert read_file(shared, sessions) == b"rewritten"
    with pytest.raises(FileNotFoundError):
        read_file(DB_PREFIX + "crops/nothing.png", sessions)


def test_file_store_follows_the_setting(sessions, tmp_path: Path):
    from bot.config import Settings

    local = Settings(var_dir=tmp_path)
    shared = Settings(var_dir=tmp_path, workers={"files": "database"})
    assert isinstance(file_store(local, sessions), LocalFiles)
    assert isinstance(file_store(shared, sessions), DatabaseFiles)


def _post_waiting_for_vision(sessions, n: int) -> int:
    wall = WallPost(owner_id=-900, post_id=n, date=NOW - timedelta(hours=n), text="Пропала собака")
    with storage.session_scope(sessions) as session:
        post, _ = storage.upsert_post(session, wall, now=NOW)
        storage.set_post_state(
            session, post.id, PostState.PROCESSING, now=NOW, stage=worker_store.VISION_READY_STAGE
        )
    return post.id


@pytest.mark.postgres
def test_claims_skip_posts_another_worker_holds_and_free_them_when_it_dies(pg_sessions):
    first, second = (_post_waiting_for_vision(pg_sessions, n) for n in (2, 1))
    worker_a, worker_b, worker_c = pg_sessions(), pg_sessions(), pg_sessions()
    try:
        held = worker_store.claim_post_for_vision(worker_a)
        assert held is not None and held.id == first  # the oldest first
        other = worker_store.claim_post_for_vision(worker_b)
        assert other is not None and other.id == second
        assert worker_store.claim_post_for_vision(worker_c) is None
        worker_c.rollback()
        worker_a.rollback()  # as when a worker's connection drops: the lock goes with it
        again = worker_store.claim_post_for_vision(worker_c)
        assert again is not None and again.id == first
    finally:
        for session in (worker_a, worker_b, worker_c):
            session.close()


@pytest.fixture
def pg_sessions(pg_migrated_url: str):
    from tests.bot.conftest import _truncate_all

    _truncate_all(pg_migrated_url)
    engine = storage.open_database(pg_migrated_url)
    yield storage.session_factory(engine)
    engine.dispose()
