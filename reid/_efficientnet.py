"""The `efficientnet_lite0` backend: ImageNet EfficientNet-Lite0 pooled features, zero-shot.

`petmatch models prepare` exports the ONNX file (`reid.export.prepare_efficientnet_lite0`);
at run time only ONNX Runtime is needed. Crops are letterboxed onto a black 224x224 square,
which beat the 256x128 person shape on pets (see `scripts/bench_reid.py` and the eval notes).
"""

from __future__ import annotations

from pathlib import Path

from reid._base import register_embedder
from reid._ort import OrtEmbedder, SessionFactory
from reid._preprocess import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "EFFICIENTNET_LITE0_FILE",
    "EFFICIENTNET_LITE0_ID",
    "EFFICIENTNET_LITE0_INPUT",
    "build_efficientnet_lite0",
    "efficientnet_lite0_path",
]

EFFICIENTNET_LITE0_ID = "efficientnet_lite0@imagenet-1"
EFFICIENTNET_LITE0_FILE = "efficientnet_lite0.onnx"
EFFICIENTNET_LITE0_INPUT: tuple[int, int] = (224, 224)


def efficientnet_lite0_path(models_dir: Path) -> Path:
    """Where `petmatch models prepare` puts the EfficientNet-Lite0 ONNX file."""
    return Path(models_dir) / EFFICIENTNET_LITE0_FILE


@register_embedder("efficientnet_lite0")
def build_efficientnet_lite0(
    *,
    models_dir: Path,
    batch_size: int = 16,
    flip_average: bool = True,
    session_factory: SessionFactory | None = None,
) -> OrtEmbedder:
    """EfficientNet-Lite0 ImageNet features (1280-d) from `models_dir/efficientnet_lite0.onnx`."""
    return OrtEmbedder(
        efficientnet_lite0_path(models_dir),
        model_id=EFFICIENTNET_LITE0_ID,
        input_size=EFFICIENTNET_LITE0_INPUT,
        letterbox=True,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        batch_size=batch_size,
        flip_average=flip_average,
        output_name="features",
        session_factory=session_factory,
    )
