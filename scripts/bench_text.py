"""Throughput of `text.classify_post` on one core: posts per second.

Cycles through the real posts in ../shared/data/text (or the posts written in tests/text
when ../shared is absent), after a warm-up pass that fills the per-token parse cache.

    python scripts/bench_text.py [--posts 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.text.devset import real_rows, written_rows  # noqa: E402
from text import classify_post  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rows = written_rows()
    if args.shared.is_dir():
        rows = real_rows(args.shared) + rows
    texts = [r["text"] for r in rows]
    start = time.perf_counter()
    for text in texts:
        classify_post(text, group_city="Москва")
    cold = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(args.posts):
        classify_post(texts[i % len(texts)], group_city="Москва")
    warm = time.perf_counter() - start
    chars = sum(len(t) for t in texts) / len(texts)
    print(f"corpus: {len(texts)} posts, {chars:.0f} chars on average")
    print(f"cold pass (loads tables, parses every token): {len(texts) / cold:,.0f} posts/s")
    per_post = warm / args.posts * 1e6
    print(f"warm, one core: {args.posts / warm:,.0f} posts/s ({per_post:.0f} µs/post)")


if __name__ == "__main__":
    main()
