"""Cross-domain calibration and its check: curves fitted per domain, combined conservatively.

A pair of crops is "same animal" with a probability that depends on the kind of photo: on
aligned dog-face crops (DogFaceNet) strangers reach cosine similarities that on real VK cut-outs
only the same animal reaches. A curve fitted on one domain is therefore over-confident on the
other. `fit_cross_domain` fits one isotonic curve per domain (pairs split by identity) and keeps,
at every similarity, the *lowest* of them: the stated probability is one that held in every
domain it was fitted on. The fitting identities are stored with the calibration so that a
benchmark can refuse to measure on them.

`reliability_table` and `expected_calibration_error` check a curve on pairs of identities it was
not fitted on: in each band of stated probability, the share of pairs that really are the same
animal.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from reid.calibration import Calibration, _check_pairs, _fit_isotonic

__all__ = [
    "DEFAULT_BANDS",
    "ReliabilityRow",
    "conservative_curve",
    "expected_calibration_error",
    "fit_cross_domain",
    "reliability_table",
]

DEFAULT_BANDS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


class ReliabilityRow(BaseModel):
    """Pairs whose stated probability falls in [low, high): how many, stated vs observed."""

    model_config = ConfigDict(frozen=True)

    low: float
    high: float
    pairs: int
    same_pairs: int
    mean_confidence: float | None
    observed: float | None


def conservative_curve(
    curves: Sequence[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """The pointwise minimum of monotone piecewise-linear curves, on the union of their knots.

    The minimum of non-decreasing functions is non-decreasing; between two knots of the union
    each curve is linear, so the minimum is exact there except where two curves cross, which
    only makes the result a little lower (more cautious), never higher.
    """
    if not curves:
        raise ValueError("need at least one curve")
    xs = np.unique(np.concatenate([np.asarray(x, dtype=np.float64) for x, _ in curves]))
    ys = np.min([np.interp(xs, x, y) for x, y in curves], axis=0)
    return xs, np.maximum.accumulate(np.clip(ys, 0.0, 1.0))


def fit_cross_domain(
    domains: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    model_id: str,
    fit_identities: Mapping[str, Sequence[str]],
    threshold: float | None = None,
    similarity_threshold: float | None = None,
    precision: float | None = None,
    recall: float | None = None,
    target_precision: float = 0.98,
    source: str = "",
) -> Calibration:
    """One isotonic curve per domain's (similarities, is_same) pairs, combined by the minimum.

    The operating point is not chosen here: it belongs to identities the curve was not fitted
    on (see scripts/calibrate.py), and is passed in.
    """
    if not domains:
        raise ValueError("need pairs from at least one domain")
    curves = []
    pairs = same = 0
    for name, (sims, is_same) in domains.items():
        sims_arr, same_arr = _check_pairs(sims, is_same)
        if same_arr.all() or not same_arr.any():
            raise ValueError(f"domain {name!r} needs both same-animal and different-animal pairs")
        curves.append(_fit_isotonic(sims_arr, same_arr))
        pairs += sims_arr.size
        same += int(same_arr.sum())
    xs, ys = conservative_curve(curves)
    # Drop knots that change nothing, to keep the stored curve small.
    keep = np.ones(xs.size, dtype=bool)
    keep[1:-1] = ~((ys[1:-1] == ys[:-2]) & (ys[1:-1] == ys[2:]))
    return Calibration(
        model_id=model_id,
        method="isotonic",
        xs=tuple(float(x) for x in xs[keep]),
        ys=tuple(float(y) for y in ys[keep]),
        target_precision=target_precision,
        threshold=threshold,
        similarity_threshold=similarity_threshold,
        precision=precision,
        recall=recall,
        pairs=pairs,
        same_pairs=same,
        different_pairs=pairs - same,
        source=source,
        domains=tuple(domains),
        fit_identities={k: tuple(sorted(v)) for k, v in fit_identities.items()},
    )


def reliability_table(
    confidence: np.ndarray, is_same: np.ndarray, bands: Sequence[float] = DEFAULT_BANDS
) -> list[ReliabilityRow]:
    """Stated probability vs observed share of same-animal pairs, band by band.

    The last band includes its upper edge (a probability of exactly 1.0 falls in it).
    """
    conf, same = _check_pairs(confidence, is_same)
    edges = np.asarray(bands, dtype=np.float64)
    if edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("bands must be at least two increasing edges")
    rows = []
    for i, (low, high) in enumerate(itertools.pairwise(edges)):
        last = i == edges.size - 2
        mask = (conf >= low) & ((conf <= high) if last else (conf < high))
        n = int(mask.sum())
        rows.append(
            ReliabilityRow(
                low=float(low),
                high=float(high),
                pairs=n,
                same_pairs=int(same[mask].sum()),
                mean_confidence=float(conf[mask].mean()) if n else None,
                observed=float(same[mask].mean()) if n else None,
            )
        )
    return rows


def expected_calibration_error(rows: Sequence[ReliabilityRow]) -> float:
    """Pair-weighted mean |stated − observed| over the bands (0 when every band is honest)."""
    total = sum(row.pairs for row in rows)
    if total == 0:
        raise ValueError("no pairs in any band")
    return float(
        sum(
            row.pairs * abs(row.mean_confidence - row.observed)
            for row in rows
            if row.pairs and row.mean_confidence is not None and row.observed is not None
        )
        / total
    )
