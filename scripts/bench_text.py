"""Throughput of `text.classify_post` on one core: posts per second.

Cycles through the 903 pet911 2025 descriptions in ../shared/data/text, read as a VK post
(`place + ". " + text`), or the posts written in tests/text when ../shared is absent; after a
warm-up pass that fills the per-token parse cache, times `--runs` passes and prints their
median.

    python scripts/bench_text.py [--posts 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.text.devset import pet911_2025_rows, written_rows  # noqa: E402
from text import classify_post  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5_000, help="posts per timed run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    shared = args.shared.is_dir()
    rows = pet911_2025_rows(args.shared, "all") if shared else written_rows()
    texts = [r["text"] for r in rows]
    start = time.perf_counter()
    for text in texts:
        classify_post(text, group_city="Москва")
    cold = time.perf_counter() - start
    rates, cpu_rates = [], []
    for _ in range(args.runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        for i in range(args.posts):
            classify_post(texts[i % len(texts)], group_city="Москва")
        rates.append(args.posts / (time.perf_counter() - start))
        cpu_rates.append(args.posts / (time.process_time() - cpu_start))
    chars = sum(len(t) for t in texts) / len(texts)
    median = statistics.median(rates)
    print(f"corpus: {len(texts)} posts, {chars:.0f} chars on average")
    print(f"cold pass (loads tables, parses every token): {len(texts) / cold:,.0f} posts/s")
    print(f"warm, one core, median of {args.runs} runs of {args.posts}: {median:,.0f} posts/s "
          f"({1e6 / median:.0f} µs/post; runs: {', '.join(f'{r:,.0f}' for r in rates)})")
    # On a shared machine the wall clock counts time other processes held the core; CPU
    # time does not (it still pays for their cache and memory traffic).
    print(f"per CPU-second of this process, median: {statistics.median(cpu_rates):,.0f} posts/s")


if __name__ == "__main__":
    main()
