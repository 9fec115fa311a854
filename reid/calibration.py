"""Calibrated confidence: cosine similarity → probability that two crops show the same animal.

Fitted on labelled pairs (isotonic or logistic), stored next to the model's ONNX file as
`<model>.calibration.json`, with the operating threshold chosen to reach a target precision
on the validation pairs. The probability is P(same | similarity) under the mix of same and
different pairs it was fitted on: all pairs of a labelled set, where different pairs far
outnumber same ones, which is the conservative side for a bot that must not comment wrongly.

    sims, is_same = pair_similarities(vectors, labels)
    cal = fit_calibration(sims, is_same, method="isotonic", target_precision=0.95,
                          model_id=embeddings.model_id)
    cal.save(calibration_path(onnx_path))
    MatchPolicy(curve_xs=cal.xs, curve_ys=cal.ys, threshold=cal.threshold, ...)
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Literal, overload

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Calibration",
    "PrecisionRecallRow",
    "calibration_path",
    "fit_calibration",
    "packaged_calibration",
    "pair_similarities",
    "precision_recall_table",
]

log = logging.getLogger("petmatch.reid")

Method = Literal["isotonic", "logistic"]
_SUFFIX = ".calibration.json"


class PrecisionRecallRow(BaseModel):
    """Pairs with similarity ≥ `threshold` are called "same"; how good is that call."""

    model_config = ConfigDict(frozen=True)

    threshold: float
    predicted: int
    true_positives: int
    precision: float
    recall: float
    f1: float


class Calibration(BaseModel):
    """A monotone curve from similarity to probability, and the operating point chosen on it."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    method: Method
    xs: tuple[float, ...] = Field(min_length=2)
    ys: tuple[float, ...] = Field(min_length=2)
    target_precision: float = Field(gt=0, le=1)
    threshold: float | None = Field(
        description="lowest calibrated probability whose precision reaches the target; "
        "None when no threshold does"
    )
    similarity_threshold: float | None = Field(description="the same cut on raw similarity")
    precision: float | None
    recall: float | None
    pairs: int
    same_pairs: int
    different_pairs: int
    source: str = ""
    # Cross-domain calibrations (reid.confidence) name their domains and the identities each
    # was fitted on, so that nobody measures the bot on animals its curve has already seen.
    domains: tuple[str, ...] = ()
    fit_identities: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_curve(self) -> Calibration:
        xs, ys = np.asarray(self.xs), np.asarray(self.ys)
        if xs.shape != ys.shape or np.any(np.diff(xs) <= 0) or np.any(np.diff(ys) < 0):
            raise ValueError("the curve needs equal-length xs strictly increasing, ys monotone")
        if ys.min() < 0 or ys.max() > 1:
            raise ValueError("curve ys are probabilities in [0, 1]")
        return self

    @property
    def reached_target(self) -> bool:
        return self.threshold is not None

    def fitted_on(self, identities: Sequence[str]) -> set[str]:
        """Those of `identities` that some domain of this calibration was fitted on."""
        fitted = {name for names in self.fit_identities.values() for name in names}
        return fitted & set(identities)

    @overload
    def confidence(self, similarity: float) -> float: ...
    @overload
    def confidence(self, similarity: np.ndarray | Sequence[float]) -> np.ndarray: ...
    def confidence(self, similarity: float | np.ndarray | Sequence[float]) -> float | np.ndarray:
        """Calibrated probability of "same animal", element-wise, by linear interpolation."""
        out = np.interp(np.asarray(similarity, dtype=np.float64), self.xs, self.ys)
        return float(out) if np.ndim(out) == 0 else out

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically (temp file in the same folder, then `os.replace`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.model_dump_json(indent=2))
                fh.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read a calibration written by `save`; `FileNotFoundError` when absent."""
        return cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))


def calibration_path(onnx_path: str | Path) -> Path:
    """`models/efficientnet_lite0.onnx` → `models/efficientnet_lite0.calibration.json`."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.stem + _SUFFIX)


def packaged_calibration(name: str) -> Calibration:
    """The calibration shipped in `reid/data/<name>.calibration.json` (see scripts/calibrate.py)."""
    resource = resources.files("reid") / "data" / f"{name}{_SUFFIX}"
    if not resource.is_file():
        raise FileNotFoundError(f"no packaged calibration for {name!r} (reid/data/{name}{_SUFFIX})")
    return Calibration.model_validate(json.loads(resource.read_text(encoding="utf-8")))


