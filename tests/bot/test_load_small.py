"""A small run of `scripts/bench_load.py`: polling and processing at once on SQLite. The
backlog drains oldest post first, everything ends processed, and memory stays bounded (no
assertion on time: speed is the benchmark's business)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench_load():
    spec = importlib.util.spec_from_file_location("bench_load", REPO / "scripts/bench_load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_load"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_load", None)


def test_backlog_drains_in_post_date_order_with_bounded_memory(bench_load, tmp_path):
    config = bench_load.LoadConfig(
        groups=10,
        posts=200,
        photos_per_post=2,
        waves=4,
        identities=30,
        process_batch=25,
        process_interval=0.05,
        sample_seconds=0.5,
        rate=1000.0,
        in_process=True,
    )
    result = bench_load.run_load(config, tmp_path, say=lambda _line: None)

    # everything polled, stored and processed
    assert result.posts_polled == result.posts_total == 200
    assert result.photos_stored == result.photos_total == 400
    assert result.photos_failed == 0
    assert set(result.final_states) <= {"done", "skipped"}
    assert sum(result.final_states.values()) == 200
    assert result.stages["text"].posts == 200
    assert result.stages["vision"].posts >= result.final_states.get("done", 0) > 0
    assert result.stages["matching"].posts > 0

    # polling went on while processing worked: new waves arrived with a backlog pending
    assert result.poll_cycles >= 4
    assert any(s["pending_posts"] > 0 for s in result.samples)
    assert result.samples[-1]["pending_posts"] == 0

    # oldest first: each round goes by post date, and no post is started before an older
    # wave's post has been started (waves reach VK in date order)
    for handled in result.rounds:
        dates = [date for _wave, date in handled]
        assert dates == sorted(dates)
    waves = [wave for wave, _date in result.first_touch]
    assert -1 not in waves
    assert waves == sorted(waves)
    assert len(result.first_touch) == 200

    # memory: the whole run costs a bounded amount over the start
    assert result.rss_peak - result.rss_start < 300 * 2**20
