"""Vision workers download the photos themselves: with `workers.enabled` the poll of
`petmatch run` only records posts and their photo URLs, and a worker that claims a post
downloads its pending photos from the fake VK's photo host with the single-process checks
(limits, deadlines, retries), stores them through the file store, then segments and embeds.
A failing photo is handled as the poll cycle handles it. On the real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import storage
from bot.config import Settings
from bot.downloads import MAX_PHOTO_ATTEMPTS, Fetched, PhotoOutcome, fetch_photo, store_fetched
from bot.fakevk import FakeVkServer
from bot.files import DB_PREFIX, DatabaseFiles
from bot.photos import NearDuplicateIndex
from bot.pipeline import Pipeline, Stage
from bot.polling import poll_cycle
from bot.storage import workers as worker_store
from bot.storage.records import PhotoState, PostState
from bot.vk.gateway import PhotoDownloader
from bot.worker import VisionWorker, WorkerReport
from tests.bot._fake_vision import add_groups, animal_jpeg, fake_vision, pipeline_settings
from tests.bot.conftest import _truncate_all
from tests.bot.fakevk_fixtures import make_vk_settings, open_gateway

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
GROUP = 901


@pytest.fixture
def pg(pg_migrated_url: str) -> Iterator[storage.SessionFactory]:
    _truncate_all(pg_migrated_url)
    engine = storage.open_database(pg_migrated_url)
    yield storage.session_factory(engine)
    engine.dispose()


def _settings(vk: FakeVkServer, url: str, var_dir: Path, files: str = "database", **vk_over):
    base = pipeline_settings(vk, url, var_dir)
    return base.model_copy(
        update={
            "vk": make_vk_settings(vk, **vk_over),
            "workers": base.workers.model_copy(update={"enabled": True, "files": files}),
        }
    )


class World:
    """The fake VK, the database, a scheduler's poll and text stage, and workers."""

    def __init__(self, vk: FakeVkServer, sessions: storage.SessionFactory, settings: Settings):
        self.vk, self.sessions, self.settings = vk, sessions, settings
        self.vision = fake_vision()
        add_groups(vk, sessions, {GROUP: "Москва"}, now=NOW)

    def post(self, *photos: bytes, text: str = "Пропала собака в Москве, рыжая") -> int:
        return self.vk.add_post(
            GROUP, text=text, date=int((NOW - timedelta(hours=1)).timestamp()), photos=list(photos)
        )

    def schedule(self, now: datetime = NOW) -> None:
        """What `petmatch run` does with workers: poll (no downloads) and the text stage."""
        with open_gateway(self.settings.vk) as gateway:
            report = poll_cycle(self.sessions, gateway, self.settings, now=now)
            assert report.photos_stored == report.photos_failed == report.photos_retry_later == 0
            Pipeline(self.settings, self.sessions, gateway, vision=self.vision).process_pending(
                now=now
            )

    def worker(self, name: str = "w1", settings: Settings | None = None) -> VisionWorker:
        settings = settings or self.settings
        pipeline = Pipeline(settings, self.sessions, None, vision=self.vision)
        return VisionWorker(pipeline, self.sessions, name, downloader=PhotoDownloader(settings.vk))

    def work(self, worker: VisionWorker, now: datetime = NOW) -> WorkerReport:
        report = WorkerReport()
        while worker.process_one(report, now=lambda: now) is not None:
            pass
        return report

    def db_post(self, post_id: int) -> storage.Post:
        with storage.session_scope(self.sessions) as session:
            post = storage.get_post(session, -GROUP, post_id)
        assert post is not None
        return post

    def photos(self, post_id: int) -> list[storage.Photo]:
        with storage.session_scope(self.sessions) as session:
            return storage.photos_of_post(session, self.db_post(post_id).id)

    def runs(self) -> dict[int, int]:
        with storage.session_scope(self.sessions) as session:
            return worker_store.count_vision_runs(session)


@pytest.fixture
def world(fake_vk: FakeVkServer, pg: storage.SessionFactory, pg_migrated_url, tmp_path):
    return World(fake_vk, pg, _settings(fake_vk, pg_migrated_url, tmp_path / "var"))


