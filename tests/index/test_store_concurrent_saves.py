"""Two processes saving into one index directory (the nightly `reindex` while `run` saves):
neither deletes the other's files mid-save, every save succeeds, and the directory always
loads."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from index import FaissIndex
from tests.conftest import REPO_ROOT
from tests.index.conftest import CAT_FOUND, CAT_LOST, DIM, MODEL

_OTHER_SAVER = """
import sys
import numpy as np
from index import FaissIndex, PartitionKey

directory, rounds = sys.argv[1], int(sys.argv[2])
key = PartitionKey(species="dog", kind="found", city="Казань")
rng = np.random.default_rng(1)
store = FaissIndex("test-model@1", 32)
print("ready", flush=True)
for n in range(rounds):
    store.add(key, np.arange(n * 50, n * 50 + 50) + 9_000_000,
              rng.standard_normal((50, 32)).astype(np.float32), model_id="test-model@1")
    store.save(directory)
print("done", flush=True)
"""


def test_concurrent_saves_never_break_each_other(tmp_path):
    rng = np.random.default_rng(0)
    store = FaissIndex(MODEL, DIM)
    store.add(CAT_LOST, np.arange(100), rng.standard_normal((100, DIM)), model_id=MODEL)
    store.save(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    other = subprocess.Popen(
        [sys.executable, "-c", _OTHER_SAVER, str(tmp_path), "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == b"ready"
        next_id = 1000
        deadline = time.monotonic() + 60
        while other.poll() is None and time.monotonic() < deadline:
            store.add(CAT_FOUND, [next_id], rng.standard_normal((1, DIM)), model_id=MODEL)
            next_id += 1
            store.save(tmp_path)  # raised FileNotFoundError when the other deleted our temp
            FaissIndex.load(tmp_path, model_id=MODEL)
        out, err = other.communicate(timeout=60)
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
    assert other.returncode == 0, err.decode()
    assert b"done" in out
    store.save(tmp_path)
    loaded = FaissIndex.load(tmp_path, model_id=MODEL)
    assert len(loaded) == len(store)
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())
