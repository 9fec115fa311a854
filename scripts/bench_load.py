"""Load benchmark: N groups × M posts × K photos on the fake VK, polled and processed at once.

Polling and processing run concurrently the way `petmatch run` runs them: poll cycles in one
thread, `Pipeline.process_pending(limit=…)` rounds in another, on SQLite. Posts reach the
fake VK in waves in date order (a poll cycle per wave), so polling keeps finding new posts
while the vision stages work through their backlog. Prints throughput per stage (posts/s
polled, photos/s stored, posts/s through text, vision, index, matching and comments), the
backlog over time (pending posts and photos, sampled every few seconds), and peak RSS. With
`--real-vision` the vision stage is split into segmentation (ms per photo) and embedding (ms
per post), and the end-to-end rate is also given in photos per minute; `--runs N` repeats the
whole run N times, each in a fresh process, and prints the medians.

Vision is fake by default (colour identities, as in the tests: this measures the bot, not
the models); `--real-vision` loads the real segmenter and embedder from `--models-dir` and
uses scikit-image photos. The fake VK runs in a child process, so its photos don't count
toward the bot's memory.

    .venv/bin/python scripts/bench_load.py                        # 500 × 40 posts × 2 photos
    .venv/bin/python scripts/bench_load.py --groups 50 --posts 2000 --rate 100
    .venv/bin/python scripts/bench_load.py --groups 10 --posts 100 --real-vision \\
        --models-dir var/models
    .venv/bin/python scripts/bench_load.py --groups 10 --posts 60 --real-vision --waves 1 --runs 3
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests/bot/_fake_vision when run as a script

LOST_TEXTS = (
    "Пропала собака в Москве, район {d}! Рыжая, в ошейнике, отзывается на кличку. Помогите!",
    "Потерялся кот, Москва, {d}. Выскочил в подъезд, очень пугливый. Просим репост.",
    "ПРОПАЛА КОШКА! Москва, {d}, трёхцветная, стерилизована. Вознаграждение.",
)
FOUND_TEXTS = (
    "Найдена собака у метро, Москва, {d}. Ищем хозяев, сейчас на передержке.",
    "Нашли кошку во дворе, Москва, {d}, ласковая, явно домашняя. Хозяева, отзовитесь!",
    "Найден пёс, Москва, {d}, бегал у магазина. Ищем хозяина или новый дом.",
)
OTHER_TEXTS = (
    "Отдам котят в добрые руки, Москва, {d}. К лотку приучены.",
    "Собираем корм для приюта, Москва, {d}. Спасибо всем неравнодушным!",
)
DISTRICTS = ("Марьино", "Черёмушки", "Бутово", "Митино", "Сокольники", "Хамовники")


@dataclass(frozen=True)
class LoadConfig:
    groups: int = 500
    posts: int = 20_000
    photos_per_post: int = 2
    waves: int = 4
    identities: int = 200  # distinct animals; lost and found posts share them
    process_batch: int = 200
    process_interval: float = 0.5
    sample_seconds: float = 2.0
    rate: float = 3.0  # VK API requests per second (VK allows 3)
    download_workers: int = 4
    real_vision: bool = False
    int8_segmentation: bool = False
    models_dir: Path | None = None
    in_process: bool = False  # run the fake VK in this process (tests)
    seed: int = 1


@dataclass
class StageTimer:
    posts: int = 0
    seconds: float = 0.0

    def rate(self) -> float:
        return self.posts / self.seconds if self.seconds else 0.0


@dataclass
class LoadResult:
    config: dict[str, Any]
    posts_total: int = 0
    photos_total: int = 0
    wall_seconds: float = 0.0
    poll_seconds: float = 0.0
    poll_cycles: int = 0
    posts_polled: int = 0
    photos_stored: int = 0
    photos_failed: int = 0
    process_rounds: int = 0
    stages: dict[str, StageTimer] = field(default_factory=dict)
    samples: list[dict[str, float]] = field(default_factory=list)
    rounds: list[list[tuple[int, str]]] = field(default_factory=list)  # (wave, date) handled
    first_touch: list[tuple[int, str]] = field(default_factory=list)  # (wave, date)
    final_states: dict[str, int] = field(default_factory=dict)
    rss_start: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    drained_seconds: float = 0.0

    def photos_per_minute(self) -> float:
        """Photos of the world through every stage per minute, end to end."""
        return 60 * self.photos_total / self.drained_seconds if self.drained_seconds else 0.0

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("rounds")
        data.pop("first_touch")
        data["stages"] = {k: {**asdict(v), "posts_per_s": v.rate()} for k, v in self.stages.items()}
        data["photos_per_minute"] = self.photos_per_minute()
        return data


# ---- the world ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostSpec:
    group_id: int
    date: int
    text: str
    identity: int | None  # None: no animal in the photos
    photo_seeds: tuple[int, ...]
    wave: int


def make_world(config: LoadConfig, now: datetime) -> list[list[PostSpec]]:
    """Posts in waves; dates increase wave by wave, spread over the last ten days."""
    rng = random.Random(config.seed)
    total = config.posts
    span = 10 * 24 * 3600
    start = int(now.timestamp()) - span
    waves: list[list[PostSpec]] = [[] for _ in range(config.waves)]
    seed = 0
    for n in range(total):
        wave = n * config.waves // total
        date = start + int(span * (n + 0.5) / total)
        roll = rng.random()
        texts = LOST_TEXTS if roll < 0.45 else FOUND_TEXTS if roll < 0.9 else OTHER_TEXTS
        identity = rng.randrange(config.identities) if rng.random() < 0.8 else None
        seeds = tuple(range(seed, seed + config.photos_per_post))
        seed += config.photos_per_post
        waves[wave].append(
            PostSpec(
                group_id=1 + rng.randrange(config.groups),
                date=date,
                text=rng.choice(texts).format(d=rng.choice(DISTRICTS)) + f" #{n}",
                identity=identity,
                photo_seeds=seeds,
                wave=wave,
            )
        )
    return waves


def _palette(identities: int, seed: int) -> list[tuple[int, int, int]]:
    """Colours far from grey: the fake segmenter finds an animal, the fake embedder an
    identity."""
    rng = np.random.default_rng(seed)
    colours = []
    while len(colours) < identities:
        colour = rng.integers(0, 256, size=3)
        if np.abs(colour - 128).max() >= 60:
            colours.append(tuple(int(c) for c in colour))
    return colours


def synthetic_photo(identity: int | None, seed: int, palette: list[tuple[int, int, int]]) -> bytes:
    """A small JPEG: the identity's colour with a little blocky noise (distinct bytes and
    perceptual hash per photo), or a grey poster when there is no animal."""
    rng = np.random.default_rng(seed)
    base = np.array(palette[identity] if identity is not None else (128, 128, 128), np.int16)
    noise = rng.integers(-12, 13, size=(6, 8, 3))
    blocks = np.clip(base + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(blocks).resize((96, 72), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


class RealPhotos:
    """scikit-image photos for `--real-vision`: the cat (one identity, varied) for animal
    posts, the coffee cup or the rocket otherwise."""

    def __init__(self) -> None:
        from skimage import data

        self.cat = Image.fromarray(data.chelsea())
        self.other = (Image.fromarray(data.coffee()), Image.fromarray(data.rocket()))

    def photo(self, identity: int | None, seed: int) -> bytes:
        from bot.demo import vary_photo

        rng = random.Random(seed)
        source = self.cat if identity is not None else self.other[seed % 2]
        out = io.BytesIO()
        vary_photo(source, rng).convert("RGB").save(out, format="JPEG", quality=85)
        return out.getvalue()


class World:
    """The fake VK and how posts reach it (in this process, or a child)."""

    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        if config.in_process:
            self._local = _FakeHost(config)
            self.api_url, self.token = self._local.start()
        else:
            context = mp.get_context("spawn")
            self._conn, child = context.Pipe()
            self._process = context.Process(target=_serve, args=(child, config), daemon=True)
            self._process.start()
            self.api_url, self.token = self._conn.recv()

    def add(self, posts: list[PostSpec]) -> None:
        if self.config.in_process:
            self._local.add(posts)
        else:
            self._conn.send(("add", posts))
            self._conn.recv()

    def close(self) -> None:
        if self.config.in_process:
            self._local.server.stop()
        else:
            self._conn.send(("stop", None))
            self._process.join(timeout=30)


class _FakeHost:
    def __init__(self, config: LoadConfig) -> None:
        from bot.fakevk import FakeVkServer

        self.config = config
        self.server = FakeVkServer()
        self.palette = _palette(config.identities, config.seed)
        self.real = RealPhotos() if config.real_vision else None

    def start(self) -> tuple[str, str]:
        for gid in range(1, self.config.groups + 1):
            self.server.add_group(gid, f"load{gid}", f"Load group {gid}")
        self.server.start()
        return self.server.api_url, self.server.token

    def add(self, posts: list[PostSpec]) -> None:
        for spec in posts:
            photos = [
                self.real.photo(spec.identity, s)
                if self.real is not None
                else synthetic_photo(spec.identity, s, self.palette)
                for s in spec.photo_seeds
            ]
            self.server.add_post(spec.group_id, text=spec.text, date=spec.date, photos=photos)


def _serve(conn: Any, config: LoadConfig) -> None:
    host = _FakeHost(config)
    conn.send(host.start())
    while True:
        command, payload = conn.recv()
        if command == "stop":
            break
        host.add(payload)
        conn.send("ok")
    host.server.stop()


# ---- the run --------------------------------------------------------------------------------


def _instrumented_pipeline(stages: dict[str, StageTimer], lock: threading.Lock) -> type:
    """A Pipeline that times each stage (wall-clock per post)."""
    from bot.pipeline import Pipeline

    def timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: Any, post: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(self, post, **kwargs)
            finally:
                with lock:
                    timer = stages.setdefault(name, StageTimer())
                    timer.posts += 1
                    timer.seconds += time.perf_counter() - start

        return wrapper

    names = {
        "text": "_text_stage",
        "vision": "_vision_stage",
        "index": "_index_stage",
        "matching": "_match_stage",
        "comments": "_comment_stage",
    }
    return type(
        "TimedPipeline",
        (Pipeline,),
        {attr: timed(name, getattr(Pipeline, attr)) for name, attr in names.items()},
    )


class _Timed:
    """A model whose one method is timed into `stages[name]` (calls, seconds)."""

    def __init__(
        self, model: Any, method: str, name: str, stages: dict, lock: threading.Lock
    ) -> None:
        self._model, self._method, self._name = model, method, name
        self._stages, self._lock = stages, lock

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._model, attr)
        if attr != self._method:
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                with self._lock:
                    timer = self._stages.setdefault(self._name, StageTimer())
                    timer.posts += 1
                    timer.seconds += time.perf_counter() - start

        return timed


def _time_models(pipeline: Any, stages: dict[str, StageTimer], lock: threading.Lock) -> None:
    """Split the vision stage: segmentation (per photo) and embedding (per post's crops)."""
    import dataclasses

    vision = pipeline.vision  # loads the models
    pipeline._vision = dataclasses.replace(
        vision,
        segmenter=_Timed(vision.segmenter, "segment", " segment", stages, lock),
        embedder=_Timed(vision.embedder, "embed", " embed", stages, lock),
    )


def _fake_vision() -> Any:
    from tests.bot._fake_vision import fake_vision

    return fake_vision()


def run_load(
    config: LoadConfig, work_dir: Path, *, say: Callable[[str], None] = print
) -> LoadResult:
    from pydantic import SecretStr

    from bot import storage
    from bot.config import Settings, VkSettings
    from bot.polling import poll_cycle
    from bot.vk.gateway import VkApiGateway

    process = psutil.Process()
    result = LoadResult(config={k: str(v) for k, v in asdict(config).items()})
    now = datetime.now(UTC)
    waves = make_world(config, now)
    wave_of = {}
    result.posts_total = sum(len(w) for w in waves)
    result.photos_total = result.posts_total * config.photos_per_post

    world = World(config)
    settings = Settings(
        database_url=f"sqlite:///{work_dir / 'load.db'}",
        var_dir=work_dir / "var",
        models_dir=config.models_dir,
        segmentation={"quantized": config.int8_segmentation},
        vk=VkSettings(
            api_url=world.api_url,
            token=SecretStr(world.token),
            photo_hosts=("127.0.0.1",),
            rate_limit_per_second=config.rate,
            request_timeout_seconds=30.0,
        ),
        commenting={
            "min_gap_seconds": 0,
            "quiet_hours": None,
            "dry_run": True,  # the whole decision runs; nothing is written to VK
        },
    )
    engine = storage.open_database(settings.database_url)
    storage.upgrade_database(engine)
    with storage.session_scope(engine) as session:
        for gid in range(1, config.groups + 1):
            storage.upsert_group(
                session,
                vk_id=gid,
                screen_name=f"load{gid}",
                title="load",
                now=now,
                city="Москва",
                comments_enabled=True,
            )
    sessions = storage.session_factory(engine)
    stage_lock = threading.Lock()
    pipeline_cls = _instrumented_pipeline(result.stages, stage_lock)
    vision = None if config.real_vision else _fake_vision()
    pipeline = pipeline_cls(settings, sessions, None, vision=vision)
    if config.real_vision:
        _time_models(pipeline, result.stages, stage_lock)  # loads them before the clock starts

    polling_done = threading.Event()
    stop = threading.Event()
    errors: list[BaseException] = []
    result.rss_start = process.memory_info().rss
    peak = [result.rss_start]
    started = time.perf_counter()

    def pending_counts() -> tuple[int, int]:
        with storage.session_scope(sessions) as session:
            posts = len(storage.pending_posts(session, limit=10_000_000))
            photos = storage.count_photos(session, storage.PhotoState.PENDING)
        return posts, photos

    def poller() -> None:
        try:
            with VkApiGateway(settings.vk) as gateway:
                for n, wave in enumerate(waves):
                    world.add(wave)
                    for spec in wave:
                        wave_of[(spec.group_id, spec.text)] = spec.wave
                    t0 = time.perf_counter()
                    report = poll_cycle(
                        sessions,
                        gateway,
                        settings,
                        now=now,
                        download_workers=config.download_workers,
                    )
                    elapsed = time.perf_counter() - t0
                    result.poll_seconds += elapsed
                    result.poll_cycles += 1
                    result.posts_polled += report.new_posts
                    result.photos_stored += report.photos_stored + report.photos_identical
                    result.photos_failed += report.photos_failed
                    say(
                        f"  wave {n + 1}/{len(waves)}: {report.new_posts} posts, "
                        f"{report.photos_stored} photos in {elapsed:.1f}s"
                    )
                for _ in range(5):  # photos that failed transiently
                    if pending_counts()[1] == 0:
                        break
                    report = poll_cycle(sessions, gateway, settings, now=now)
                    result.photos_stored += report.photos_stored + report.photos_identical
                    result.photos_failed += report.photos_failed
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            polling_done.set()

    def processor() -> None:
        touched: set[int] = set()
        try:
            while not stop.is_set():
                handled: list[tuple[int, str]] = []

                def progress(post: Any, handled: list[tuple[int, str]] = handled) -> None:
                    key = (-post.owner_id, post.text)
                    entry = (wave_of.get(key, -1), post.date.isoformat())
                    handled.append(entry)
                    if post.id not in touched:
                        touched.add(post.id)
                        result.first_touch.append(entry)

                report = pipeline.process_pending(
                    now=now,
                    limit=config.process_batch,
                    progress=progress,
                    should_stop=stop.is_set,
                )
                result.process_rounds += 1
                if handled:
                    result.rounds.append(handled)
                moved = report.posts - report.waiting
                if polling_done.is_set() and pending_counts()[0] == 0:
                    result.drained_seconds = time.perf_counter() - started
                    return
                if moved == 0:
                    time.sleep(config.process_interval)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    def take_sample() -> None:
        rss = process.memory_info().rss
        peak[0] = max(peak[0], rss)
        posts, photos = pending_counts()
        sample = {
            "t": round(time.perf_counter() - started, 1),
            "pending_posts": posts,
            "pending_photos": photos,
            "rss_mib": round(rss / 2**20, 1),
        }
        result.samples.append(sample)
        say(
            f"  t={sample['t']:>6.1f}s backlog: {posts:>6} posts, {photos:>6} photos; "
            f"RSS {sample['rss_mib']:.0f} MiB"
        )

    def sampler() -> None:
        while True:
            take_sample()
            if stop.wait(config.sample_seconds):
                return

    threads = [threading.Thread(target=f, name=f.__name__) for f in (poller, processor)]
    watcher = threading.Thread(target=sampler, name="sampler", daemon=True)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()
    take_sample()  # the state at the end, whatever the sampler's timing
    result.wall_seconds = time.perf_counter() - started
    result.rss_end = process.memory_info().rss
    result.rss_peak = max(peak[0], result.rss_end)
    with storage.session_scope(sessions) as session:
        from sqlalchemy import func, select

        from bot.storage._schema import PostRow

        rows = session.execute(select(PostRow.state, func.count()).group_by(PostRow.state))
        result.final_states = {state: count for state, count in rows}
    engine.dispose()
    world.close()
    if errors:
        raise errors[0]
    return result


def print_result(result: LoadResult) -> None:
    mib = 2**20
    print(
        f"\nworld: {result.config['groups']} groups, {result.posts_total} posts, "
        f"{result.photos_total} photos, in {result.config['waves']} waves"
    )
    print(
        f"wall-clock: {result.wall_seconds:.1f}s (backlog drained at {result.drained_seconds:.1f}s)"
    )
    poll = result.poll_seconds or 1e-9
    print(
        f"polling ({result.poll_cycles} cycles, {result.poll_seconds:.1f}s busy): "
        f"{result.posts_polled / poll:.1f} posts/s polled, "
        f"{result.photos_stored / poll:.1f} photos/s stored "
        f"({result.photos_stored} stored, {result.photos_failed} failed)"
    )
    print(f"processing ({result.process_rounds} rounds), per stage (busy time):")
    for name, timer in result.stages.items():
        if name.startswith(" "):
            continue
        print(
            f"  {name:<9} {timer.posts:>7} posts in {timer.seconds:7.1f}s "
            f"→ {timer.rate():8.1f} posts/s"
        )
        if name != "vision":
            continue
        for model, timer in result.stages.items():  # the models inside the vision stage
            if model.startswith(" "):
                print(
                    f"    {model.strip():<7} {timer.posts:>7} calls in {timer.seconds:7.1f}s "
                    f"→ {1000 * timer.seconds / max(timer.posts, 1):8.1f} ms/call"
                )
    finished = sum(v for k, v in result.final_states.items() if k in ("done", "skipped"))
    if result.drained_seconds:
        print(
            f"  end to end: {finished / result.drained_seconds:.1f} posts/s finished, "
            f"{result.photos_per_minute():.0f} photos/min"
        )
    print(f"final post states: {result.final_states}")
    print(
        f"RSS: start {result.rss_start / mib:.0f} MiB, peak {result.rss_peak / mib:.0f} MiB, "
        f"end {result.rss_end / mib:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--posts", type=int, default=20_000, help="posts in all")
    parser.add_argument("--photos", type=int, default=2, help="photos per post")
    parser.add_argument("--waves", type=int, default=4, help="poll cycles that bring new posts")
    parser.add_argument("--identities", type=int, default=200)
    parser.add_argument("--batch", type=int, default=200, help="posts per processing round")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=3.0, help="VK API requests per second")
    parser.add_argument("--workers", type=int, default=4, help="photo download threads")
    parser.add_argument("--real-vision", action="store_true", help="load the real models")
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="default: models/ in the data root (PETMATCH_HOME), where `models prepare` wrote them",
    )
    parser.add_argument(
        "--int8-segmentation",
        action="store_true",
        help="run the int8 U²-Net-p (`petmatch models prepare --quantize` writes it)",
    )
    parser.add_argument(
        "--omp-threads",
        type=int,
        default=None,
        help="cap FAISS's OpenMP threads (1 avoids spin-waits on a busy machine)",
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="repeat the whole run; medians are printed at the end"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()
    if args.omp_threads is not None:
        import faiss

        faiss.omp_set_num_threads(args.omp_threads)
    config = LoadConfig(
        groups=args.groups,
        posts=args.posts,
        photos_per_post=args.photos,
        waves=args.waves,
        identities=args.identities,
        process_batch=args.batch,
        sample_seconds=args.sample_seconds,
        rate=args.rate,
        download_workers=args.workers,
        real_vision=args.real_vision,
        models_dir=args.models_dir or _configured_models_dir(),
        int8_segmentation=args.int8_segmentation,
    )
    if config.real_vision:
        _require_models(config.models_dir)
    if args.runs > 1:
        _median_of_runs(args.runs, args.json)
        return
    with tempfile.TemporaryDirectory(prefix="petmatch-load-") as tmp:
        print(f"seeding and running: {config}")
        result = run_load(config, Path(tmp))
    print_result(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result.summary(), indent=2, default=str))