@pytest.mark.parametrize("files", ["database", "local"])
def test_workers_download_the_photos_the_scheduler_only_recorded(
    fake_vk: FakeVkServer, pg, pg_migrated_url, tmp_path: Path, files: str
) -> None:
    world = World(fake_vk, pg, _settings(fake_vk, pg_migrated_url, tmp_path / "var", files))
    first = world.post(animal_jpeg("ryzhik"), animal_jpeg("sharik"))
    second = world.post(animal_jpeg("murka"), text="Нашли кошку в Москве, ищем хозяев")
    world.schedule()
    assert fake_vk.calls["photo"] == 0  # the scheduler downloads nothing
    assert {p.state for n in (first, second) for p in world.photos(n)} == {PhotoState.PENDING}
    assert world.db_post(first).stage == worker_store.VISION_READY_STAGE

    report = world.work(world.worker())
    assert report.posts == 2 and report.photos_downloaded == 3 and report.animals == 3
    assert fake_vk.calls["photo"] == 3
    for n in (first, second):
        assert world.db_post(n).stage == Stage.VISION
        for photo in world.photos(n):
            assert photo.state is PhotoState.STORED and photo.sha256
            assert photo.file_path is not None
            if files == "database":
                assert str(photo.file_path).startswith(DB_PREFIX + "photos/")
            else:
                assert Path(photo.file_path).is_file()
                assert Path(photo.file_path).is_relative_to(world.settings.photos_dir)
    assert set(world.runs().values()) == {1}

    with open_gateway(world.settings.vk) as gateway:  # the scheduler takes it from here
        Pipeline(world.settings, pg, gateway, vision=world.vision).process_pending(now=NOW)
    assert {world.db_post(n).state for n in (first, second)} == {PostState.DONE}


def test_a_near_copy_is_linked_to_the_photo_a_worker_stored_before(world: World) -> None:
    import io

    from PIL import Image

    picture = animal_jpeg("ryzhik", size=(160, 120))
    recoded = io.BytesIO()
    Image.open(io.BytesIO(picture)).resize((120, 90)).save(recoded, format="JPEG", quality=70)
    first = world.post(picture)
    world.schedule()
    world.work(world.worker("w1"))
    second = world.post(recoded.getvalue(), text="Пропала собака в Москве, рыжая, помогите")
    world.schedule()
    world.work(world.worker("w2"))  # another worker: it learns the first photo from the database
    (original,), (copy,) = world.photos(first), world.photos(second)
    assert copy.id != original.id and copy.sha256 != original.sha256
    assert copy.duplicate_of == original.id


def test_a_photo_that_fails_then_answers_is_stored_in_the_same_claim(world: World) -> None:
    post = world.post(animal_jpeg("ryzhik"))
    world.schedule()
    world.vk.inject_fault("photo", "http500", times=2)  # the downloader retries with backoff
    report = world.work(world.worker())
    assert report.posts == 1 and report.photos_downloaded == 1 and report.photos_retry_later == 0
    (photo,) = world.photos(post)
    assert photo.state is PhotoState.STORED and photo.attempts == 1
    assert world.vk.calls["photo"] == 3


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("corrupt", "not a decodable image"), ("404", "http_404"), ("huge", "too_large")],
)
def test_a_bad_photo_is_recorded_and_the_post_goes_on_without_it(
    world: World, fault: str, reason: str
) -> None:
    post = world.post(animal_jpeg("ryzhik"), animal_jpeg("sharik", shift=4))
    world.schedule()
    world.vk.inject_fault(world.vk.photo_urls(GROUP, post)[0], fault, times=None)
    report = world.work(world.worker())
    assert report.posts == 1 and report.photos_failed == 1 and report.photos_downloaded == 1
    bad, good = world.photos(post)
    assert bad.state is PhotoState.FAILED and reason in (bad.error or "")
    assert good.state is PhotoState.STORED
    assert world.db_post(post).stage == Stage.VISION and report.animals == 1


