"""ONNX export helpers (need torch, imported inside the functions; the bot never calls these)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reid._ort import OnnxModelSpec, sidecar_path

__all__ = ["export_onnx", "file_sha256", "write_sidecar"]

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
        # torch's exporter trips over its own deprecations; they are not ours to fix.
        with torch.no_grad(), warnings.catch_warnings():
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
        os.replace(tmp, out_path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        module.train(was_training)
    logger.info("exported %s (input %sx%s)", out_path, *input_size)
    return out_path
