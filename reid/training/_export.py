"""Shipping a trained checkpoint: ONNX + sidecar JSON + a model card (markdown)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from reid._ort import OnnxModelSpec
from reid._torch.osnet import load_osnet
from reid.export import export_onnx, file_sha256, write_sidecar

logger = logging.getLogger("petmatch.reid")

# Known training sources and the terms a model trained on them inherits.
DATA_LICENCES: dict[str, str] = {
    "dogfacenet": "DogFaceNet (Mougeot et al. 2019), CC BY 4.0: attribution required",
    "vk_set2": "kell18/sobaken-id VK photos, no licence stated: validation only, never trained on",
}
PERSON_INIT_TERMS = (
    "initialised from torchreid OSNet weights trained on MSMT17 (person re-ID), whose terms "
    "allow research use only: this model inherits that restriction"
)


class ExportedModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    onnx: Path
    sidecar: Path
    card: Path
    calibration: Path | None
    model_id: str


def export_checkpoint(
    checkpoint: Path,
    out_dir: Path,
    *,
    date: str,
    report: dict[str, Any] | None = None,
    calibration: Path | None = None,
    name: str | None = None,
) -> ExportedModel:
    """Write `<name>.onnx`, `<name>.json` (sidecar) and `<name>.md` (model card) into `out_dir`.

    `report` is an evaluation summary (e.g. from `write_evaluation_report`) whose numbers go
    into the card; `calibration` is copied next to the model as `<name>.calibration.json`.
    """
    checkpoint = Path(checkpoint)
    model, meta = load_osnet(checkpoint)
    if "input_size" not in meta:
        raise ValueError(f"{checkpoint} is not a `petmatch reid train` checkpoint")
    h, w = (int(v) for v in meta["input_size"])  # type: ignore[union-attr]
    name = name or f"{meta['arch']}_pets_{h}x{w}"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(model, out_dir / f"{name}.onnx", (h, w))
    spec = OnnxModelSpec(
        model_id=str(meta["model_id"]),
        input_size=(h, w),
        letterbox=bool(meta["letterbox"]),
        mean=tuple(meta["mean"]),  # type: ignore[arg-type]
        std=tuple(meta["std"]),  # type: ignore[arg-type]
    )
    sidecar = write_sidecar(onnx_path, spec)
    calib_out = None
    if calibration is not None:
        calib_out = out_dir / f"{name}.calibration.json"
        shutil.copyfile(calibration, calib_out)
    card = out_dir / f"{name}.md"
    card.write_text(
        model_card(meta, spec, onnx_path, date=date, report=report, calibration=calib_out),
        encoding="utf-8",
    )
    logger.info("exported %s → %s", checkpoint, onnx_path)
    return ExportedModel(
        onnx=onnx_path, sidecar=sidecar, card=card, calibration=calib_out, model_id=spec.model_id
    )


def _metrics_lines(record: dict[str, Any]) -> list[str]:
    lines = []
    for prefix, label in (
        ("val", "vk_set2 query→gallery"),
        ("holdout", "held-out DogFaceNet identities, leave-one-out"),
    ):
        if f"{prefix}_rank1" in record:
            rank1, mean_ap = record[f"{prefix}_rank1"], record[f"{prefix}_mAP"]
            rank5 = record.get(f"{prefix}_rank5", float("nan"))
            lines.append(f"| {label} | {rank1:.3f} | {rank5:.3f} | {mean_ap:.3f} |")
    return lines


def model_card(
    meta: dict[str, Any],
    spec: OnnxModelSpec,
    onnx_path: Path,
    *,
    date: str,
    report: dict[str, Any] | None,
    calibration: Path | None,
) -> str:
    """The markdown model card for an exported checkpoint."""
    config = json.loads(str(meta.get("config", "{}")))
    history = meta.get("history") or []
    last = dict(history[-1]) if history else {}
    source = f"per-epoch validation of epoch {meta.get('epoch', '?')}"
    if report:  # the full evaluation beats the (possibly subsampled) per-epoch numbers
        source = "evaluation report"
        for prefix in ("val", "holdout"):
            if prefix in report:
                for key in ("rank1", "rank5", "mAP"):
                    last[f"{prefix}_{key}"] = report[prefix][key]
    data_name = Path(config.get("data", "?")).name
    init = str(meta.get("init", config.get("init", "?")))
    licences = [DATA_LICENCES.get(data_name, f"{data_name}: licence not recorded, check it")]
    if config.get("val_query"):
        licences.append(DATA_LICENCES["vk_set2"])
    if init == "person":
        licences.append(PERSON_INIT_TERMS)
    if init == "distill":
        licences.append("distilled from EfficientNet-Lite0 ImageNet weights (Apache-2.0)")
    size_mb = onnx_path.stat().st_size / 1e6
    calibration_line = (
        f"`{calibration.name}` (fitted on validation pairs), used by the matcher"
        if calibration
        else "none shipped: `petmatch reid train` writes report/calibration.json; "
        "do not use a raw-similarity threshold without one"
    )
    h, w = spec.input_size
    lines = [
        f"# {spec.model_id}",
        "",
        f"Exported {date}. ONNX `{onnx_path.name}` ({size_mb:.1f} MB, sha256 "
        f"`{file_sha256(onnx_path)[:16]}…`).",
        "",
        "## Architecture and input",
        f"- {meta['arch']} (OSNet, Zhou et al. 2019), 512-d embedding after the fc block; "
        "L2-normalise and compare by cosine similarity (the embedder flip-averages).",
        f"- Input RGB {h}×{w}, {'letterboxed on black' if spec.letterbox else 'stretched'}, "
        f"ImageNet mean {list(spec.mean)} / std {list(spec.std)}; crops with the background "
        "already removed (black), as the segmenter produces.",
        f"- Initialisation: `{init}`. Trained {meta.get('epoch', '?')} epochs with softmax "
        "(label smoothing) + batch-hard triplet loss on identity-balanced P×K batches.",
        "",
        "## Training data and licences",
        *[f"- {line}" for line in licences],
        f"- Train/held-out split by identity: sha1(`petmatch-split-v1:<identity>`) mod 100 < "
        f"{config.get('holdout_percent', '?')} is held out; never split by image.",
        "",
        "## Metrics (identities never trained on)",
        "| set | rank-1 | rank-5 | mAP |",
        "| --- | --- | --- | --- |",
        *_metrics_lines(last),
    ]
    lines += ["", f"Source: {source}."]
    if report and report.get("threshold_table"):
        lines += [
            "",
            "Pair-level precision / recall / F1 on the validation pairs (similarity ≥ t):",
            "",
            "| t | precision | recall | F1 |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {row['threshold']:.2f} | {row['precision']:.3f} | {row['recall']:.3f} | "
            f"{row['f1']:.3f} |"
            for row in report["threshold_table"]
        ]
    lines += [
        "",
        "## Calibration",
        f"- {calibration_line}.",
        "",
        "## Intended use",
        "- Ranking candidate matches between lost and found pet photos for human review in "
        "petmatch; a comment is posted only above a calibrated threshold.",
        "- Not for identifying people, and not a proof of ownership.",
        "",
    ]
    return "\n".join(lines)
