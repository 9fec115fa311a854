"""Static int8 quantization of the ONNX models the bot runs (U²-Net-p and any EfficientNet-Lite
style embedder with a sidecar JSON), calibrated on images a fresh install already has.

Calibration images: the photographs scikit-image ships in `skimage/data` (a cat, a horse, an
astronaut, a coffee cup, a rocket…), plus up to `max_stored` of the bot's own stored photos
when there are some. Never `../shared`: a user's install does not have it (the benchmark
compares against calibrating on real pet photos, on purpose, to show the difference).

ONNX Runtime's `quantize_static` writes QDQ (QuantizeLinear/DequantizeLinear pairs that the
CPU provider fuses into int8 kernels) or QOperator (QLinearConv…) graphs; weights per channel,
activations uint8 with MinMax calibration. Which format runs faster is measured by
`scripts/bench_quantize.py`, not assumed.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

__all__ = [
    "U2NETP_INT8",
    "QuantFormatName",
    "calibration_images",
    "embedder_inputs",
    "int8_path",
    "quantize_embedder",
    "quantize_model",
    "quantize_u2netp",
    "skimage_photos",
    "u2netp_inputs",
]

logger = logging.getLogger("petmatch.quantize")

_MIN_OPSET = 13

#: The int8 U²-Net-p, in the models folder.
U2NETP_INT8 = "u2netp.int8.onnx"

QuantFormatName = Literal["qdq", "qoperator"]

# Colour photographs of real scenes in skimage/data (the rest are microscopy, text, noise).
_SKIMAGE_PHOTOS = (
    "chelsea.png",
    "astronaut.png",
    "coffee.png",
    "horse.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "logo.png",
    "color.png",
    "brick.png",
    "grass.png",
    "gravel.png",
)


def int8_path(onnx_path: Path) -> Path:
    """`model.onnx` → `model.int8.onnx`."""
    return onnx_path.with_name(onnx_path.stem + ".int8.onnx")


def skimage_photos() -> list[np.ndarray]:
    """The colour photographs bundled with scikit-image, RGB uint8 (no download)."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    out = []
    for name in _SKIMAGE_PHOTOS:
        path = folder / name
        if path.is_file():
            with Image.open(path) as image:
                out.append(np.asarray(image.convert("RGB")))
    return out


def calibration_images(stored: Iterable[Path] = (), *, max_stored: int = 64) -> list[np.ndarray]:
    """scikit-image's photographs, each also flipped and cropped to its centre, plus up to
    `max_stored` of the bot's stored photos."""
    images: list[np.ndarray] = []
    for photo in skimage_photos():
        h, w = photo.shape[:2]
        images += [photo, photo[:, ::-1], photo[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]]
    for n, path in enumerate(stored):
        if n >= max_stored:
            break
        try:
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB")))
        except OSError:
            continue
    return images


def u2netp_inputs(images: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
    """U²-Net-p's input tensors for `images`, exactly as the segmenter prepares them."""
    from segmentation._u2netp import u2net_input

    for image in images:
        yield u2net_input(image)


def embedder_inputs(sidecar: Path, images: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
    """An embedder's input tensors (one image each, plus its mirror) from its sidecar JSON."""
    from reid._ort import OnnxModelSpec
    from reid._preprocess import prepare_batch

    spec = OnnxModelSpec.model_validate(json.loads(sidecar.read_text(encoding="utf-8")))
    for image in images:
        batch = prepare_batch(
            [image],
            input_size=spec.input_size,
            letterbox_crops=spec.letterbox,
            mean=spec.mean,
            std=spec.std,
        )
        yield batch
        yield np.ascontiguousarray(batch[:, :, :, ::-1])


def quantize_model(
    source: Path,
    target: Path,
    inputs: Callable[[], Iterable[np.ndarray]],
    *,
    fmt: QuantFormatName = "qdq",
    float_after: float | None = None,
) -> Path:
    """Write a static-int8 copy of `source` to `target`, calibrated on `inputs()`.

    `float_after` (0..1) keeps the nodes after that share of the graph (in its stored order)
    in float32: how `scripts/bench_quantize.py` measures where the int8 error comes from."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(source))
    input_name = model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(inputs())

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._it, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory() as work:
        upgraded = Path(work) / "opset.onnx"
        if _opset(model) < _MIN_OPSET:
            # Per-channel DequantizeLinear (an `axis`) needs opset 13; U²-Net-p is older.
            from onnx import version_converter

            model = version_converter.convert_version(model, _MIN_OPSET)
        onnx.save(model, str(upgraded))
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(upgraded), str(prepared), skip_symbolic_shape=True)
        out = Path(work) / "int8.onnx"
        excluded: list[str] = []
        if float_after is not None:
            nodes = [n.name for n in onnx.load(str(prepared)).graph.node]
            excluded = [n for n in nodes[int(len(nodes) * float_after) :] if n]
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
            per_channel=True,
            nodes_to_exclude=excluded,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            extra_options={"CalibTensorRangeSymmetric": False},
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out), target)
    logger.info("quantized %s → %s (%s)", source.name, target.name, fmt)
    return target


def _opset(model: object) -> int:
    return max(
        (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),  # type: ignore[attr-defined]
        default=0,
    )


def quantize_u2netp(
    source: Path,
    target: Path,
    images: Sequence[np.ndarray],
    *,
    fmt: QuantFormatName = "qdq",
    float_after: float | None = None,
) -> Path:
    return quantize_model(
        source, target, lambda: u2netp_inputs(images), fmt=fmt, float_after=float_after
    )


def quantize_embedder(
    source: Path, target: Path, images: Sequence[np.ndarray], *, fmt: QuantFormatName = "qdq"
) -> Path:
    """Quantize any embedder exported with a sidecar JSON; the copy gets its own sidecar whose
    model id says int8 (its vectors are not the float model's and never share an index)."""
    sidecar = source.with_suffix(".json")
    quantize_model(source, target, lambda: embedder_inputs(sidecar, images), fmt=fmt)
    spec = json.loads(sidecar.read_text(encoding="utf-8"))
    spec["model_id"] = f"{spec['model_id']}+int8"
    target.with_suffix(".json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return target
