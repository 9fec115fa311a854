"""The OSNet training loop: P×K batches, softmax + batch-hard triplet (+ distillation), Adam with
linear warm-up and cosine decay, resumable checkpoints, one metrics dict per epoch."""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from reid._preprocess import IMAGENET_MEAN, IMAGENET_STD
from reid._torch.osnet import OSNET_WIDTHS, OSNet, build_osnet, load_person_weights
from reid.evaluation import (
    RetrievalMetrics,
    evaluate_leave_one_out,
    evaluate_query_gallery,
    list_labelled_images,
)
from reid.training._data import (
    AugmentConfig,
    LabelledImages,
    PKSampler,
    augmented_batch,
    load_images,
    plain_batch,
    split_identities,
)
from reid.training._losses import batch_hard_triplet, relational_distillation

logger = logging.getLogger("petmatch.reid")

CHECKPOINT_FORMAT = "petmatch-osnet-1"
InitMode = Literal["scratch", "person", "distill"]


class TrainConfig(BaseModel):
    """Everything a training run depends on; saved in every checkpoint."""

    model_config = ConfigDict(frozen=True)

    data: Path
    out: Path
    val_query: Path | None = None
    val_gallery: Path | None = None
    holdout_percent: int = Field(20, ge=0, le=90)
    arch: str = "osnet_x0_25"
    init: InitMode = "person"
    person_weights: Path | None = None
    input_size: tuple[int, int] = (256, 128)
    letterbox: bool | None = None  # default: letterbox for square input, stretch otherwise
    epochs: int = Field(30, ge=1)
    batch_p: int = Field(8, ge=2)
    batch_k: int = Field(4, ge=2)
    lr: float = 3e-4
    weight_decay: float = 5e-4
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    triplet_margin: float = 0.3
    triplet_weight: float = 1.0
    distill_weight: float = 10.0
    max_identities: int | None = None  # train on the first N training identities only
    max_images_per_identity: int | None = None
    holdout_max_identities: int | None = None  # evaluate leave-one-out on N held-out ids
    device: str = "auto"
    seed: int = 0
    save_epochs: tuple[int, ...] = ()
    resume: bool = False
    model_id: str | None = None

    @property
    def use_letterbox(self) -> bool:
        return (
            self.letterbox
            if self.letterbox is not None
            else self.input_size[0] == self.input_size[1]
        )


class TrainResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    last_checkpoint: Path
    best_checkpoint: Path
    history: list[dict[str, Any]]


def pick_device(name: str = "auto") -> torch.device:
    """`auto` → CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


def lr_at(step: int, total_steps: int, warmup_steps: int, base_lr: float) -> float:
    """Linear warm-up from 10% to `base_lr`, then cosine decay to 1% of it."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (0.1 + 0.9 * step / warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def atomic_torch_save(payload: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@torch.no_grad()
