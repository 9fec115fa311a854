"""Benchmark one poll cycle: N groups × M new posts × K photos on the fake VK server.

The fake VK runs in a child process (so its in-memory photos don't count toward our memory),
the database is SQLite in a temporary folder. Prints wall-clock time, VK calls used,
photos/s downloaded and stored, and the peak RSS of the polling process.

    .venv/bin/python scripts/bench_poll.py                  # 200 groups × 20 posts × 2 photos
    .venv/bin/python scripts/bench_poll.py --groups 20 --rate 1000
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil
from PIL import Image
from pydantic import SecretStr


def _photo(seed: int, size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(blocks).resize(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _serve(conn, groups: int, posts: int, photos: int, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    from bot.fakevk import FakeVkServer

    server = FakeVkServer()
    now = int(time.time())
    seed = 0
    for gid in range(1, groups + 1):
        server.add_group(gid, f"bench{gid}", f"Bench group {gid}")
        for p in range(posts):
            data = [_photo(seed + i, size) for i in range(photos)]
            seed += photos
            server.add_post(gid, text="Пропала собака", date=now - (posts - p) * 60, photos=data)
    server.start()
    conn.send((server.api_url, server.token, sum(len(x.data) for x in server._photos.values())))
    conn.recv()  # wait for "stop"
    conn.send(dict(server.calls))
    server.stop()


class _PeakRss:
    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--posts", type=int, default=20, help="new posts per group")
    parser.add_argument("--photos", type=int, default=2, help="photos per post")
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), help="photo WxH")
    parser.add_argument("--workers", type=int, default=4, help="download threads")
    parser.add_argument(
        "--rate", type=float, default=3.0, help="VK API requests per second (VK allows 3)"
    )
    args = parser.parse_args()

    from bot import storage
    from bot.config import Settings, VkSettings
    from bot.polling import poll_cycle
    from bot.vk.gateway import VkApiGateway

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    seeding = time.perf_counter()
    server = ctx.Process(
        target=_serve, args=(child, args.groups, args.posts, args.photos, tuple(args.size))
    )
    server.start()
    api_url, token, photo_bytes = parent.recv()
    print(f"seeded fake VK in {time.perf_counter() - seeding:.1f}s: {args.groups} groups, "
          f"{args.groups * args.posts} posts, {args.groups * args.posts * args.photos} photos "
          f"({photo_bytes / 1e6:.1f} MB)")

    with tempfile.TemporaryDirectory(prefix="petmatch-bench-") as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
            var_dir=Path(tmp) / "var",
            vk=VkSettings(
                api_url=api_url,
                token=SecretStr(token),
                photo_hosts=("127.0.0.1",),
                rate_limit_per_second=args.rate,
            ),
        )
        engine = storage.open_database(settings.database_url)
        storage.upgrade_database(engine)
        now = datetime.now(UTC)
        with storage.session_scope(engine) as session:
            for gid in range(1, args.groups + 1):
                storage.upsert_group(
                    session, vk_id=gid, screen_name=f"bench{gid}", title="bench", now=now
                )
        sessions = storage.session_factory(engine)
        with VkApiGateway(settings.vk) as gateway, _PeakRss() as rss:
            baseline = rss.peak
            start = time.perf_counter()
            report = poll_cycle(
                sessions, gateway, settings, now=now, download_workers=args.workers
            )
            elapsed = time.perf_counter() - start
        engine.dispose()
        stored_bytes = sum(p.stat().st_size for p in (Path(tmp) / "var").rglob("*") if p.is_file())
    parent.send("stop")
    server_calls = parent.recv()
    server.join(timeout=10)

    photos = report.photos_stored + report.photos_identical
    print(f"poll cycle: {elapsed:.2f}s wall-clock")
    print(f"  posts stored: {report.new_posts}, groups ok: {report.groups_ok}/{report.groups_due}")
    print(f"  VK API calls: {dict(report.vk_calls)} (fake server saw {server_calls})")
    print(f"  photos: {photos} downloaded and stored, {report.photos_failed} failed, "
          f"{photos / elapsed:.1f} photos/s over the whole cycle")
    print(f"  photo files on disk: {stored_bytes / 1e6:.1f} MB")
    print(f"  peak RSS: {rss.peak / 2**20:.0f} MiB (baseline before the cycle "
          f"{baseline / 2**20:.0f} MiB, +{(rss.peak - baseline) / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
