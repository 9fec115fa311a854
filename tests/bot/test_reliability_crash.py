"""Crash safety of the whole bot on PostgreSQL: a real `petmatch run` (real models) is killed
with SIGKILL at random points 20 times — mid-download, mid-vision, mid-index-save, between
matching and commenting — while new posts keep arriving; each restart picks up where the last
one died. In the end every post is processed exactly once, the index on disk agrees with the
database, and no comment was ever posted twice.

The fake VK runs in this process; settings reach the bot through the environment."""

from __future__ import annotations

import io
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from bot import storage
from bot.fakevk import FakeVkServer
from bot.storage import pipeline as store
from tests.bot.conftest import _pg_create_database, _pg_drop_database
from tests.bot.test_crash import kill9, output_of, petmatch, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
KILLS = 20
LOST_GROUP, FOUND_GROUP = 1001, 1002


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (skips when the server is unreachable)."""
    url = _pg_create_database()
    engine = storage.open_database(url)
    try:
        storage.upgrade_database(engine)
    finally:
        engine.dispose()
    yield url
    _pg_drop_database(url)


@pytest.fixture
def vk() -> Iterator[FakeVkServer]:
    with FakeVkServer(slow_seconds=0.6, hang_seconds=3.0) as server:
        yield server


@pytest.fixture
def sessions(pg_url: str) -> Iterator[storage.SessionFactory]:
    engine = storage.open_database(pg_url)
    yield storage.session_factory(engine)
    engine.dispose()


@pytest.fixture
def env(vk: FakeVkServer, pg_url: str, tmp_path: Path, exported_models_dir: Path) -> dict:
    values = {k: v for k, v in os.environ.items() if not k.startswith("PETMATCH_")}
    values.update(
        {
            "PETMATCH_DATABASE_URL": pg_url,
            "PETMATCH_VAR_DIR": str(tmp_path / "var"),
            "PETMATCH_MODELS_DIR": str(exported_models_dir),
            "PETMATCH_VK__API_URL": vk.api_url,
            "PETMATCH_VK__TOKEN": vk.token,
            "PETMATCH_VK__PHOTO_HOSTS": '["127.0.0.1"]',
            "PETMATCH_VK__RATE_LIMIT_PER_SECOND": "100",
            "PETMATCH_VK__BACKOFF_BASE_SECONDS": "0.01",
            "PETMATCH_POLLING__INTERVAL_MINUTES": "600",  # one poll per start
            "PETMATCH_POLLING__PROCESS_INTERVAL_SECONDS": "0.5",
            "PETMATCH_COMMENTING__QUIET_HOURS": "null",
            "PETMATCH_COMMENTING__MIN_GAP_SECONDS": "0",
            "PETMATCH_COMMENTING__TEMPLATE_FILE": str(REPO / "configs/comment_templates.yaml"),
            "PETMATCH_LOG_LEVEL": "INFO",
            "OMP_NUM_THREADS": "1",
        }
    )
    return values


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


class Scenario:
    """The demo's world (the `chelsea` cat lost in one group, found in another, plus a
    poster, a coffee cup, an "отдам" post and a "нашёлся" post), and a stream of new posts:
    more photos of the same cat, and distractors."""

    def __init__(self, vk: FakeVkServer, sessions: storage.SessionFactory, seed: int = 5):
        from skimage import data

        from bot.demo import CITY_GROUP, _seed, builtin_scenario

        self.vk = vk
        self.rng = random.Random(seed)
        self.cat = Image.fromarray(data.chelsea())
        self.other = [Image.fromarray(data.coffee()), Image.fromarray(data.rocket())]
        now = datetime.now(UTC)
        scenario = builtin_scenario()
        _seed(vk, scenario, now)
        with storage.session_scope(sessions) as session:
            for vk_id in (LOST_GROUP, FOUND_GROUP, CITY_GROUP):
                storage.upsert_group(
                    session,
                    vk_id=vk_id,
                    screen_name=f"g{vk_id}",
                    title="g",
                    now=now,
                    city="Москва",
                    comments_enabled=True,
                )
        self.posts = sum(not p.marked_as_ads for p in scenario)  # adverts are never stored

    def add_round(self, n: int) -> None:
        from bot.demo import vary_photo

        date = int(time.time()) - 3600
        kind = n % 4
        self.posts += 1
        if kind == 0:
            self.vk.add_post(
                FOUND_GROUP,
                text=f"Нашли рыжую кошку во дворе, Москва, ищем хозяев! ({n})",
                date=date,
                photos=[_jpeg(vary_photo(self.cat, self.rng), quality=80)],
            )
        elif kind == 1:
            self.vk.add_post(
                LOST_GROUP,
                text=f"Пропала собака в Москве, вот листовка ({n})",
                date=date,
                photos=[_jpeg(vary_photo(self.rng.choice(self.other), self.rng))],
            )
        elif kind == 2:
            self.vk.add_post(
                FOUND_GROUP,
                text=f"Найдена кошка, Москва, сидит у магазина ({n})",
                date=date,
                photos=[
                    _jpeg(vary_photo(self.other[0], self.rng)),
                    _jpeg(vary_photo(self.cat, self.rng), quality=75),
                ],
            )
        else:
            self.vk.add_post(
                LOST_GROUP,
                text=f"Отдам котят в добрые руки, Москва ({n})",
                date=date,
                photos=[_jpeg(vary_photo(self.cat, self.rng))],
            )

    def expected_posts(self) -> int:
        return self.posts


# ---- invariants ----------------------------------------------------------------------------


def _no_double_comments(vk: FakeVkServer) -> None:
    comments = vk.comments
    keys = [(c["owner_id"], c["post_id"], c["guid"]) for c in comments]
    assert len(set(keys)) == len(keys), keys
    per_pair = Counter(c["guid"][:32] for c in comments)  # a 222 retry appends to the guid
    assert max(per_pair.values(), default=0) <= 1, per_pair


def _exactly_once(sessions: storage.SessionFactory) -> dict[str, int]:
    """Each post has one label; each photo of a lost/found post one segmentation, whose
    animal count is the number of animal rows; each animal one embedding per model."""
    from bot.storage._pipeline_schema import (
        AnimalRow,
        EmbeddingRow,
        PostLabelRow,
        SegmentationRow,
    )
    from bot.storage._schema import PhotoRow, PostPhotoRow, PostRow

    with storage.session_scope(sessions) as session:
        posts = session.scalar(select(func.count()).select_from(PostRow)) or 0
        labels = session.scalar(select(func.count()).select_from(PostLabelRow)) or 0
        segmented = {
            photo: count
            for photo, count in session.execute(
                select(SegmentationRow.photo_id, SegmentationRow.animals)
            )
        }
        animals = Counter(session.scalars(select(AnimalRow.photo_id)))
        embeddings = Counter(
            (animal, model)
            for animal, model in session.execute(
                select(EmbeddingRow.animal_id, EmbeddingRow.model_id)
            )
        )
        animal_ids = set(session.scalars(select(AnimalRow.id)))
        vision_photos = set(
            session.scalars(
                select(PhotoRow.id)
                .join(PostPhotoRow, PostPhotoRow.photo_id == PhotoRow.id)
                .join(PostLabelRow, PostLabelRow.post_id == PostPhotoRow.post_id)
                .join(PostRow, PostRow.id == PostPhotoRow.post_id)
                .where(
                    PhotoRow.state == "stored",
                    PostLabelRow.kind.in_(("lost", "found")),
                    PostRow.stage.in_(("vision", "indexed", "matched", "done")),
                )
            )
        )
    assert labels <= posts
    for photo_id, count in segmented.items():
        assert animals.get(photo_id, 0) == count, (photo_id, count, animals.get(photo_id))
    assert set(animals) <= set(segmented)
    assert vision_photos <= set(segmented), vision_photos - set(segmented)
    assert max(embeddings.values(), default=1) == 1
    assert {a for a, _ in embeddings} <= animal_ids
    return {
        "posts": posts,
        "labels": labels,
        "segmentations": len(segmented),
        "animals": sum(animals.values()),
        "embeddings": sum(embeddings.values()),
    }


def _finished(sessions: storage.SessionFactory, expected_posts: int) -> bool:
    with storage.session_scope(sessions) as session:
        if storage.count_posts(session) != expected_posts:
            return False
        if storage.pending_posts(session, limit=1):
            return False
        if storage.count_photos(session, storage.PhotoState.PENDING):
            return False
        return not store.unfinished_comments(session)


def _index_agrees(sessions: storage.SessionFactory, index_dir: Path) -> int:
    from index import FaissIndex

    (manifest_path,) = index_dir.rglob("manifest.json")
    manifest = FaissIndex.read_manifest(manifest_path.parent)
    index = FaissIndex.load(manifest_path.parent, model_id=manifest.model_id, dim=manifest.dim)
    with storage.session_scope(sessions) as session:
        entries = list(store.index_entries(session, model_id=manifest.model_id))
    assert len(index) == len(entries)
    for entry, vector in entries:
        assert entry.animal_id in index
        np.testing.assert_allclose(index.get_vector(entry.animal_id), vector, atol=1e-5)
    return len(entries)


# ---- the test ------------------------------------------------------------------------------


def test_kill_9_twenty_times_processes_every_post_once_and_never_comments_twice(
    vk: FakeVkServer, env: dict, sessions: storage.SessionFactory, tmp_path: Path
) -> None:
    scenario = Scenario(vk, sessions)
    rng = random.Random(20261123)
    kills: list[tuple[str, float, dict[str, int]]] = []
    for n in range(KILLS):
        scenario.add_round(n)
        vk.clear_faults()
        mode = rng.choice(["plain", "slow-photos", "slow-comments", "slow-walls"])
        if mode == "slow-photos":
            vk.inject_fault("photo", "slow", times=None)
        elif mode == "slow-comments":
            vk.inject_fault("wall.createComment", "slow", times=None)
        elif mode == "slow-walls":
            vk.inject_fault("execute", "slow", times=None)
        delay = rng.uniform(0.5, 6.0)
        run = petmatch(env, "run")
        time.sleep(delay)
        assert run.poll() is None, output_of(run)  # it was still running when killed
        kill9(run)
        _no_double_comments(vk)
        kills.append((mode, round(delay, 2), _exactly_once(sessions)))

    # The last run goes uninterrupted until everything is done, then stops cleanly.
    vk.clear_faults()
    polls_before = vk.calls["execute"]
    run = petmatch(env, "run")
    try:
        # Up and running (it has polled) before we judge "finished" and send SIGTERM: a
        # signal before the interpreter has even loaded petmatch is the OS's default kill.
        wait_for(lambda: vk.calls["execute"] > polls_before, timeout=60)
        wait_for(lambda: _finished(sessions, scenario.expected_posts()), timeout=120)
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
    output = output_of(run)
    assert run.returncode == 0, output
    assert b"Traceback" not in output

    counts = _exactly_once(sessions)
    assert counts["posts"] == counts["labels"] == scenario.expected_posts(), (counts, kills)
    assert counts["embeddings"] == counts["animals"] > 0
    with storage.session_scope(sessions) as session:
        from bot.storage._schema import PostRow

        states = Counter(session.scalars(select(PostRow.state)))
        comments = store.list_comments(session, limit=10_000)
        matches = store.list_matches(session, accepted_only=True, limit=10_000)
    assert set(states) <= {"done", "skipped"}, states
    assert _index_agrees(sessions, Path(env["PETMATCH_VAR_DIR"]) / "index") > 0

    _no_double_comments(vk)
    posted = vk.comments
    assert posted, "the cat's lost and found posts should have been matched at least once"
    # one comment row per accepted pair, and every posted comment is one of them
    assert len({c.match_id for c in comments}) == len(comments) <= len(matches)
    assert {c["guid"][:32] for c in posted} <= {c.guid[:32] for c in comments}
    assert {c.state for c in comments} <= {
        store.CommentState.POSTED,
        store.CommentState.SKIPPED,
        store.CommentState.DEFERRED,
    }
    # no comment is pending at the end and VK holds each posted one exactly once
    assert len(posted) == sum(c.state is store.CommentState.POSTED for c in comments)
    print(f"\nkills (mode, delay s, counts): {kills}\nfinal: {counts}, comments {len(posted)}")
