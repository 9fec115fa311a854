"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared`; tests that need it skip with a reason when it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"needs the shared data folder at {SHARED_DIR}, which is absent")
    return SHARED_DIR


@pytest.fixture(scope="session")
def exported_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the EfficientNet-Lite0 and -Lite1 (the default) ONNX exports,
    made once per session (needs torch, as `petmatch models prepare` does; skips without it)."""
    pytest.importorskip("torch", reason="exporting the ONNX model needs torch (the train extra)")
    from reid.export import prepare_efficientnet_lite

    folder = tmp_path_factory.mktemp("models")
    prepare_efficientnet_lite("efficientnet_lite0", folder)
    prepare_efficientnet_lite("efficientnet_lite1", folder)
    return folder