def test_a_photo_that_times_out_holds_its_post_back_until_it_is_due_again(
    fake_vk: FakeVkServer, pg, pg_migrated_url, tmp_path: Path
) -> None:
    # One try per claim (no in-call retries) keeps the hanging photo's cost to one timeout.
    settings = _settings(fake_vk, pg_migrated_url, tmp_path / "var", max_retries=0)
    world = World(fake_vk, pg, settings)
    slow = world.post(animal_jpeg("ryzhik"), animal_jpeg("sharik", shift=4))
    other = world.post(animal_jpeg("murka"), text="Нашли кошку в Москве, ищем хозяев")
    world.schedule()
    fake_vk.inject_fault(fake_vk.photo_urls(GROUP, slow)[0], "timeout", times=None)
    worker = world.worker()

    report = world.work(worker)
    assert report.waiting == 1 and report.photos_retry_later == 1 and report.posts == 1
    hanging, good = world.photos(slow)
    assert hanging.state is PhotoState.PENDING and hanging.attempts == 1
    assert "timeout" in (hanging.error or "") and good.state is PhotoState.STORED
    assert world.db_post(slow).stage == worker_store.VISION_READY_STAGE
    assert world.db_post(other).stage == Stage.VISION  # the other post never waited

    interval = timedelta(minutes=settings.polling.interval_minutes)
    before = fake_vk.calls["photo"]
    assert world.work(worker, NOW + interval / 2).posts == 0  # not due yet: not even tried
    assert fake_vk.calls["photo"] == before
    fake_vk.clear_faults()
    later = world.work(worker, NOW + interval + timedelta(seconds=1))
    assert later.posts == 1 and later.photos_downloaded == 1
    assert [p.state for p in world.photos(slow)] == [PhotoState.STORED] * 2
    assert world.db_post(slow).stage == Stage.VISION
    assert set(world.runs().values()) == {1}


def test_a_photo_that_keeps_failing_is_given_up_and_the_post_goes_on(world: World) -> None:
    post = world.post(animal_jpeg("ryzhik"), animal_jpeg("sharik", shift=4))
    world.schedule()
    world.vk.inject_fault(world.vk.photo_urls(GROUP, post)[0], "http500", times=None)
    worker = world.worker()
    interval = timedelta(minutes=world.settings.polling.interval_minutes, seconds=1)
    for attempt in range(1, MAX_PHOTO_ATTEMPTS):
        report = world.work(worker, NOW + attempt * interval)
        assert report.waiting == 1 and report.posts == 0
        assert world.photos(post)[0].attempts == attempt
    last = world.work(worker, NOW + MAX_PHOTO_ATTEMPTS * interval)
    assert last.posts == 1 and last.photos_failed == 1
    failed, stored = world.photos(post)
    assert failed.state is PhotoState.FAILED and failed.attempts == MAX_PHOTO_ATTEMPTS
    assert stored.state is PhotoState.STORED and world.db_post(post).stage == Stage.VISION


def test_a_trickling_photo_ends_at_the_photo_deadline(
    fake_vk: FakeVkServer, pg, pg_migrated_url, tmp_path: Path
) -> None:
    fake_vk.trickle_seconds = 0.05
    settings = _settings(
        fake_vk, pg_migrated_url, tmp_path / "var", max_retries=0, photo_deadline_seconds=0.6
    )
    world = World(fake_vk, pg, settings)
    post = world.post(animal_jpeg("ryzhik"))
    world.schedule()
    fake_vk.inject_fault("photo", "trickle", times=None)
    report = world.work(world.worker())
    assert report.waiting == 1 and report.photos_retry_later == 1
    (photo,) = world.photos(post)
    assert photo.state is PhotoState.PENDING and "deadline" in (photo.error or "")


class _Killed(BaseException):
    """Stands for SIGKILL inside one process: nothing after it runs, nothing is caught."""


def test_a_worker_killed_mid_download_leaves_the_post_and_no_duplicate(
    world: World, monkeypatch
) -> None:
    post = world.post(animal_jpeg("ryzhik"), animal_jpeg("sharik", shift=4))
    world.schedule()
    import bot.worker as worker_module

    real_store = worker_module.store_fetched
    stored: list[int] = []

    def store_then_die(sessions, photo, result, near, *, now):
        if stored:  # the second photo's file is written, its row not yet
            raise _Killed
        stored.append(photo.id)
        return real_store(sessions, photo, result, near, now=now)

    monkeypatch.setattr(worker_module, "store_fetched", store_then_die)
    with pytest.raises(_Killed):
        world.worker("dies").process_one(WorkerReport(), now=lambda: NOW)
    monkeypatch.setattr(worker_module, "store_fetched", real_store)
    assert [p.state for p in world.photos(post)] == [PhotoState.STORED, PhotoState.PENDING]
    assert world.runs() == {}

    report = world.work(world.worker("survivor"))  # the lock went with the dead session
    assert report.posts == 1 and report.photos_downloaded == 1  # only the missing one
    assert world.vk.calls["photo"] == 3  # the killed worker's second download is done again
    assert [p.state for p in world.photos(post)] == [PhotoState.STORED] * 2
    with storage.session_scope(world.sessions) as session:
        from bot.storage._schema import PhotoRow
        from bot.storage._worker_schema import StoredFileRow

        files = session.scalar(
            select(func.count())
            .select_from(StoredFileRow)
            .where(StoredFileRow.name.like("photos/%"))
        )
        photos = session.scalar(select(func.count()).select_from(PhotoRow))
    assert files == 2 and photos == 2  # the re-downloaded file overwrote its twin
    assert set(world.runs().values()) == {1}


