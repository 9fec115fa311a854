"""`petmatch calibrate --from-reviews`: refit the confidence calibration with the pairs
reviewers decided on the desk, on top of reid.calibration's public API.

Reviews come from one band of similarities (the uncertain band and the held pairs), so alone
they would bend the curve: they are added to the existing fitting pairs, never used alone.
A share of the reviews is held back (by a hash of the pair, so the split is stable) and both
the current and the refitted calibration are judged on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot import storage
from bot.config import Settings

__all__ = [
    "MIN_REVIEWED_PAIRS",
    "ReviewCalibrationError",
    "calibrate_from_reviews",
    "refit_with_reviews",
]

MIN_REVIEWED_PAIRS = 50


class ReviewCalibrationError(Exception):
    """The reviews cannot support a refit (too few, one answer only, no model file...)."""


def held_back(match_id: int, percent: int) -> bool:
    digest = hashlib.sha256(f"review-holdout:{match_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def refit_with_reviews(
    current: Any,
    reviewed: Sequence[tuple[int, float, bool]],
    fit_sims: np.ndarray,
    fit_same: np.ndarray,
    *,
    holdout_percent: int = 30,
    source: str = "",
) -> tuple[Any, dict[str, Any]]:
    """A calibration fitted on the existing pairs plus the non-held-back reviews, and a report
    of the current and the new one on the held-back reviews."""
    from reid.calibration import fit_calibration

    same_count = sum(1 for _, _, same in reviewed if same)
    if len(reviewed) < MIN_REVIEWED_PAIRS or same_count in (0, len(reviewed)):
        raise ReviewCalibrationError(
            f"{len(reviewed)} reviewed pairs ({same_count} same, "
            f"{len(reviewed) - same_count} different): a refit needs at least "
            f"{MIN_REVIEWED_PAIRS}, with both answers among them"
        )
    held = [r for r in reviewed if held_back(r[0], holdout_percent)]
    used = [r for r in reviewed if not held_back(r[0], holdout_percent)]
    sims = np.concatenate([np.asarray(fit_sims, dtype=np.float64), [s for _, s, _ in used]])
    same = np.concatenate([np.asarray(fit_same, dtype=bool), [x for _, _, x in used]])
    refit = fit_calibration(
        sims,
        same,
        method=current.method,
        target_precision=current.target_precision,
        model_id=current.model_id,
        source=source,
    )
    held_sims = np.asarray([s for _, s, _ in held], dtype=np.float64)
    held_same = np.asarray([x for _, _, x in held], dtype=bool)
    report = {
        "reviewed": len(reviewed),
        "reviewed_same": same_count,
        "fit_reviews": len(used),
        "fit_set_pairs": int(np.asarray(fit_sims).size),
        "held_back": len(held),
        "before": _judge(current, held_sims, held_same),
        "after": _judge(refit, held_sims, held_same),
    }
    return refit, report


def _judge(calibration: Any, sims: np.ndarray, same: np.ndarray) -> dict[str, Any]:
    """How the calibration's operating point does on held-back reviewed pairs."""
    from reid.calibration import precision_recall_table

    cut = calibration.similarity_threshold
    row: dict[str, Any] = {
        "threshold": None if calibration.threshold is None else round(calibration.threshold, 4),
        "similarity_threshold": None if cut is None else round(cut, 4),
        "precision": None,
        "recall": None,
        "different_above": 0,
    }
    if cut is None or sims.size == 0:
        return row
    (result,) = precision_recall_table(sims, same, [cut])
    row.update(
        precision=round(result.precision, 4),
        recall=round(result.recall, 4),
        different_above=int(result.predicted - result.true_positives),
    )
    return row


def calibrate_from_reviews(
    settings: Settings,
    sessions: storage.SessionFactory,
    *,
    fit_set: Path,
    holdout_percent: int,
    save: bool,
) -> dict[str, Any]:
    """Embed the existing fitting set, read the reviews, refit, and save beside the model."""
    import reid
    from bot.pipeline import load_calibration
    from bot.storage import reviews
    from reid.calibration import calibration_path, pair_similarities
    from reid.evaluation import embed_labelled, list_labelled_images

    kwargs: dict[str, Any] = {"models_dir": settings.models_dir}
    if settings.reid.weights is not None:
        kwargs["weights"] = settings.reid.weights
    embedder = reid.build_embedder(settings.reid.model, **kwargs)
    current = load_calibration(settings, embedder)
    with storage.session_scope(sessions) as session:
        reviewed = reviews.reviewed_pairs(session, model_id=embedder.model_id)
    if len(reviewed) < MIN_REVIEWED_PAIRS:  # before the slow embedding below
        refit_with_reviews(current, reviewed, np.zeros(0), np.zeros(0, dtype=bool))
    folders = [fit_set / "query", fit_set / "gallery"]
    if not all(f.is_dir() for f in folders):
        raise ReviewCalibrationError(f"{fit_set} needs query/ and gallery/ folders")
    items = [item for folder in folders for item in list_labelled_images(folder)]
    embedded = embed_labelled(embedder, items)
    ids = np.asarray(embedded.identities)
    # The same identity split scripts/calibrate.py fits on; the other half stays held out
    # for tests/reid/test_calibration_vk_set2.py.
    fit_mask = np.array(
        [int(hashlib.sha256(i.encode("utf-8")).hexdigest()[0], 16) % 2 == 0 for i in ids]
    )
    fit_sims, fit_same = pair_similarities(embedded.vectors[fit_mask], ids[fit_mask])
    refit, report = refit_with_reviews(
        current,
        reviewed,
        fit_sims,
        fit_same,
        holdout_percent=holdout_percent,
        source=(
            f"petmatch calibrate --from-reviews: {current.method} on the fit half of "
            f"{fit_set.name} ({fit_sims.size} pairs) plus {report_fit(reviewed, holdout_percent)} "
            "pairs reviewed on the desk"
        ),
    )
    onnx_path = getattr(embedder, "onnx_path", None)
    if onnx_path is None:
        raise ReviewCalibrationError("the embedder has no model file to save the calibration by")
    target = calibration_path(onnx_path)
    report["saved"] = str(refit.save(target)) if save else None
    return report


def report_fit(reviewed: Sequence[tuple[int, float, bool]], holdout_percent: int) -> int:
    return sum(1 for r in reviewed if not held_back(r[0], holdout_percent))
