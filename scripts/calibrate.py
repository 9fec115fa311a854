"""Fit, check and store the cross-domain calibration of an EfficientNet-Lite embedder.

    python scripts/calibrate.py [--model efficientnet_lite1] [--models-dir var/models]
        [--shared ../shared] [--out reid/data/<model>.calibration.json]
        [--target-precision 0.98] [--plot calibration.png] [--cache /tmp/petmatch-emb]

Data, split by identity (never by image):
- vk_set2 (real VK cut-outs, query + gallery): animals whose sha256 starts with an even hex
  digit are *fit*, the others *select*. vk_set2 is the only VK set, so its numbers are
  in-sample for the project as a whole (it was also used to choose the embedder).
- DogFaceNet: only the 754 training-side identities of the fixed split (docs/training.md);
  the 178 held-out identities are never read here. Of the 754, those with
  sha1("petmatch-calibration-v1:" + id) % 100 < 50 are *select*, the rest *fit*.

Steps:
1. One isotonic curve per domain on all pairs of its *fit* identities; the stored curve is their
   pointwise minimum (reid.confidence.fit_cross_domain), so no domain sees it over-confident.
2. Reliability table and expected calibration error on all pairs of the *select* identities,
   per domain, printed and (with --plot) drawn.
3. The threshold: scenarios built from the *select* identities the way `petmatch demo --photos`
   builds them (a lost post per animal, a found post with another photo for two thirds of
   them), the bot's decision rule (best lost post, similarity margin 0.05 over the second,
   calibrated confidence ≥ threshold), comment precision pooled over `--scenarios` seeds per
   domain; the threshold is the lowest confidence from which every domain stays at the target
   at every higher threshold. `--bench-json` adds the same rule on the curve of
   `petmatch bench matching` run on select identities (the real pipeline, with segmentation).
4. The fitting identities are stored with the calibration (`fit_identities`), so that
   `petmatch bench matching` refuses to measure on them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SELECT_SALT = "petmatch-calibration-v1"
MARGIN = 0.05


def vk_fit_half(identity: str) -> bool:
    """vk_set2's fixed split (kept in sync with tests/reid/test_calibration_vk_set2.py)."""
    import hashlib

    return int(hashlib.sha256(identity.encode("utf-8")).hexdigest()[0], 16) % 2 == 0


def dfn_select(identity: str) -> bool:
    from reid.training._data import is_validation_identity

    return is_validation_identity(identity, 50, salt=SELECT_SALT)


def embedded(name: str, items, models_dir: Path, cache: Path | None, tag: str):
    """(vectors, identities) of `items`, from the cache when it has them."""
    from reid import build_embedder
    from reid.evaluation import embed_labelled

    path = cache / f"{name}__{tag}.npz" if cache else None
    if path is not None and path.is_file():
        z = np.load(path)
        return z["vectors"], z["ids"]
    result = embed_labelled(build_embedder(name, models_dir=models_dir), items)
    vectors, ids = result.vectors, np.asarray(result.identities)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, vectors=vectors, ids=ids)
    return vectors, ids


