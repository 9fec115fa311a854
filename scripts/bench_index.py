"""Benchmark `index.FaissIndex` on clustered synthetic vectors; prints numbers.

    .venv/bin/python scripts/bench_index.py                 # 1,000,000 x 1280-d
    .venv/bin/python scripts/bench_index.py --n 100000 --dim 512

Default dimension 1280 is the default model's (EfficientNet-Lite0 pooled features; OSNet is
512). Partitions: one with 60% of the vectors (approximate: IVF), one at min(20%, the exact
limit) (exact), then halving sizes down to small city partitions (exact). Vectors are
clustered like pet photos: breeds → animals → photos, plus a shared mean direction (real
features are not centred), so typical cosine similarities sit around 0.3-0.6.

Reports: memory per vector (RSS growth and on-disk bytes), build time per partition,
single-query latency p50/p95 of "one new animal against its partition", recall@10 of the
approximate partition against brute-force exact top-10 (ground truth regenerated chunk by
chunk, so memory stays at one copy of the vectors), and optionally save/load times.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import psutil

from index import FaissIndex, PartitionKey

MODEL = "bench@1"
CHUNK = 50_000


def partition_sizes(n: int, exact_limit: int) -> list[int]:
    big = int(n * 0.6)
    sizes = [big]
    rest = n - big
    nxt = min(int(n * 0.2), exact_limit, rest)
    while rest > 0:
        take = max(1, min(nxt, rest))
        sizes.append(take)
        rest -= take
        nxt = max(1000, take // 2)
    return sizes


class Generator:
    """Deterministic clustered vectors for one partition, generated chunk by chunk."""

    def __init__(self, seed: int, dim: int, size: int) -> None:
        rng = np.random.default_rng(seed)
        self.seed, self.dim, self.size = seed, dim, size
        self.mean = rng.standard_normal(dim).astype(np.float32)
        self.mean *= 1.2 / np.linalg.norm(self.mean)
        self.breeds = rng.standard_normal((64, dim)).astype(np.float32) / np.sqrt(dim)
        self.animals = max(1, size // 4)  # about four photos per animal

    def animal_offsets(self, animal_ids: np.ndarray) -> np.ndarray:
        out = np.empty((animal_ids.size, self.dim), np.float32)
        for row, a in enumerate(animal_ids):
            r = np.random.default_rng((self.seed, int(a)))
            out[row] = self.breeds[a % 64] + 0.7 * r.standard_normal(self.dim) / np.sqrt(self.dim)
        return out

    def photos(self, animal_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = 0.45 * rng.standard_normal((animal_ids.size, self.dim)).astype(np.float32)
        return self.mean + self.animal_offsets(animal_ids) + noise / np.sqrt(self.dim)

    def chunk(self, start: int, stop: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, 10**9 + start))
        return self.photos(np.arange(start, stop) % self.animals, rng)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="total vectors")
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--exact-limit", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--threads", type=int, default=1, help="OpenMP threads (1 suits single-query latency)"
    )
    parser.add_argument("--save", action="store_true", help="also time save and verified load")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = parser.parse_args()

    faiss.omp_set_num_threads(args.threads)
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    store = FaissIndex(MODEL, args.dim, exact_limit=args.exact_limit)
    sizes = partition_sizes(args.n, args.exact_limit)
    gens, keys, builds = [], [], []
    next_id = 0
    for p, size in enumerate(sizes):
        key = PartitionKey(species="dog", kind="lost", city=f"city-{p}")
        gen = Generator(p, args.dim, size)
        t0 = time.perf_counter()
        if size > args.exact_limit:
            # One add: the partition is built as IVF directly (trained on all of it).
            vecs = np.concatenate(
                [gen.chunk(s, min(size, s + CHUNK)) for s in range(0, size, CHUNK)]
            )
            gen_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            store.add(key, np.arange(next_id, next_id + size), vecs, model_id=MODEL)
            del vecs
        else:
            gen_s = 0.0
            for s in range(0, size, CHUNK):
                t_gen = time.perf_counter()
                vecs = gen.chunk(s, min(size, s + CHUNK))
                gen_s += time.perf_counter() - t_gen
                ids = np.arange(next_id + s, next_id + s + vecs.shape[0])
                store.add(key, ids, vecs, model_id=MODEL)
        builds.append(time.perf_counter() - t0 - (0.0 if size > args.exact_limit else gen_s))
        gens.append((gen, next_id))
        keys.append(key)
        next_id += size
    rss1 = proc.memory_info().rss
    infos = {i.key: i for i in store.partitions()}

    def latency_and_recall(p: int) -> dict:
        gen, first_id = gens[p]
        key = keys[p]
        rng = np.random.default_rng(777 + p)
        half = args.queries // 2
        # New photos of known animals, and photos of new animals.
        known = gen.photos(rng.integers(0, gen.animals, half), rng)
        new = gen.photos(gen.animals + 1000 + np.arange(args.queries - half), rng)
        queries = np.concatenate([known, new]).astype(np.float32)
        times, got = [], []
        for q in queries:
            t0 = time.perf_counter()
            (hits,) = store.search(q, key, k=10)
            times.append(time.perf_counter() - t0)
            got.append([h.id for h in hits])
        out = {
            "partition": str(key),
            "size": gen.size,
            "structure": infos[key].structure,
            "nlist": infos[key].nlist,
            "nprobe": infos[key].nprobe,
            "p50_ms": 1000 * float(np.percentile(times, 50)),
            "p95_ms": 1000 * float(np.percentile(times, 95)),
        }
        if infos[key].structure == "ivf":
            unit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
            best_d = np.full((len(unit), 10), -np.inf, np.float32)
            best_i = np.zeros((len(unit), 10), np.int64)
            for s in range(0, gen.size, CHUNK):
                block = gen.chunk(s, min(gen.size, s + CHUNK))
                block /= np.linalg.norm(block, axis=1, keepdims=True)
                d, i = faiss.knn(unit, block, 10, metric=faiss.METRIC_INNER_PRODUCT)
                d_all = np.concatenate([best_d, d], axis=1)
                i_all = np.concatenate([best_i, i + first_id + s], axis=1)
                top = np.argsort(-d_all, axis=1)[:, :10]
                best_d = np.take_along_axis(d_all, top, 1)
                best_i = np.take_along_axis(i_all, top, 1)
            recall = [len(set(g) & set(t.tolist())) / 10 for g, t in zip(got, best_i, strict=True)]
            out["recall_at_10"] = float(np.mean(recall))
            out["recall_at_10_known"] = float(np.mean(recall[:half]))
            out["recall_at_10_new"] = float(np.mean(recall[half:]))
        return out

    probes = sorted({0, 1, len(sizes) - 1})
    results = [latency_and_recall(p) for p in probes if p < len(sizes)]
    report = {
        "n": len(store),
        "dim": args.dim,
        "threads": faiss.omp_get_max_threads(),
        "partitions": [(str(k), infos[k].count, infos[k].structure) for k in keys],
        "build_s": dict(zip([str(k) for k in keys], [round(b, 2) for b in builds], strict=True)),
        "build_total_s": round(sum(builds), 2),
        "rss_bytes_per_vector": round((rss1 - rss0) / len(store), 1),
        "raw_bytes_per_vector": 4 * args.dim,
        "queries": results,
    }
    if args.save:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            store.save(Path(tmp))
            report["save_s"] = round(time.perf_counter() - t0, 2)
            disk = sum(f.stat().st_size for f in Path(tmp).iterdir())
            report["disk_bytes_per_vector"] = round(disk / len(store), 1)
            t0 = time.perf_counter()
            FaissIndex.load(Path(tmp), model_id=MODEL)
            report["load_verified_s"] = round(time.perf_counter() - t0, 2)
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        for name, value in report.items():
            if name != "queries":
                sys.stdout.write(f"{name}: {value}\n")
        for row in results:
            sys.stdout.write("query " + json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
