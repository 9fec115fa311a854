"""The `osnet` embedder backend: OSNet weights exported once to ONNX, then run on ONNX Runtime.

``build_embedder("osnet", weights=Path("osnet_x0_25_msmt17.pth"), models_dir=Path("models"))``

* ``weights`` is a torchreid state_dict, a petmatch training checkpoint (``.pt``), or an
  already exported ``.onnx`` with its sidecar JSON (then torch is never needed).
* The ONNX file is written once, atomically, to ``models_dir`` (default: next to the
  weights) as ``<weights stem>_<h>x<w>.onnx`` plus its sidecar, and reused while it is newer
  than the weights. Export needs torch (the `train` extra); running does not.
"""

from __future__ import annotations

import logging
from pathlib import Path

from filelock import FileLock

from reid._base import register_embedder
from reid._ort import OnnxModelSpec, OrtEmbedder, SessionFactory, load_onnx_embedder, sidecar_path
from reid._preprocess import IMAGENET_MEAN, IMAGENET_STD
from reid.errors import ModelNotFoundError

__all__ = ["build_osnet_embedder", "osnet_onnx_path", "prepare_osnet_onnx"]

logger = logging.getLogger("petmatch.reid")

PERSON_INPUT_SIZE = (256, 128)


def osnet_onnx_path(
    weights: Path, input_size: tuple[int, int], models_dir: Path | None = None
) -> Path:
    """Where the ONNX export of `weights` at `input_size` lives."""
    weights = Path(weights)
    folder = Path(models_dir) if models_dir is not None else weights.parent
    return folder / f"{weights.stem}_{input_size[0]}x{input_size[1]}.onnx"


def _is_fresh(onnx_path: Path, weights: Path) -> bool:
    return (
        onnx_path.is_file()
        and sidecar_path(onnx_path).is_file()
        and onnx_path.stat().st_mtime >= weights.stat().st_mtime
    )


def prepare_osnet_onnx(
    weights: Path,
    *,
    input_size: tuple[int, int] | None = None,
    models_dir: Path | None = None,
    letterbox: bool | None = None,
) -> Path:
    """Export `weights` to ONNX (+ sidecar) unless a fresh export exists; returns its path.

    `input_size`/`letterbox` default to what a petmatch checkpoint recorded, else to the
    person-re-ID shape 256x128 stretched (how torchreid trained those weights).
    """
    weights = Path(weights)
    if not weights.is_file():
        raise ModelNotFoundError(
            f"OSNet weights {weights} do not exist; pass the path of a torchreid .pth, "
            "a `petmatch reid train` checkpoint or an exported .onnx"
        )
    size = tuple(input_size) if input_size is not None else None
    if size is not None:
        onnx_path = osnet_onnx_path(weights, size, models_dir)  # type: ignore[arg-type]
        if _is_fresh(onnx_path, weights):
            return onnx_path
    try:
        from reid._torch.osnet import load_osnet
        from reid.export import export_onnx, write_sidecar
    except ImportError as exc:  # torch is only in the `train` extra
        raise ModelNotFoundError(
            f"no ONNX export of {weights} yet and torch is not installed to make one; "
            "install petmatch[train] or copy the exported .onnx + .json here"
        ) from exc

    model, meta = load_osnet(weights)
    if size is None:
        size = tuple(meta.get("input_size") or PERSON_INPUT_SIZE)  # type: ignore[arg-type]
    h, w = int(size[0]), int(size[1])
    if letterbox is None:
        letterbox = bool(meta.get("letterbox", h == w))
    onnx_path = osnet_onnx_path(weights, (h, w), models_dir)
    lock = FileLock(str(onnx_path) + ".lock")
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    with lock:
        if _is_fresh(onnx_path, weights):
            return onnx_path
        logger.info("exporting %s to %s", weights, onnx_path)
        export_onnx(model, onnx_path, (h, w))
        spec = OnnxModelSpec(
            model_id=str(meta.get("model_id") or f"{meta['arch']}@{weights.stem}-{h}x{w}"),
            input_size=(h, w),
            letterbox=letterbox,
            mean=tuple(meta.get("mean") or IMAGENET_MEAN),  # type: ignore[arg-type]
            std=tuple(meta.get("std") or IMAGENET_STD),  # type: ignore[arg-type]
        )
        write_sidecar(onnx_path, spec)
    return onnx_path


@register_embedder("osnet")
def build_osnet_embedder(
    *,
    weights: Path,
    models_dir: Path | None = None,
    input_size: tuple[int, int] | None = None,
    letterbox: bool | None = None,
    batch_size: int = 16,
    flip_average: bool = True,
    session_factory: SessionFactory | None = None,
) -> OrtEmbedder:
    """An ONNX Runtime OSNet embedder for `weights` (exported on first use, then cached)."""
    weights = Path(weights)
    if weights.suffix == ".onnx":
        return load_onnx_embedder(
            weights,
            batch_size=batch_size,
            flip_average=flip_average,
            session_factory=session_factory,
        )
    onnx_path = prepare_osnet_onnx(
        weights, input_size=input_size, models_dir=models_dir, letterbox=letterbox
    )
    return load_onnx_embedder(
        onnx_path,
        batch_size=batch_size,
        flip_average=flip_average,
        session_factory=session_factory,
    )