def _median_of_runs(runs: int, json_path: Path | None) -> None:
    """Run this script `runs` times, each in a fresh process (so each peak RSS is its own),
    and print the medians of photos per minute and peak RSS."""
    summaries = []
    with tempfile.TemporaryDirectory(prefix="petmatch-load-runs-") as tmp:
        for run in range(runs):
            out = Path(tmp) / f"run{run}.json"
            print(f"== run {run + 1}/{runs}", flush=True)
            # argparse keeps the last of a repeated option: these override the caller's.
            command = [sys.executable, __file__, *sys.argv[1:], "--runs", "1", "--json", str(out)]
            subprocess.run(command, check=True)
            summaries.append(json.loads(out.read_text()))
    rates = [s["photos_per_minute"] for s in summaries]
    peaks = [s["rss_peak"] / 2**20 for s in summaries]
    print(
        f"\nmedian of {runs} runs: {statistics.median(rates):.0f} photos/min end to end "
        f"(runs: {', '.join(f'{r:.0f}' for r in rates)}), "
        f"peak RSS {statistics.median(peaks):.0f} MiB "
        f"(runs: {', '.join(f'{p:.0f}' for p in peaks)})"
    )
    if json_path is not None:
        json_path.write_text(json.dumps(summaries, indent=2, default=str))


def _require_models(models_dir: Path | None) -> None:
    """Stop at once, in one line, when the real models are not where they are looked for."""
    from bot.config import Settings
    from bot.pipeline import build_vision

    try:
        build_vision(Settings(models_dir=models_dir))
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None


def _configured_models_dir() -> Path:
    """The models folder petmatch itself uses (the data root's, never the current folder's)."""
    from bot.config import load_settings

    return Path(load_settings().models_dir)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
