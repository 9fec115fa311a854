"""OSNet: torchreid weights load strictly, the `osnet` backend exports once and matches torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch (the `train` extra)")

from reid import build_embedder  # noqa: E402
from reid._osnet import osnet_onnx_path  # noqa: E402
from reid._preprocess import prepare_batch  # noqa: E402
from reid._torch.osnet import (  # noqa: E402
    OSNET_WIDTHS,
    build_osnet,
    load_osnet,
    load_person_weights,
)
from reid.errors import ModelNotFoundError  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

PERSON_WEIGHTS = ("osnet_x0_25_msmt17.pth", "osnet_x0_25_market1501.pth")


def _crops(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (90 + 7 * i, 60 + 5 * i, 3), dtype=np.uint8) for i in range(n)]


def _torch_vectors(model, crops, size, letterbox) -> np.ndarray:
    batch = prepare_batch(crops, input_size=size, letterbox_crops=letterbox)
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(batch)).numpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.mark.parametrize("name", list(OSNET_WIDTHS))
def test_every_width_gives_a_512_d_feature(name: str) -> None:
    model = build_osnet(name).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 32))
    assert out.shape == (1, 512)


@pytest.mark.shared
@pytest.mark.parametrize("filename", PERSON_WEIGHTS)
def test_person_weights_load_strictly(shared_dir: Path, filename: str) -> None:
    path = shared_dir / "models" / filename
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = build_osnet("osnet_x0_25", num_classes=int(state["classifier.weight"].shape[0]))
    model.load_state_dict(state, strict=True)  # the whole file, classifier included

    trainable = build_osnet("osnet_x0_25", num_classes=7)
    load_person_weights(trainable, path)  # person classifier dropped, ours kept
    assert torch.equal(trainable.conv5.conv.weight, state["conv5.conv.weight"])

    loaded, meta = load_osnet(path)
    assert meta["arch"] == "osnet_x0_25"
    with torch.no_grad():
        feature = loaded(torch.rand(2, 3, 256, 128))
    assert feature.shape == (2, 512)
    assert torch.isfinite(feature).all() and feature.abs().sum() > 0


def test_missing_weights_is_a_loud_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"does_not_exist\.pth"):
        build_embedder("osnet", weights=tmp_path / "does_not_exist.pth", models_dir=tmp_path)


def test_backend_exports_once_and_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_osnet("osnet_x0_25").eval()
    # Move batch-norm statistics off their defaults so the comparison means something.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    weights = tmp_path / "weights" / "tiny.pth"
    weights.parent.mkdir()
    torch.save(model.state_dict(), weights)
    models_dir = tmp_path / "models"

    embedder = build_embedder(
        "osnet", weights=weights, models_dir=models_dir, input_size=(128, 128), flip_average=False
    )
    onnx_path = osnet_onnx_path(weights, (128, 128), models_dir)
    assert onnx_path.is_file() and onnx_path.with_suffix(".json").is_file()
    assert embedder.model_id == "osnet_x0_25@tiny-128x128"

    crops = _crops(3)
    got = embedder.embed(crops).vectors
    expected = _torch_vectors(model, crops, (128, 128), letterbox=True)
    assert got.shape == (3, 512)
    np.testing.assert_allclose(got, expected, atol=1e-4)

    stamp = onnx_path.stat().st_mtime_ns
    again = build_embedder("osnet", weights=weights, models_dir=models_dir, input_size=(128, 128))
    assert onnx_path.stat().st_mtime_ns == stamp  # cached, not re-exported
    # An exported .onnx (with its sidecar) is accepted directly, without torch.
    direct = build_embedder("osnet", weights=onnx_path, flip_average=False)
    np.testing.assert_allclose(direct.embed(crops).vectors, got, atol=1e-6)
    assert again.dim == 512


@pytest.mark.shared
def test_person_weights_through_the_backend(shared_dir: Path, tmp_path: Path) -> None:
    weights = shared_dir / "models" / "osnet_x0_25_msmt17.pth"
    embedder = build_embedder("osnet", weights=weights, models_dir=tmp_path, flip_average=False)
    model, _ = load_osnet(weights)
    crops = _crops(2, seed=1)
    np.testing.assert_allclose(
        embedder.embed(crops).vectors,
        _torch_vectors(model, crops, (256, 128), letterbox=False),
        atol=1e-4,
    )
