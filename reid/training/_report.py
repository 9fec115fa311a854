"""Evaluation reports for trained checkpoints: retrieval metrics, pair-level precision/recall,
similarity histograms, calibration, and activation maps saved as image grids."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from reid._torch.osnet import OSNet, load_osnet
from reid.calibration import fit_calibration, pair_similarities, precision_recall_table
from reid.evaluation import evaluate_leave_one_out, evaluate_query_gallery, list_labelled_images
from reid.training._data import LabelledImages, load_images, plain_batch, split_identities
from reid.training._train import embed_images, pick_device

logger = logging.getLogger("petmatch.reid")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_pairs(
    similarities: np.ndarray, same: np.ndarray, table: list[dict[str, float]], out: Path
) -> None:
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    bins = np.linspace(-0.2, 1.0, 61)
    ax1.hist(similarities[~same], bins=bins, alpha=0.6, density=True, label="different animals")
    ax1.hist(similarities[same], bins=bins, alpha=0.6, density=True, label="same animal")
    ax1.set_xlabel("cosine similarity")
    ax1.set_title("pair similarities")
    ax1.legend()
    t = [row["threshold"] for row in table]
    for key in ("precision", "recall", "f1"):
        ax2.plot(t, [row[key] for row in table], label=key)
    ax2.set_xlabel("threshold")
    ax2.set_title("pair-level precision / recall / F1")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def write_evaluation_report(
    checkpoint: Path,
    out_dir: Path,
    *,
    val_query: Path | None = None,
    val_gallery: Path | None = None,
    holdout_data: Path | None = None,
    holdout_percent: int = 20,
    target_precision: float = 0.95,
    device: str = "auto",
) -> dict[str, Any]:
    """Metrics, pair precision/recall table and plot, and calibration for one checkpoint.

    Writes `report.json`, `pairs.png` and `calibration.json` (fitted on the validation pairs)
    into `out_dir`; returns the report.
    """
    model, meta = load_osnet(checkpoint)
    dev = pick_device(device)
    model.to(dev)
    size = tuple(meta.get("input_size") or (256, 128))
    box = bool(meta.get("letterbox", size[0] == size[1]))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"checkpoint": str(checkpoint), "model_id": meta.get("model_id")}
    pair_sets: list[tuple[np.ndarray, np.ndarray]] = []
    if holdout_data is not None:
        items = list_labelled_images(holdout_data)
        _, held = split_identities(sorted({i.identity for i in items}), holdout_percent)
        keep = set(held)
        data = load_images([i for i in items if i.identity in keep], size, box)  # type: ignore[arg-type]
        vectors = embed_images(model, data.images, dev)
        report["holdout"] = evaluate_leave_one_out(vectors, data.identities).model_dump()
    if val_query is not None and val_gallery is not None:
        q = load_images(list_labelled_images(val_query), size, box)  # type: ignore[arg-type]
        g = load_images(list_labelled_images(val_gallery), size, box)  # type: ignore[arg-type]
        qv, gv = embed_images(model, q.images, dev), embed_images(model, g.images, dev)
        report["val"] = evaluate_query_gallery(qv, q.identities, gv, g.identities).model_dump()
        pair_sets.append(pair_similarities(np.concatenate([qv, gv]), q.identities + g.identities))
    if pair_sets:
        sims = np.concatenate([p[0] for p in pair_sets])
        same = np.concatenate([p[1] for p in pair_sets])
        thresholds = [round(float(t), 2) for t in np.arange(0.3, 1.0, 0.05)]
        report["pairs"] = {"same": int(same.sum()), "different": int((~same).sum())}
        table = [row.model_dump() for row in precision_recall_table(sims, same, thresholds)]
        report["threshold_table"] = table
        _plot_pairs(sims, same, table, out_dir / "pairs.png")
        calibration = fit_calibration(
            sims,
            same,
            target_precision=target_precision,
            model_id=str(meta.get("model_id", "unknown")),
            source="validation pairs (query ∪ gallery)",
        )
        calibration.save(out_dir / "calibration.json")
        report["calibration"] = calibration.model_dump(
            include={"method", "threshold", "similarity_threshold", "precision", "recall"}
        )
    (out_dir / "report.json").write_text(
        json.dumps(report, indent=2, default=str), encoding="utf-8"
    )
    return report


def activation_maps(
    model: OSNet, images: LabelledImages | np.ndarray, device: torch.device
) -> np.ndarray:
    """Channel-summed |last-conv activations|, upsampled and overlaid on each image (uint8)."""
    fitted = images.images if isinstance(images, LabelledImages) else images
    model.eval()
    with torch.no_grad():
        maps = model.featuremaps(torch.from_numpy(plain_batch(fitted)).to(device))
    maps = maps.abs().sum(dim=1).cpu().numpy()
    overlays = []
    for img, amap in zip(fitted, maps, strict=True):
        amap = cv2.resize(amap, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        amap = (amap - amap.min()) / max(float(amap.max() - amap.min()), 1e-12)
        heat = cv2.applyColorMap((amap * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
        overlays.append((0.5 * img + 0.5 * heat).astype(np.uint8))
    return np.stack(overlays)


def write_activation_grid(
    checkpoints: Sequence[Path], image_paths: Sequence[Path], out_path: Path, device: str = "auto"
) -> Path:
    """One row per checkpoint (images with their activation maps), saved as one PNG grid."""
    from reid.evaluation import LabelledImage

    dev = pick_device(device)
    rows = []
    for checkpoint in checkpoints:
        model, meta = load_osnet(checkpoint)
        size = tuple(meta.get("input_size") or (256, 128))
        box = bool(meta.get("letterbox", size[0] == size[1]))
        items = [LabelledImage(path=p, identity=p.parent.name) for p in image_paths]
        data = load_images(items, size, box)  # type: ignore[arg-type]
        overlays = activation_maps(model.to(dev), data, dev)
        row = np.concatenate(
            [
                np.concatenate([img, ov], axis=0)
                for img, ov in zip(data.images, overlays, strict=True)
            ],
            axis=1,
        )
        label = f"epoch {meta.get('epoch', '?')}"
        cv2.putText(row, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    grid = np.concatenate(rows, axis=0)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_path), grid[:, :, ::-1])
    return out_path