def scenario_decisions(vectors, ids, curve, *, identities: int, scenarios: int, seed: int = 0):
    """(confidence, correct) of every found post's best candidate, and the number of pairs."""
    rng = random.Random(seed)
    by_id: dict[str, list[int]] = {}
    for row, identity in enumerate(ids):
        by_id.setdefault(str(identity), []).append(row)
    eligible = sorted(i for i, rows in by_id.items() if len(rows) >= 2)
    conf, correct, pairs = [], [], 0
    for _ in range(scenarios):
        chosen = rng.sample(eligible, min(identities, len(eligible)))
        lost_rows, found_rows = [], []
        for n, identity in enumerate(chosen):
            first, second = rng.sample(by_id[identity], 2)
            lost_rows.append(first)
            if n < max(1, 2 * len(chosen) // 3):
                found_rows.append(second)
        pairs += len(found_rows)
        sims = vectors[found_rows] @ vectors[lost_rows].T
        for r, row in enumerate(found_rows):
            order = np.argsort(-sims[r])
            best = sims[r, order[0]]
            second = sims[r, order[1]] if len(order) > 1 else -1.0
            if best - second < MARGIN:
                continue
            conf.append(float(np.interp(best, *curve)))
            correct.append(ids[lost_rows[order[0]]] == ids[row])
    return np.asarray(conf), np.asarray(correct, dtype=bool), pairs


def lowest_threshold(conf, correct, target: float) -> float | None:
    """Lowest t from which precision(conf ≥ t') ≥ target holds for every t' ≥ t.

    Stricter than "the lowest t whose precision reaches the target": a wrong comment at a
    high confidence is the failure that matters most, and it must not be averaged away by
    many right ones below it.
    """
    best = None
    for t in np.unique(conf)[::-1]:
        kept = conf >= t
        if correct[kept].mean() < target:
            break
        best = float(t)
    return best


def stable_threshold(curve: list[dict], target: float) -> float | None:
    """Lowest threshold from which precision stays ≥ target at every higher threshold."""
    best = None
    for row in sorted(curve, key=lambda r: -r["threshold"]):
        if row["precision"] is None or row["precision"] < target:
            break
        best = row["threshold"]
    return best


def at_threshold(conf, correct, pairs: int, t: float | None) -> dict:
    if t is None:
        return {"comments": 0, "precision": None, "recall": 0.0}
    kept = conf >= t
    right = int(correct[kept].sum())
    return {
        "comments": int(kept.sum()),
        "right": right,
        "precision": right / kept.sum() if kept.any() else None,
        "recall": right / pairs if pairs else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet_lite1")
    parser.add_argument("--models-dir", type=Path, default=REPO / "var" / "models")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--target-precision", type=float, default=0.98)
    parser.add_argument("--scenarios", type=int, default=200)
    parser.add_argument("--identities", type=int, default=40)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument(
        "--bench-json",
        type=Path,
        action="append",
        default=[],
        help="`petmatch bench matching --json` output on select identities (repeatable): the "
        "threshold is raised to where the real pipeline's comment precision stays at the target",
    )
    args = parser.parse_args()

    from reid._efficientnet import LITE_SPECS
    from reid.calibration import pair_similarities
    from reid.confidence import expected_calibration_error, fit_cross_domain, reliability_table
    from reid.evaluation import list_labelled_images
    from reid.export import prepare_efficientnet_lite
    from reid.training._data import split_identities

    spec = LITE_SPECS[args.model]
    prepare_efficientnet_lite(args.model, args.models_dir)
    root = args.shared / "data" / "reid"
    vk_items = list_labelled_images(root / "vk_set2" / "query") + list_labelled_images(
        root / "vk_set2" / "gallery"
    )
    dfn_items = list_labelled_images(root / "dogfacenet")
    train_ids, _held = split_identities(sorted({i.identity for i in dfn_items}), 20)
    train = set(train_ids)
    dfn_items = [i for i in dfn_items if i.identity in train]  # the 178 are never read
    data = {
        "vk_set2": embedded(args.model, vk_items, args.models_dir, args.cache, "vk_set2"),
        "dogfacenet": embedded(args.model, dfn_items, args.models_dir, args.cache, "dfn754"),
    }
    is_select = {"vk_set2": lambda i: not vk_fit_half(i), "dogfacenet": dfn_select}

    fit_pairs, fit_ids, select = {}, {}, {}
    for name, (vectors, ids) in data.items():
        mask = np.array([is_select[name](str(i)) for i in ids])
        fit_pairs[name] = pair_similarities(vectors[~mask], ids[~mask])
        fit_ids[name] = sorted({str(i) for i in ids[~mask]})
        select[name] = (vectors[mask], ids[mask])
    draft = fit_cross_domain(fit_pairs, model_id=spec.model_id, fit_identities=fit_ids)
    curve = (np.asarray(draft.xs), np.asarray(draft.ys))

    report: dict = {"model": spec.model_id, "domains": {}}
    thresholds = []
    decisions = {}
    for name, (vectors, ids) in select.items():
        sims, same = pair_similarities(vectors, ids)
        rows = reliability_table(np.interp(sims, *curve), same)
        n_ids = min(args.identities, len({str(i) for i in ids}) - 1)
        conf, correct, pairs = scenario_decisions(
            vectors, ids, curve, identities=n_ids, scenarios=args.scenarios
        )
        decisions[name] = (conf, correct, pairs)
        t = lowest_threshold(conf, correct, args.target_precision)
        thresholds.append(t)
        report["domains"][name] = {
            "fit_identities": len(fit_ids[name]),
            "select_identities": len({str(i) for i in ids}),
            "select_pairs": int(sims.size),
            "ece": expected_calibration_error(rows),
            # The bottom band holds almost every pair and is easy; the bands a comment can
            # come from are the ones that matter.
            "ece_above_0.1": expected_calibration_error([r for r in rows if r.low >= 0.1]),
            "reliability": [r.model_dump() for r in rows],
            "scenario_identities": n_ids,
            "own_threshold": t,
        }
    for bench in args.bench_json:
        # The pipeline segments the photos first and sees reposts and second photos, which
        # the scenarios above do not: its own curve on select identities has the last word.
        bench_curve = json.loads(bench.read_text(encoding="utf-8"))["curve"]
        t_bench = stable_threshold(bench_curve, args.target_precision)
        report.setdefault("bench", []).append({"file": str(bench), "threshold": t_bench})
        thresholds.append(t_bench)
    threshold = None if None in thresholds else max(thresholds)  # type: ignore[type-var]
    for name, (conf, correct, pairs) in decisions.items():
        report["domains"][name]["at_threshold"] = at_threshold(conf, correct, pairs, threshold)
    from reid.calibration import _inverse

    source = (
        f"scripts/calibrate.py: isotonic per domain on all pairs of the fit identities "
        f"(vk_set2 even-sha256 half: {len(fit_ids['vk_set2'])} animals; DogFaceNet training "
        f"side, calibration-fit half: {len(fit_ids['dogfacenet'])} dogs), pointwise minimum; "
        f"threshold for comment precision {args.target_precision} on {args.scenarios} "
        f"scenarios per domain from the select identities; {spec.input_size[0]} px "
        "letterboxed, flip-averaged."
    )
    cal = draft.model_copy(
        update={
            "threshold": threshold,
            "similarity_threshold": None if threshold is None else _inverse(*curve, threshold),
            "target_precision": args.target_precision,
            "precision": min(
                (d["at_threshold"]["precision"] or 0.0) for d in report["domains"].values()
            ),
            "recall": min(d["at_threshold"]["recall"] for d in report["domains"].values()),
            "source": source,
        }
    )
    out = args.out or REPO / "reid" / "data" / f"{args.model}.calibration.json"
    cal.save(out)
    report.update(out=str(out), threshold=threshold, similarity_threshold=cal.similarity_threshold)
    if args.plot:
        plot(report, args.plot)
    print_report(report)
    return 0


def print_report(report: dict) -> None:
    out = sys.stdout
    for name, d in report["domains"].items():
        out.write(
            f"\n{name}: reliability on {d['select_identities']} select identities "
            f"({d['select_pairs']} pairs), ECE {d['ece']:.4f}, "
            f"ECE over stated >= 0.1: {d['ece_above_0.1']:.4f}\n"
        )
        out.write("  band          pairs   same   stated  observed\n")
        for r in d["reliability"]:
            if r["pairs"]:
                out.write(
                    f"  {r['low']:.2f}-{r['high']:.2f}  {r['pairs']:8d} {r['same_pairs']:6d}"
                    f"   {r['mean_confidence']:.3f}   {r['observed']:.3f}\n"
                )
        out.write(
            f"  own threshold {d['own_threshold']}, at chosen: {json.dumps(d['at_threshold'])}\n"
        )
    out.write(
        f"\nthreshold {report['threshold']} (similarity {report['similarity_threshold']})"
        f" -> {report['out']}\n"
    )


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for name, d in report["domains"].items():
        rows = [r for r in d["reliability"] if r["pairs"]]
        ax.plot(
            [r["mean_confidence"] for r in rows],
            [r["observed"] for r in rows],
            marker="o",
            label=f"{name} (ECE {d['ece']:.3f})",
        )
    ax.set_xlabel("stated probability (select identities)")
    ax.set_ylabel("observed share of same-animal pairs")
    ax.set_title(report["model"])
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
