"""Re-ID metrics on hand-computed cases, identity folders, and the `reid eval` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from reid.evaluation import (
    embed_labelled,
    evaluate_leave_one_out,
    evaluate_query_gallery,
    identity_of,
    list_labelled_images,
    retrieval_metrics,
)


def _unit(rows: list[list[float]]) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_query_gallery_hand_computed() -> None:
    gallery = np.eye(4, dtype=np.float32)  # similarity = the query's own coordinates
    gallery_ids = ["a", "b", "a", "c"]
    queries = _unit([[0.6, 0.9, 0.1, 0.3], [0.1, 0.9, 0.2, 0.3], [0.1, 0.2, 0.3, 0.9]])
    # query a ranks b, a, c, a → first hit at 2, AP = (1/2 + 2/4) / 2 = 0.5
    # query b ranks b first → AP 1; query "d" has no match in the gallery → skipped
    m = evaluate_query_gallery(queries, ["a", "b", "d"], gallery, gallery_ids)
    assert m.queries == 2 and m.gallery == 4
    assert m.rank1 == pytest.approx(0.5)
    assert m.rank5 == pytest.approx(1.0) and m.rank10 == pytest.approx(1.0)
    assert m.mAP == pytest.approx(0.75)
    assert m.cmc == pytest.approx([0.5, 1.0, 1.0, 1.0])


def test_leave_one_out_hand_computed() -> None:
    # a0 and a1 close; b0 closer to a0 than b1 is; c is alone (a distractor, never a query).
    vectors = _unit([[1, 0, 0], [0.9, 0.1, 0], [0.8, 0.6, 0], [0, 1, 0], [0.95, 0, 0.3]])
    ids = ["a", "a", "b", "b", "c"]
    m = evaluate_leave_one_out(vectors, ids)
    # a0 → a1 first; a1 → a0 first; b1 → b0 first (0.6 beats 0.11);
    # b0 → a1 (0.86), a0 (0.80), c (0.76), b1 (0.60): first hit at 4, AP 1/4.
    assert m.queries == 4 and m.gallery == 5
    assert m.rank1 == pytest.approx(0.75)
    assert m.cmc[:4] == pytest.approx([0.75, 0.75, 0.75, 1.0])
    assert m.mAP == pytest.approx((1 + 1 + 0.25 + 1) / 4)


def test_retrieval_metrics_multiple_hits() -> None:
    matches = np.array([[0, 1, 1, 0, 1], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=bool)
    m = retrieval_metrics(matches, gallery=5, max_rank=3)
    # AP row 0 = (1/2 + 2/3 + 3/5) / 3; row 1 = 1; row 2 has no match → skipped
    assert m.queries == 2
    assert m.mAP == pytest.approx(((1 / 2 + 2 / 3 + 3 / 5) / 3 + 1) / 2)
    assert m.cmc == pytest.approx([0.5, 1.0, 1.0])
    assert m.rank10 == pytest.approx(1.0)  # saturates past the curve's end


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 30), d=st.integers(2, 16), seed=st.integers(0, 10_000))
def test_identical_query_and_gallery_rank_perfectly(n: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    vectors = _unit((rng.normal(size=(n, d)) + 1e-3).tolist())
    # Two random directions can be closer than float32 rounding of a vector with itself
    # (seen with n=9, d=2, seed=125): then "perfect" is not defined.
    sims = vectors @ vectors.T
    assume(float((sims - np.eye(n) * 2).max()) < 0.999)
    ids = [f"id{i}" for i in range(n)]
    m = evaluate_query_gallery(vectors, ids, vectors, ids)
    assert m.rank1 == pytest.approx(1.0) and m.mAP == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 40), seed=st.integers(0, 10_000), k=st.integers(1, 6))
def test_metrics_stay_in_range_and_cmc_rises(n: int, seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    vectors = _unit((rng.normal(size=(n, 8)) + 1e-3).tolist())
    ids = [f"id{i}" for i in rng.integers(0, k, size=n)]
    m = evaluate_leave_one_out(vectors, ids)
    assert 0.0 <= m.rank1 <= m.rank5 <= m.rank10 <= 1.0
    assert 0.0 <= m.mAP <= 1.0
    assert all(a <= b + 1e-12 for a, b in zip(m.cmc, m.cmc[1:], strict=False))
    singles = {i for i in ids if ids.count(i) == 1}
    assert m.queries == sum(i not in singles for i in ids)


def test_identity_rules(tmp_path: Path) -> None:
    assert identity_of(tmp_path / "10631_2.jpg", tmp_path) == "10631"
    assert identity_of(tmp_path / "rex" / "rex.3.jpg", tmp_path) == "rex"
    assert identity_of(tmp_path / "rex" / "deep" / "x_1.jpg", tmp_path) == "rex"
    assert identity_of(tmp_path / "plain.jpg", tmp_path) == "plain"


def _write_images(folder: Path, names: list[str], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (24, 16, 3), dtype=np.uint8)).save(path)


class _MeanEmbedder:
    """A stand-in embedder: per-channel means of the crop, normalized."""

    model_id = "mean@1"
    dim = 3

    def embed(self, crops: list[np.ndarray]):
        from reid import Embeddings, l2_normalize

        vectors = np.stack([c.reshape(-1, 3).mean(axis=0) for c in crops]) + 1.0
        return Embeddings(vectors=l2_normalize(vectors), model_id=self.model_id)


def test_unreadable_images_are_reported_and_skipped(tmp_path: Path) -> None:
    _write_images(tmp_path, ["a/a.1.jpg", "a/a.2.png", "b/b.1.jpg"])
    (tmp_path / "b" / "b.2.jpg").write_bytes(b"this is not a jpeg")
    (tmp_path / "b" / "notes.txt").write_text("ignored: not an image suffix")
    items = list_labelled_images(tmp_path)
    assert [i.identity for i in items] == ["a", "a", "b", "b"]
    embedded = embed_labelled(_MeanEmbedder(), items, batch_size=3)
    assert embedded.identities == ("a", "a", "b")
    assert [p.name for p, _ in embedded.unreadable] == ["b.2.jpg"]
    assert embedded.vectors.shape == (3, 3)
    assert len(list_labelled_images(tmp_path, limit_identities=1)) == 2


# --- the command -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported_model(exported_models_dir: Path) -> Path:
    return exported_models_dir / "efficientnet_lite0.onnx"


@pytest.mark.torch
def test_reid_eval_command_json(tmp_path: Path, exported_model: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    _write_images(tmp_path / "q", ["1_1.jpg", "2_1.jpg"], seed=1)
    _write_images(tmp_path / "g", ["1_2.jpg", "1_3.jpg", "2_2.jpg", "3_1.jpg"], seed=2)
    (tmp_path / "g" / "4_1.jpg").write_bytes(b"broken")
    runner = CliRunner()
    args = ["reid", "eval", "--query", str(tmp_path / "q"), "--gallery", str(tmp_path / "g")]
    result = runner.invoke(app, [*args, "--model", str(exported_model), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"rank1", "rank5", "rank10", "mAP", "cmc", "queries", "gallery", "model"} <= set(payload)
    assert payload["queries"] == 2 and payload["gallery"] == 4
    assert payload["model"] == "efficientnet_lite0@imagenet-1"
    assert "4_1.jpg" in result.stderr

    loo_args = ["reid", "eval", "--gallery", str(tmp_path / "g"), "--leave-one-out"]
    loo = runner.invoke(app, [*loo_args, "--model", str(exported_model)])
    assert loo.exit_code == 0, loo.output
    # Only identity 1 has two readable images: two queries, four gallery images.
    assert "queries   2    gallery 4" in loo.stdout and "rank-1" in loo.stdout


def test_reid_eval_needs_query_or_leave_one_out(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    result = CliRunner().invoke(app, ["reid", "eval", "--gallery", str(tmp_path)])
    assert result.exit_code == 1
    assert "--leave-one-out" in result.stderr
