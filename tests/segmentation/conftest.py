"""Session-scoped models for the segmentation tests (the classifier ONNX is exported once)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def classifier_path(exported_models_dir: Path) -> Path:
    """The species classifier: the EfficientNet-Lite0 ONNX exported once per session."""
    return exported_models_dir / "efficientnet_lite0.onnx"


@pytest.fixture(scope="session")
def segmenter(classifier_path: Path):
    from segmentation import build_segmenter

    return build_segmenter("u2netp", classifier_path=classifier_path)
