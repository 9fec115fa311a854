"""Cross-domain calibration: the conservative curve, its check, and the stored fitting set."""

from __future__ import annotations

import numpy as np
import pytest

from reid.calibration import Calibration, packaged_calibration
from reid.confidence import (
    conservative_curve,
    expected_calibration_error,
    fit_cross_domain,
    reliability_table,
)


def _domain(rng: np.random.Generator, same_mean: float, diff_mean: float, n: int = 4000):
    same = rng.random(n) < 0.1
    sims = np.where(same, rng.normal(same_mean, 0.05, n), rng.normal(diff_mean, 0.05, n))
    return np.clip(sims, -1, 1), same


def test_conservative_curve_is_the_lower_of_two_monotone_curves():
    a = (np.array([-1.0, 0.5, 1.0]), np.array([0.0, 0.2, 1.0]))
    b = (np.array([-1.0, 0.8, 1.0]), np.array([0.0, 0.9, 0.9]))
    xs, ys = conservative_curve([a, b])
    for x in (-1.0, 0.0, 0.5, 0.8, 0.9, 1.0):
        y = np.interp(x, xs, ys)
        assert y <= min(np.interp(x, *a), np.interp(x, *b)) + 1e-12
    assert np.all(np.diff(ys) >= 0)


def test_strangers_alike_in_one_domain_never_reach_high_confidence():
    """Regression: a curve fitted on VK crops only said 0.99+ for dog faces at cosine 0.8,
    where DogFaceNet strangers already are."""
    rng = np.random.default_rng(0)
    vk = _domain(rng, same_mean=0.75, diff_mean=0.35)  # strangers far apart
    faces = _domain(rng, same_mean=0.9, diff_mean=0.8)  # strangers look alike
    cal = fit_cross_domain(
        {"vk": vk, "faces": faces},
        model_id="m@1",
        fit_identities={"vk": ["a", "b"], "faces": ["1", "2"]},
    )
    assert cal.confidence(0.8) < 0.5
    assert cal.confidence(0.99) > 0.9
    assert cal.domains == ("vk", "faces")
    assert cal.fitted_on(["b", "2", "zzz"]) == {"b", "2"}


def test_fit_cross_domain_refuses_a_domain_without_both_kinds_of_pairs():
    with pytest.raises(ValueError, match="both"):
        fit_cross_domain(
            {"only_same": (np.array([0.9, 0.8]), np.array([True, True]))},
            model_id="m@1",
            fit_identities={},
        )


def test_reliability_table_counts_each_band_and_ece_weighs_the_gaps():
    conf = np.array([0.05, 0.05, 0.55, 0.55, 1.0, 1.0])
    same = np.array([False, False, True, False, True, True])
    rows = reliability_table(conf, same, bands=(0.0, 0.5, 1.0))
    assert [(r.pairs, r.same_pairs) for r in rows] == [(2, 0), (4, 3)]
    assert rows[1].observed == pytest.approx(0.75)
    # band 1: stated mean 0.775, observed 0.75; band 0: stated 0.05, observed 0.
    assert expected_calibration_error(rows) == pytest.approx((2 * 0.05 + 4 * 0.025) / 6)


def test_overconfident_curve_shows_a_large_ece():
    conf = np.full(100, 0.99)
    same = np.arange(100) < 50
    assert expected_calibration_error(reliability_table(conf, same)) == pytest.approx(0.49)


def test_a_calibration_saved_before_domains_existed_still_loads(tmp_path):
    path = tmp_path / "old.calibration.json"
    old = packaged_calibration("efficientnet_lite0").model_dump()
    old.pop("domains"), old.pop("fit_identities")
    Calibration.model_validate(old).save(path)
    loaded = Calibration.load(path)
    assert loaded.fit_identities == {} and loaded.fitted_on(["x"]) == set()


def test_default_calibration_names_its_fitting_set_and_never_the_held_out_dogs():
    from reid.training._data import is_validation_identity

    cal = packaged_calibration("efficientnet_lite1")
    assert set(cal.domains) == {"vk_set2", "dogfacenet"}
    dogs = cal.fit_identities["dogfacenet"]
    assert len(dogs) > 300
    # The 178 held-out DogFaceNet identities (docs/training.md) are kept for the final check.
    assert not any(is_validation_identity(name, 20) for name in dogs)
    assert cal.threshold is not None and cal.target_precision >= 0.98