def pair_similarities(
    vectors: np.ndarray, labels: Sequence[str] | Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity and same-identity flag of every unordered pair (i < j).

    Vectors are L2-normalized here (a copy), so raw features work too.
    """
    matrix = np.asarray(vectors, dtype=np.float64)
    labels_arr = np.asarray(labels)
    if matrix.ndim != 2 or matrix.shape[0] != labels_arr.shape[0]:
        raise ValueError(
            f"need (n, d) vectors and n labels, got {matrix.shape} / {labels_arr.shape}"
        )
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if matrix.shape[0] and float(norms.min()) <= 0:
        raise ValueError("a zero vector has no direction")
    unit = matrix / norms
    rows, cols = np.triu_indices(matrix.shape[0], k=1)
    # One (n, n) product, not n²/2 gathered row pairs: thousands of crops fit in memory.
    sims = np.clip((unit @ unit.T)[rows, cols], -1.0, 1.0)
    return sims, labels_arr[rows] == labels_arr[cols]


def precision_recall_table(
    sims: np.ndarray, is_same: np.ndarray, thresholds: Sequence[float] | np.ndarray
) -> list[PrecisionRecallRow]:
    """Precision, recall and F1 of "similarity ≥ t means same" for each threshold t."""
    sims, is_same = _check_pairs(sims, is_same)
    positives = int(is_same.sum())
    order = np.argsort(-sims, kind="stable")
    sorted_sims = sims[order]
    cum_tp = np.concatenate([[0], np.cumsum(is_same[order])])
    rows = []
    for t in np.asarray(thresholds, dtype=np.float64):
        predicted = int(np.searchsorted(-sorted_sims, -t, side="right"))
        tp = int(cum_tp[predicted])
        precision = tp / predicted if predicted else 1.0
        recall = tp / positives if positives else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            PrecisionRecallRow(
                threshold=float(t),
                predicted=predicted,
                true_positives=tp,
                precision=precision,
                recall=recall,
                f1=f1,
            )
        )
    return rows


def fit_calibration(
    sims: np.ndarray,
    is_same: np.ndarray,
    *,
    method: Method = "isotonic",
    target_precision: float = 0.95,
    model_id: str = "unknown",
    source: str = "",
) -> Calibration:
    """Fit the curve on labelled pairs and pick the lowest threshold reaching `target_precision`."""
    sims, is_same = _check_pairs(sims, is_same)
    if not 0 < target_precision <= 1:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
    if is_same.all() or not is_same.any():
        raise ValueError("calibration needs both same-animal and different-animal pairs")
    if method == "isotonic":
        xs, ys = _fit_isotonic(sims, is_same)
    elif method == "logistic":
        xs, ys = _fit_logistic(sims, is_same)
    else:
        raise ValueError(f"unknown method {method!r}; use 'isotonic' or 'logistic'")
    conf = np.interp(sims, xs, ys)
    threshold, precision, recall = _operating_point(conf, is_same, target_precision)
    sim_threshold = _inverse(xs, ys, threshold) if threshold is not None else None
    if threshold is None:
        log.warning(
            "no threshold reaches precision %.3f on %d pairs (%s)",
            target_precision,
            sims.size,
            model_id,
        )
    return Calibration(
        model_id=model_id,
        method=method,
        xs=tuple(float(x) for x in xs),
        ys=tuple(float(y) for y in ys),
        target_precision=target_precision,
        threshold=threshold,
        similarity_threshold=sim_threshold,
        precision=precision,
        recall=recall,
        pairs=int(sims.size),
        same_pairs=int(is_same.sum()),
        different_pairs=int((~is_same).sum()),
        source=source,
    )


def _check_pairs(sims: np.ndarray, is_same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sims_arr = np.asarray(sims, dtype=np.float64).reshape(-1)
    same_arr = np.asarray(is_same, dtype=bool).reshape(-1)
    if sims_arr.shape != same_arr.shape:
        raise ValueError(f"{sims_arr.size} similarities for {same_arr.size} labels")
    if not np.isfinite(sims_arr).all():
        raise ValueError("similarities must be finite")
    return sims_arr, same_arr


def _fit_isotonic(sims: np.ndarray, is_same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(sims, is_same.astype(np.float64))
    xs = np.asarray(iso.X_thresholds_, dtype=np.float64)
    ys = np.clip(np.asarray(iso.y_thresholds_, dtype=np.float64), 0.0, 1.0)
    xs, first = np.unique(xs, return_index=True)
    ys = np.maximum.accumulate(ys[first])
    # Cover the whole cosine range so the curve is defined for every similarity.
    if xs[0] > -1.0:
        xs, ys = np.concatenate([[-1.0], xs]), np.concatenate([[ys[0]], ys])
    if xs[-1] < 1.0:
        xs, ys = np.concatenate([xs, [1.0]]), np.concatenate([ys, [ys[-1]]])
    return xs, ys


def _fit_logistic(sims: np.ndarray, is_same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e4)
    model.fit(sims[:, None], is_same.astype(int))
    if float(model.coef_[0, 0]) <= 0:
        raise ValueError("similarity does not rise with sameness on these pairs; cannot calibrate")
    xs = np.linspace(-1.0, 1.0, 401)
    ys = np.maximum.accumulate(model.predict_proba(xs[:, None])[:, 1])
    return xs, ys


def _operating_point(
    conf: np.ndarray, is_same: np.ndarray, target: float
) -> tuple[float | None, float | None, float | None]:
    """Lowest threshold t on `conf` with precision(conf ≥ t) ≥ target, and (precision, recall)."""
    order = np.argsort(-conf, kind="stable")
    c_sorted = conf[order]
    tp = np.cumsum(is_same[order])
    # Only cut between distinct values: position i is the last index of a run of equal conf.
    last = np.flatnonzero(np.concatenate([c_sorted[1:] != c_sorted[:-1], [True]]))
    predicted = last + 1
    precision = tp[last] / predicted
    ok = np.flatnonzero(precision >= target)
    if ok.size == 0:
        return None, None, None
    # Lowest threshold = the largest prefix (furthest down the sorted list) that qualifies.
    best = ok[-1]
    positives = int(is_same.sum())
    return (
        float(c_sorted[last[best]]),
        float(precision[best]),
        float(tp[last[best]] / positives),
    )


def _inverse(xs: np.ndarray, ys: np.ndarray, t: float) -> float:
    """Smallest x with curve(x) ≥ t on the piecewise-linear, non-decreasing curve."""
    i = int(np.searchsorted(ys, t, side="left"))
    if i == 0:
        return float(xs[0])
    if i >= len(ys):
        return float(xs[-1])
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return float(x0 + (t - y0) * (x1 - x0) / (y1 - y0)) if y1 > y0 else float(x1)
