"""ONNX export helpers (need torch, imported inside the functions; the bot never calls these)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from reid._ort import OnnxModelSpec, sidecar_path

__all__ = [
    "export_onnx",
    "file_sha256",
    "prepare_efficientnet_lite",
    "prepare_efficientnet_lite0",
    "write_sidecar",
]

logger = logging.getLogger("petmatch.reid")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_sidecar(onnx_path: Path, spec: OnnxModelSpec, **extra: Any) -> Path:
    """Write `<name>.json` next to `onnx_path` (atomically); `extra` keys are kept for humans."""
    payload = spec.model_dump(mode="json")
    unknown = set(extra) & set(payload)
    if unknown:
        raise ValueError(f"extra keys clash with the spec: {sorted(unknown)}")
    path = sidecar_path(onnx_path)
    _atomic_write_bytes(path, json.dumps({**payload, **extra}, indent=2).encode("utf-8"))
    return path


_NOISY_LOGGERS = ("onnx_ir", "onnxscript", "torch.onnx", "torch._dynamo", "torch.export")


@contextlib.contextmanager
def _quiet(names: Sequence[str]) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [item.level for item in loggers]
    for item in loggers:
        item.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for item, level in zip(loggers, levels, strict=True):
            item.setLevel(level)


def export_onnx(
    module: Any,
    out_path: Path,
    input_size: tuple[int, int],
    output_names: Sequence[str] = ("features",),
    *,
    input_name: str = "images",
    opset: int = 18,
) -> Path:
    """Export a torch module taking (n, 3, h, w) to ONNX with a dynamic batch axis, atomically.

    The module is run in eval mode and its train/eval flag is restored afterwards.
    """
    import torch

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    was_training = module.training
    module.eval()
    dummy = torch.zeros(2, 3, int(input_size[0]), int(input_size[1]), dtype=torch.float32)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".onnx", dir=out_path.parent)
    os.close(fd)
    try:
        # torch's exporter trips over its own deprecations and chats at INFO level.
        with torch.no_grad(), warnings.catch_warnings(), _quiet(_NOISY_LOGGERS):
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module,
                (dummy,),
                tmp,
                input_names=[input_name],
                output_names=list(output_names),
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        module.train(was_training)
    logger.info("exported %s (input %sx%s)", out_path, *input_size)
    return out_path


def _sidecar_source(onnx_path: Path) -> str | None:
    try:
        payload = json.loads(sidecar_path(onnx_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return payload.get("source_sha256") if isinstance(payload, dict) else None


def prepare_efficientnet_lite0(
    models_dir: Path, *, weights: Path | None = None, force: bool = False
) -> tuple[Path, bool]:
    """Export EfficientNet-Lite0 (outputs `logits`, `features`) into `models_dir`."""
    return prepare_efficientnet_lite("efficientnet_lite0", models_dir, weights=weights, force=force)


def prepare_efficientnet_lite(
    name: str, models_dir: Path, *, weights: Path | None = None, force: bool = False
) -> tuple[Path, bool]:
    """Export the EfficientNet-Lite backend `name` (outputs `logits`, `features`).

    Idempotent: skipped when the ONNX file exists and its sidecar records the same weights
    checksum. Returns the ONNX path and whether it was (re)exported.
    """
    from filelock import FileLock

    from reid._efficientnet import LITE_SPECS
    from reid._torch.efficientnet_lite import lite_weights_path, load_efficientnet_lite

    if name not in LITE_SPECS:
        raise ValueError(f"unknown EfficientNet-Lite backend {name!r}; have {sorted(LITE_SPECS)}")
    spec = LITE_SPECS[name]
    source = Path(weights) if weights is not None else lite_weights_path(spec.variant)
    onnx_path = spec.onnx_path(models_dir)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    checksum = file_sha256(source)
    with FileLock(str(onnx_path) + ".lock"):
        if not force and onnx_path.is_file() and _sidecar_source(onnx_path) == checksum:
            logger.info("%s is up to date", onnx_path)
            return onnx_path, False
        model = load_efficientnet_lite(spec.variant, source)
        export_onnx(model, onnx_path, spec.input_size, ("logits", "features"))
        onnx_spec = OnnxModelSpec(
            model_id=spec.model_id,
            input_size=spec.input_size,
            letterbox=True,
            mean=spec.mean,
            std=spec.std,
            output_name="features",
            source_sha256=checksum,
        )
        write_sidecar(onnx_path, onnx_spec)
    return onnx_path, True
