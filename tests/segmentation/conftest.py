"""Session-scoped models for the segmentation tests (the classifier ONNX is exported once)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def classifier_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip(
        "torch", reason="exporting the species classifier needs torch (train extra)"
    )
    from reid.export import prepare_efficientnet_lite0

    path, _ = prepare_efficientnet_lite0(tmp_path_factory.mktemp("seg_models"))
    return path


@pytest.fixture(scope="session")
def segmenter(classifier_path: Path):
    from segmentation import build_segmenter

    return build_segmenter("u2netp", classifier_path=classifier_path)
