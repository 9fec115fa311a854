"""Static int8 quantization: any embedder with a sidecar, calibrated on bundled photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.quantize import calibration_images, int8_path, quantize_embedder, skimage_photos


def _tiny_embedder(path: Path) -> None:
    """A small conv net exported like the real embedders: NCHW in, (n, d) features out."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(size=8).astype(np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["input", "w", "b"], ["conv"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["features"], name="flatten"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 8])],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, str(path))
    spec = {"model_id": "tiny@1", "input_size": [32, 32], "letterbox": True}
    path.with_suffix(".json").write_text(json.dumps(spec), encoding="utf-8")


def test_calibration_images_are_bundled_photographs_only():
    photos = skimage_photos()
    assert len(photos) >= 8 and all(p.ndim == 3 and p.shape[2] == 3 for p in photos)
    assert len(calibration_images()) == 3 * len(photos)


def test_any_embedder_with_a_sidecar_is_quantized_under_its_own_model_id(tmp_path: Path):
    from reid import load_onnx_embedder

    source = tmp_path / "tiny.onnx"
    _tiny_embedder(source)
    target = quantize_embedder(source, int8_path(source), calibration_images()[:12])
    assert target.name == "tiny.int8.onnx"
    assert json.loads(target.with_suffix(".json").read_text())["model_id"] == "tiny@1+int8"
    photos = skimage_photos()[:4]
    fp32 = load_onnx_embedder(source).embed(photos).vectors
    int8 = load_onnx_embedder(target).embed(photos).vectors
    assert np.min(np.sum(fp32 * int8, axis=1)) > 0.99  # the same directions, nearly


def test_a_missing_int8_model_says_how_to_make_it(tmp_path: Path):
    from bot.config import Settings
    from bot.pipeline import _segmenter_args

    settings = Settings(var_dir=tmp_path, segmentation={"quantized": True})
    with pytest.raises(FileNotFoundError, match="models prepare --quantize"):
        _segmenter_args(settings)


def test_float_after_keeps_the_graphs_tail_in_float32(tmp_path: Path):
    import onnx

    from bot.quantize import embedder_inputs, quantize_model

    source = tmp_path / "tiny.onnx"
    _tiny_embedder(source)
    images = calibration_images()[:6]

    def inputs():
        return embedder_inputs(source.with_suffix(".json"), images)

    def int8_convs(path: Path) -> int:
        graph = onnx.load(str(path)).graph
        weights_quantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
        return sum(1 for n in graph.node if n.op_type == "Conv" and n.input[1] in weights_quantized)

    whole = quantize_model(source, tmp_path / "all.int8.onnx", inputs)
    head_only = quantize_model(source, tmp_path / "none.int8.onnx", inputs, float_after=0.0)
    assert int8_convs(whole) == 1
    assert int8_convs(head_only) == 0  # every node kept in float32
