"""Fit the calibration shipped for the zero-shot EfficientNet-Lite0 baseline.

Regenerates `reid/data/efficientnet_lite0.calibration.json`:

    .venv/bin/python scripts/calibrate.py [--models-dir var/models] [--shared ../shared]
                                          [--out reid/data/efficientnet_lite0.calibration.json]

What it does: embeds every image of `vk_set2` (query and gallery together: 139 crops of
39 animals, the in-domain set), splits the animals by identity into a *fit* half and a
*held-out* half (identity whose sha256 starts with an even hex digit → fit), fits an
isotonic curve on all pairs of the fit half, picks the lowest threshold with precision ≥ 0.95
on those pairs, and prints how that threshold does on the held-out half's pairs. The
held-out half is what `tests/reid/test_calibration_vk_set2.py` checks "different animals
stay below the threshold" on, so the test never sees a pair the curve was fitted on.

Needs torch once, to export the ONNX file if `--models-dir` lacks it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def fit_half(identity: str) -> bool:
    """The fixed identity split: fit on these, hold out the rest (kept in sync with the test)."""
    return int(hashlib.sha256(identity.encode("utf-8")).hexdigest()[0], 16) % 2 == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=REPO / "var" / "models")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument(
        "--out", type=Path, default=REPO / "reid" / "data" / "efficientnet_lite0.calibration.json"
    )
    parser.add_argument("--method", choices=["isotonic", "logistic"], default="isotonic")
    parser.add_argument("--target-precision", type=float, default=0.95)
    args = parser.parse_args()

    from reid import EFFICIENTNET_LITE0_ID, build_embedder, efficientnet_lite0_path
    from reid.calibration import fit_calibration, pair_similarities, precision_recall_table
    from reid.evaluation import embed_labelled, list_labelled_images

    if not efficientnet_lite0_path(args.models_dir).is_file():
        from reid.export import prepare_efficientnet_lite0

        prepare_efficientnet_lite0(args.models_dir)
    root = args.shared / "data" / "reid" / "vk_set2"
    items = list_labelled_images(root / "query") + list_labelled_images(root / "gallery")
    embedder = build_embedder("efficientnet_lite0", models_dir=args.models_dir)
    embedded = embed_labelled(embedder, items)
    ids = np.asarray(embedded.identities)
    fit_mask = np.array([fit_half(i) for i in ids])

    sims, same = pair_similarities(embedded.vectors[fit_mask], ids[fit_mask])
    source = (
        f"scripts/calibrate.py: {args.method} on all pairs of vk_set2 (query+gallery) "
        f"identities with an even first sha256 hex digit ({len(set(ids[fit_mask]))} animals, "
        f"{int(fit_mask.sum())} crops); letterboxed 224x224, flip-averaged. The other "
        f"{len(set(ids[~fit_mask]))} animals are held out for tests."
    )
    cal = fit_calibration(
        sims,
        same,
        method=args.method,
        target_precision=args.target_precision,
        model_id=EFFICIENTNET_LITE0_ID,
        source=source,
    )
    cal.save(args.out)

    held_sims, held_same = pair_similarities(embedded.vectors[~fit_mask], ids[~fit_mask])
    report = {
        "out": str(args.out),
        "fit": {
            "pairs": cal.pairs,
            "same": cal.same_pairs,
            "threshold": cal.threshold,
            "similarity_threshold": cal.similarity_threshold,
            "precision": cal.precision,
            "recall": cal.recall,
        },
        "held_out": {"pairs": int(held_sims.size), "same": int(held_same.sum())},
    }
    if cal.similarity_threshold is not None:
        (row,) = precision_recall_table(held_sims, held_same, [cal.similarity_threshold])
        report["held_out"].update(
            precision=row.precision,
            recall=row.recall,
            different_above=int(row.predicted - row.true_positives),
            different=int((~held_same).sum()),
        )
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
