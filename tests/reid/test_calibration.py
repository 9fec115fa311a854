"""Calibration on synthetic pairs: curve shape, operating point, table, persistence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reid.calibration import (
    Calibration,
    calibration_path,
    fit_calibration,
    packaged_calibration,
    pair_similarities,
    precision_recall_table,
)


def synthetic_pairs(seed: int = 0, n_same: int = 300, n_diff: int = 3000):
    """Same-animal pairs around 0.8, different ones around 0.45, overlapping tails."""
    rng = np.random.default_rng(seed)
    same = np.clip(rng.normal(0.8, 0.08, n_same), -1, 1)
    diff = np.clip(rng.normal(0.45, 0.12, n_diff), -1, 1)
    sims = np.concatenate([same, diff])
    return sims, np.concatenate([np.ones(n_same, bool), np.zeros(n_diff, bool)])


def test_pair_similarities_small_example():
    vectors = np.array([[1, 0], [2, 0], [0, 3], [1, 1]], dtype=np.float32)
    sims, same = pair_similarities(vectors, ["a", "a", "b", "b"])
    # Pairs in order (0,1) (0,2) (0,3) (1,2) (1,3) (2,3).
    np.testing.assert_allclose(sims, [1, 0, np.sqrt(0.5), 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6)
    assert same.tolist() == [True, False, False, False, False, True]
    with pytest.raises(ValueError):
        pair_similarities(vectors, ["a", "b"])


@pytest.mark.parametrize("method", ["isotonic", "logistic"])
def test_fit_reaches_target_precision_at_the_lowest_threshold(method):
    sims, same = synthetic_pairs()
    cal = fit_calibration(sims, same, method=method, target_precision=0.9, model_id="m@1")
    assert cal.reached_target and cal.method == method and cal.model_id == "m@1"
    assert (cal.pairs, cal.same_pairs, cal.different_pairs) == (3300, 300, 3000)
    # Monotone, defined on the whole cosine range, probabilities.
    grid = np.linspace(-1, 1, 501)
    conf = cal.confidence(grid)
    assert conf.shape == grid.shape and np.all(np.diff(conf) >= -1e-12)
    assert conf.min() >= 0 and conf.max() <= 1
    assert cal.confidence(0.2) < 0.05 < 0.9 < cal.confidence(0.99)
    # The achieved point, recomputed independently from raw similarities.
    (row,) = precision_recall_table(sims, same, [cal.similarity_threshold - 1e-9])
    assert row.precision >= 0.9
    assert row.precision == pytest.approx(cal.precision, abs=0.01)
    assert row.recall == pytest.approx(cal.recall, abs=0.01)
    # Lowest: every lower calibrated value falls short of the target.
    pair_conf = cal.confidence(sims)
    below = np.unique(pair_conf[pair_conf < cal.threshold])
    for t in below[-3:]:
        chosen = pair_conf >= t
        assert same[chosen].mean() < 0.9


def test_unreachable_target_is_reported():
    rng = np.random.default_rng(1)
    sims = rng.uniform(0, 1, 2000)
    same = rng.uniform(0, 1, 2000) < 0.1  # labels unrelated to similarity
    cal = fit_calibration(sims, same, target_precision=0.99)
    assert not cal.reached_target
    assert cal.threshold is None and cal.similarity_threshold is None and cal.precision is None


def test_fit_needs_both_classes():
    with pytest.raises(ValueError, match="both"):
        fit_calibration(np.array([0.1, 0.9]), np.array([True, True]))
    with pytest.raises(ValueError, match="method"):
        fit_calibration(*synthetic_pairs(), method="platt")  # type: ignore[arg-type]


def test_precision_recall_table_by_hand():
    sims = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    same = np.array([True, False, True, False, False])
    rows = precision_recall_table(sims, same, [0.95, 0.85, 0.7, 0.0])
    assert [(r.predicted, r.true_positives) for r in rows] == [(0, 0), (1, 1), (3, 2), (5, 2)]
    assert rows[0].precision == 1.0 and rows[0].recall == 0.0
    assert rows[2].precision == pytest.approx(2 / 3) and rows[2].recall == 1.0
    assert rows[2].f1 == pytest.approx(0.8)
    assert rows[3].precision == pytest.approx(0.4)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), method=st.sampled_from(["isotonic", "logistic"]))
def test_curve_is_always_monotone(seed, method):
    sims, same = synthetic_pairs(seed, n_same=40, n_diff=200)
    cal = fit_calibration(sims, same, method=method)
    assert all(b >= a for a, b in zip(cal.ys, cal.ys[1:], strict=False))
    assert cal.xs[0] <= -1.0 + 1e-9 and cal.xs[-1] >= 1.0 - 1e-9


def test_save_load_roundtrip(tmp_path):
    cal = fit_calibration(*synthetic_pairs(), model_id="efficientnet_lite0@imagenet-1")
    target = calibration_path(tmp_path / "models" / "efficientnet_lite0.onnx")
    assert target.name == "efficientnet_lite0.calibration.json"
    cal.save(target)
    assert Calibration.load(target) == cal
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp leftovers
    with pytest.raises(FileNotFoundError):
        Calibration.load(tmp_path / "missing.calibration.json")


def test_curve_feeds_a_match_policy():
    from index.matching import MatchPolicy

    cal = fit_calibration(*synthetic_pairs(), target_precision=0.9)
    policy = MatchPolicy(curve_xs=cal.xs, curve_ys=cal.ys, threshold=cal.threshold)
    for s in (0.3, 0.7, 0.85, 0.95):
        assert policy.confidence(s) == pytest.approx(cal.confidence(s))


def test_packaged_efficientnet_calibration_is_usable():
    from reid import EFFICIENTNET_LITE0_ID

    cal = packaged_calibration("efficientnet_lite0")
    assert cal.model_id == EFFICIENTNET_LITE0_ID
    assert cal.target_precision == 0.98 and cal.source
    with pytest.raises(FileNotFoundError):
        packaged_calibration("no-such-model")