def test_two_workers_storing_the_same_bytes_at_once_keep_one_photo(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Two posts show the same picture under two VK photo ids; the workers that claimed them
    store it at the same moment: the unique sha256 makes the second merge into the first."""
    picture = animal_jpeg("ryzhik")
    a = world.post(picture)
    b = world.post(picture, text="Пропала собака в Москве, рыжая, помогите")
    world.schedule()
    (photo_a,), (photo_b,) = world.photos(a), world.photos(b)
    assert photo_a.id != photo_b.id
    with PhotoDownloader(world.settings.vk) as downloader:
        shared = DatabaseFiles(world.sessions)
        fetched = [
            fetch_photo(
                downloader,
                p.source_url,
                max_pixels=world.settings.vk.max_photo_pixels,
                photos_dir=world.settings.photos_dir,
                shared=shared,
            )
            for p in (photo_a, photo_b)
        ]
    assert all(isinstance(f, Fetched) and f.error is None for f in fetched)

    # Worker A has recorded its photo but not committed yet when worker B records its own.
    holder = world.sessions()
    storage.record_photo_stored(
        holder,
        photo_a.id,
        sha256=fetched[0].content.sha256,
        phash=fetched[0].content.phash,
        width=1,
        height=1,
        size=fetched[0].content.size,
        file_path=fetched[0].path,
        now=NOW,
    )
    outcome: list[str] = []
    caplog.set_level("INFO", logger="petmatch.bot.downloads")
    second = threading.Thread(
        target=lambda: outcome.append(
            store_fetched(world.sessions, photo_b, fetched[1], NearDuplicateIndex(), now=NOW)
        )
    )
    second.start()
    second.join(timeout=1.0)
    assert second.is_alive()  # waiting on A's uncommitted sha256
    holder.commit()
    holder.close()
    second.join(timeout=10)
    assert outcome == [PhotoOutcome.IDENTICAL]
    assert "the same bytes were stored meanwhile" in caplog.text  # the collision, then a merge
    assert world.photos(b)[0].id == photo_a.id  # B's post now shows A's photo
    with storage.session_scope(world.sessions) as session:
        assert storage.get_photo(session, photo_b.id).state is PhotoState.MERGED


def test_two_workers_putting_the_same_file_at_once_both_succeed(pg) -> None:
    # A post and its repost claimed by two workers at once store the same photo name; the
    # second write must not fail on the name (it used to read, then insert, and collide).
    files = DatabaseFiles(pg)
    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def put() -> None:
        try:
            barrier.wait()
            results.append(files.put("photos/ab/same.jpg", b"\xff\xd8same"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == [DB_PREFIX + "photos/ab/same.jpg"] * 2
    with storage.session_scope(pg) as session:
        assert worker_store.read_stored_file(session, "photos/ab/same.jpg") == b"\xff\xd8same"
        worker_store.put_stored_file(session, "photos/ab/same.jpg", b"new", now=datetime.now(UTC))
    with storage.session_scope(pg) as session:
        assert worker_store.read_stored_file(session, "photos/ab/same.jpg") == b"new"


def test_recording_a_photo_gives_up_on_a_held_row_instead_of_waiting_forever(
    world: World, monkeypatch
) -> None:
    # A wait that spans a worker's two connections is a deadlock PostgreSQL cannot see; a
    # bounded lock wait turns it into an error the worker counts as "try again later".
    import bot.downloads as downloads
    from bot.storage._schema import PhotoRow

    monkeypatch.setattr(downloads, "LOCK_WAIT_SECONDS", 0.3)
    post_id = world.post(animal_jpeg("ryzhik"))
    world.schedule()
    (photo,) = world.photos(post_id)
    holder = world.sessions()
    try:
        holder.execute(select(PhotoRow.id).where(PhotoRow.id == photo.id).with_for_update())
        fetched = Fetched(error=OSError("disk full"))
        with pytest.raises(Exception, match="lock timeout"):
            store_fetched(world.sessions, photo, fetched, NearDuplicateIndex(), now=NOW)
    finally:
        holder.rollback()
        holder.close()
    assert store_fetched(world.sessions, photo, fetched, NearDuplicateIndex(), now=NOW) == (
        PhotoOutcome.RETRY_LATER
    )
