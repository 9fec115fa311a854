"""Saving survives crashes; damaged files are detected on load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index import (
    MANIFEST_NAME,
    FaissIndex,
    IndexCorruptError,
    IndexLoadError,
    IndexNotFoundError,
)
from tests.conftest import REPO_ROOT
from tests.index.conftest import CAT_FOUND, CAT_LOST, DIM, MODEL, PARTITIONS, PER_PARTITION


def _partition_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix == ".faiss")


def test_missing_directory_is_not_found(tmp_path):
    with pytest.raises(IndexNotFoundError):
        FaissIndex.load(tmp_path / "nothing")
    with pytest.raises(IndexNotFoundError):
        FaissIndex.load(tmp_path)


@pytest.mark.parametrize("verify", [True, False])
def test_truncated_partition_is_corrupt(filled, tmp_path, verify):
    store, _ = filled
    store.save(tmp_path)
    victim = _partition_files(tmp_path)[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError, match="bytes"):
        FaissIndex.load(tmp_path, verify=verify)


def test_flipped_byte_is_caught_by_sha256(filled, tmp_path):
    store, _ = filled
    store.save(tmp_path)
    victim = _partition_files(tmp_path)[-1]
    data = bytearray(victim.read_bytes())
    data[len(data) - 100] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="sha256"):
        FaissIndex.load(tmp_path)


def test_missing_partition_file_is_corrupt(filled, tmp_path):
    store, _ = filled
    store.save(tmp_path)
    _partition_files(tmp_path)[0].unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        FaissIndex.load(tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{not json",
        '{"format_version": 1}',
        '{"format_version": 99, "model_id": "m", "dim": 4, "total": 0, "partitions": []}',
    ],
    ids=["empty", "garbage", "incomplete", "future-version"],
)
def test_bad_manifest_is_corrupt(tmp_path, text):
    (tmp_path / MANIFEST_NAME).write_text(text, encoding="utf-8")
    with pytest.raises(IndexCorruptError) as info:
        FaissIndex.load(tmp_path)
    assert isinstance(info.value, IndexLoadError)


def test_manifest_pointing_outside_is_corrupt(filled, tmp_path):
    store, _ = filled
    store.save(tmp_path)
    raw = json.loads((tmp_path / MANIFEST_NAME).read_text())
    raw["partitions"][0]["file"] = "../elsewhere.faiss"
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(IndexCorruptError):
        FaissIndex.load(tmp_path)


def test_leftovers_of_an_interrupted_save_are_ignored_then_cleaned(filled, tmp_path):
    """A crash after partition files were written but before the manifest was replaced."""
    store, _ = filled
    store.save(tmp_path)
    good = FaissIndex.load(tmp_path).search(np.ones(DIM, np.float32), CAT_FOUND, k=5)
    # What an interrupted save leaves: a half-written temp file, a finished new partition
    # file no manifest names yet, a half-written temp manifest.
    (tmp_path / ".tmp-p-0000.abc.faiss").write_bytes(b"\x00" * 1000)
    (tmp_path / "p-0000.abc.faiss").write_bytes(_partition_files(tmp_path)[0].read_bytes()[:50])
    (tmp_path / f".tmp-abc.{MANIFEST_NAME}").write_text('{"format_version": 1, "mod')
    loaded = FaissIndex.load(tmp_path)
    assert loaded.search(np.ones(DIM, np.float32), CAT_FOUND, k=5) == good
    loaded.add(CAT_LOST, [1], np.ones((1, DIM), np.float32), model_id=MODEL)
    loaded.save(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert not any(n.startswith(".tmp-") for n in names)
    assert "p-0000.abc.faiss" not in names
    assert len(_partition_files(tmp_path)) == len(PARTITIONS)


def test_unchanged_partitions_are_not_rewritten(filled, tmp_path):
    store, _ = filled
    first = {p.key: p.file for p in store.save(tmp_path).partitions}
    store.add(CAT_LOST, [1], np.ones((1, DIM), np.float32), model_id=MODEL)
    second = {p.key: p.file for p in store.save(tmp_path).partitions}
    changed = {k for k in first if first[k] != second[k]}
    assert changed == {CAT_LOST}
    assert {p.name for p in _partition_files(tmp_path)} == set(second.values())


_SAVER = """
import sys
import numpy as np
from index import FaissIndex, PartitionKey

directory = sys.argv[1]
store = FaissIndex.load(directory)
key = PartitionKey(species="cat", kind="lost", city="Москва")
rng = np.random.default_rng(0)
next_id = 50_000_000
print("ready", flush=True)
while True:
    # Alternate between two sizes so every committed state has a known total.
    if store.count(key) > 400:
        store.remove(range(next_id - 100, next_id))
    else:
        store.add(key, np.arange(next_id, next_id + 100),
                  rng.standard_normal((100, store.dim)).astype(np.float32),
                  model_id=store.model_id)
        next_id += 100
    store.save(directory)
"""


def test_killed_mid_save_leaves_a_loadable_index(tmp_path):
    """SIGKILL a process that saves in a loop; whatever it left must load, old or new."""
    rng = np.random.default_rng(3)
    store = FaissIndex(MODEL, DIM)
    for n, key in enumerate(PARTITIONS):
        ids = np.arange(PER_PARTITION * 10) + n * 1_000_000
        store.add(key, ids, rng.standard_normal((ids.size, DIM)), model_id=MODEL)
    store.save(tmp_path)
    base = len(store)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for delay in (0.15, 0.4, 0.9):
        proc = subprocess.Popen(
            [sys.executable, "-c", _SAVER, str(tmp_path)],
            stdout=subprocess.PIPE,
            env=env,
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            proc.stdout.close()
        loaded = FaissIndex.load(tmp_path, model_id=MODEL)
        assert len(loaded) in {base, base + 100}
        assert loaded.count(CAT_FOUND) == PER_PARTITION * 10