def embed_images(
    model: OSNet, images: np.ndarray, device: torch.device, batch_size: int = 64
) -> np.ndarray:
    """Flip-averaged, L2-normalized vectors for fitted uint8 images (as the ONNX embedder)."""
    was_training = model.training
    model.eval()
    chunks = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(plain_batch(images[start : start + batch_size])).to(device)
        a = F.normalize(model(x), dim=1)
        b = F.normalize(model(torch.flip(x, dims=[3])), dim=1)
        chunks.append(F.normalize(a + b, dim=1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(chunks).astype(np.float32)


class _Data:
    """Train images, held-out images (leave-one-out) and the query/gallery validation set."""

    def __init__(self, config: TrainConfig) -> None:
        size, box = config.input_size, config.use_letterbox
        items = list_labelled_images(config.data)
        train_ids, held_ids = split_identities(
            sorted({item.identity for item in items}), config.holdout_percent
        )
        if config.max_identities is not None:
            train_ids = train_ids[: config.max_identities]
        if config.holdout_max_identities is not None:
            held_ids = held_ids[: config.holdout_max_identities]
        self.train = load_images(self._subset(items, train_ids, config), size, box)
        held = set(held_ids)
        self.holdout = (
            load_images([i for i in items if i.identity in held], size, box) if held else None
        )
        self.query = self.gallery = None
        if config.val_query is not None and config.val_gallery is not None:
            self.query = load_images(list_labelled_images(config.val_query), size, box)
            self.gallery = load_images(list_labelled_images(config.val_gallery), size, box)
        logger.info(
            "train: %d images of %d identities; held out: %d identities",
            len(self.train.labels),
            self.train.num_classes,
            len(held_ids),
        )

    @staticmethod
    def _subset(items, ids, config: TrainConfig):  # type: ignore[no-untyped-def]
        keep = set(ids)
        chosen, per_id = [], {}
        for item in items:
            if item.identity not in keep:
                continue
            n = per_id.get(item.identity, 0)
            if config.max_images_per_identity is None or n < config.max_images_per_identity:
                chosen.append(item)
                per_id[item.identity] = n + 1
        return chosen


def evaluate_model(
    model: OSNet,
    device: torch.device,
    *,
    holdout: LabelledImages | None = None,
    query: LabelledImages | None = None,
    gallery: LabelledImages | None = None,
) -> dict[str, RetrievalMetrics]:
    """Leave-one-out on held-out training-domain identities, query→gallery on the val set."""
    results: dict[str, RetrievalMetrics] = {}
    if holdout is not None:
        vectors = embed_images(model, holdout.images, device)
        results["holdout"] = evaluate_leave_one_out(vectors, holdout.identities)
    if query is not None and gallery is not None:
        results["val"] = evaluate_query_gallery(
            embed_images(model, query.images, device),
            query.identities,
            embed_images(model, gallery.images, device),
            gallery.identities,
        )
    return results


def _teacher_features(images: np.ndarray, device: torch.device) -> np.ndarray:
    """EfficientNet-Lite0 ImageNet features (1280-d) of the plain training images, once."""
    from reid._torch.efficientnet_lite import load_efficientnet_lite0

    teacher = load_efficientnet_lite0().to(device).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), 64):
            x = torch.from_numpy(plain_batch(images[start : start + 64])).to(device)
            out.append(teacher(x)[1].cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return {"numpy": json.dumps(rng.bit_generator.state), "torch": torch.get_rng_state()}


def train(
    config: TrainConfig, on_epoch: Callable[[dict[str, Any]], None] | None = None
) -> TrainResult:
    """Train (or resume) an OSNet re-ID model; returns the checkpoints and per-epoch metrics.

    Writes `<out>/last.pt` every epoch, `<out>/best.pt` at the best held-out mAP (else the val
    mAP), `<out>/epoch_<n>.pt` for `save_epochs`, and `<out>/metrics.jsonl`.
    """
    if config.arch not in OSNET_WIDTHS:
        raise ValueError(f"unknown arch {config.arch!r}; valid: {', '.join(OSNET_WIDTHS)}")
    device = pick_device(config.device)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    data = _Data(config)
    sampler = PKSampler(data.train.labels, config.batch_p, config.batch_k)
    class_names = sorted(set(data.train.identities))

    model = build_osnet(config.arch, num_classes=len(class_names))
    if config.init == "person":
        if config.person_weights is None:
            raise ValueError("--init person needs the person-re-ID weights (--person-weights)")
        load_person_weights(model, config.person_weights)
    model.to(device)
    teacher = None
    if config.init == "distill":
        teacher = torch.from_numpy(_teacher_features(data.train.images, device)).to(device)

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * sampler.batches_per_epoch
    warmup_steps = config.warmup_epochs * sampler.batches_per_epoch
    start_epoch, step, history, best = 1, 0, [], -1.0
    last_path, best_path = out / "last.pt", out / "best.pt"

    if config.resume and last_path.is_file():
        state = torch.load(last_path, map_location=device, weights_only=True)
        if list(state["classes"]) != class_names:
            raise ValueError(f"{last_path} was trained on other identities; cannot resume")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
        history, best = list(state["history"]), float(state["best"])
        rng.bit_generator.state = json.loads(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        logger.info("resumed from %s at epoch %d", last_path, start_epoch)

    size = config.input_size
    model_id = config.model_id or f"{config.arch}-pets-{config.init}-{size[0]}x{size[1]}"
    augment_cfg = AugmentConfig()
    mlflow = _start_mlflow(config)
    metrics_file = out / "metrics.jsonl"

    for epoch in range(start_epoch, config.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "ce": 0.0, "triplet": 0.0, "distill": 0.0}
        batches = 0
        for index in sampler.epoch(rng):
            lr = lr_at(step, total_steps, warmup_steps, config.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x = torch.from_numpy(augmented_batch(data.train.images[index], augment_cfg, rng))
            y = torch.from_numpy(data.train.labels[index]).to(device)
            logits, features = model(x.to(device))
            ce = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
            tri = batch_hard_triplet(features, y, config.triplet_margin)
            loss = ce + config.triplet_weight * tri
            dist = torch.zeros((), device=device)
            if teacher is not None:
                dist = relational_distillation(
                    features, teacher[torch.from_numpy(index).to(device)]
                )
                loss = loss + config.distill_weight * dist
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            batches += 1
            for key, value in (("loss", loss), ("ce", ce), ("triplet", tri), ("distill", dist)):
                sums[key] += float(value.detach())
        seconds = time.perf_counter() - t0
        record: dict[str, Any] = {"epoch": epoch, "lr": round(lr, 8)}
        record.update({k: round(v / max(1, batches), 5) for k, v in sums.items()})
        record["images_per_s"] = round(batches * sampler.p * sampler.k / seconds, 2)
        record["train_seconds"] = round(seconds, 1)
        for name, metrics in evaluate_model(
            model, device, holdout=data.holdout, query=data.query, gallery=data.gallery
        ).items():
            record[f"{name}_rank1"] = round(metrics.rank1, 4)
            record[f"{name}_rank5"] = round(metrics.rank5, 4)
            record[f"{name}_mAP"] = round(metrics.mAP, 4)
        history.append(record)
        score = float(record.get("holdout_mAP", record.get("val_mAP", -record["loss"])))

        payload = {
            "format": CHECKPOINT_FORMAT,
            "arch": config.arch,
            "model_id": f"{model_id}@e{epoch}",
            "input_size": list(size),
            "letterbox": config.use_letterbox,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "init": config.init,
            "classes": class_names,
            "config": config.model_dump_json(),
            "epoch": epoch,
            "step": step,
            "history": history,
            "best": max(best, score),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": _rng_state(rng),
        }
        atomic_torch_save(payload, last_path)
        if score > best:
            best = score
            atomic_torch_save(payload, best_path)
        if epoch in config.save_epochs:
            atomic_torch_save(payload, out / f"epoch_{epoch}.pt")
        with metrics_file.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if mlflow is not None:
            mlflow.log_metrics({k: float(v) for k, v in record.items() if k != "epoch"}, step=epoch)
        if on_epoch is not None:
            on_epoch(record)

    if mlflow is not None:
        mlflow.end_run()
    if not best_path.is_file():
        best_path = last_path
    return TrainResult(last_checkpoint=last_path, best_checkpoint=best_path, history=history)


def _start_mlflow(config: TrainConfig) -> Any:
    """The `mlflow` module with a run started, only when MLFLOW_TRACKING_URI is set."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    try:
        import mlflow
    except ImportError:
        logger.warning("MLFLOW_TRACKING_URI is set but mlflow is not installed; not logging")
        return None
    mlflow.start_run(run_name=Path(config.out).name)
    mlflow.log_params(
        {k: str(v) for k, v in config.model_dump().items() if k not in ("data", "out")}
    )
    return mlflow
