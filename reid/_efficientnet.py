"""The `efficientnet_lite{0,1,2}` backends: ImageNet EfficientNet-Lite pooled features, zero-shot.

`petmatch models prepare` exports the ONNX files (`reid.export.prepare_efficientnet_lite`);
at run time only ONNX Runtime is needed. Crops are letterboxed onto a black square of the
model's own input size, which beat the 256x128 person shape on pets (see
`scripts/bench_reid.py` and the eval notes).

Normalisation is per model. Lite0 keeps ImageNet mean/std (its calibration and the vectors
already stored by running bots were made that way); Lite1 and Lite2 use the models' own
(x - 127.5) / 127.5, which measured better on both dev sets (README, "Re-identification").
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from reid._base import register_embedder
from reid._ort import OrtEmbedder, SessionFactory
from reid._preprocess import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "EFFICIENTNET_LITE0_FILE",
    "EFFICIENTNET_LITE0_ID",
    "EFFICIENTNET_LITE0_INPUT",
    "LITE_SPECS",
    "LiteSpec",
    "build_efficientnet_lite0",
    "efficientnet_lite0_path",
    "efficientnet_lite_path",
]

OWN_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
OWN_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)


class LiteSpec(BaseModel):
    """How one EfficientNet-Lite variant is fed and named."""

    model_config = ConfigDict(frozen=True)

    name: str  # the registered backend name, also the ONNX file stem
    variant: int
    model_id: str
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def onnx_path(self, models_dir: Path) -> Path:
        return Path(models_dir) / f"{self.name}.onnx"


LITE_SPECS: dict[str, LiteSpec] = {
    spec.name: spec
    for spec in (
        LiteSpec(
            name="efficientnet_lite0",
            variant=0,
            model_id="efficientnet_lite0@imagenet-1",
            input_size=(224, 224),
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        ),
        LiteSpec(
            name="efficientnet_lite1",
            variant=1,
            model_id="efficientnet_lite1@imagenet-1",
            input_size=(240, 240),
            mean=OWN_MEAN,
            std=OWN_STD,
        ),
        LiteSpec(
            name="efficientnet_lite2",
            variant=2,
            model_id="efficientnet_lite2@imagenet-1",
            input_size=(260, 260),
            mean=OWN_MEAN,
            std=OWN_STD,
        ),
    )
}

EFFICIENTNET_LITE0_ID = LITE_SPECS["efficientnet_lite0"].model_id
EFFICIENTNET_LITE0_FILE = "efficientnet_lite0.onnx"
EFFICIENTNET_LITE0_INPUT: tuple[int, int] = LITE_SPECS["efficientnet_lite0"].input_size


def efficientnet_lite0_path(models_dir: Path) -> Path:
    """Where `petmatch models prepare` puts the EfficientNet-Lite0 ONNX file."""
    return Path(models_dir) / EFFICIENTNET_LITE0_FILE


def efficientnet_lite_path(name: str, models_dir: Path) -> Path:
    """Where `petmatch models prepare` puts the ONNX file of backend `name`."""
    return LITE_SPECS[name].onnx_path(models_dir)


def _build(
    spec: LiteSpec,
    models_dir: Path,
    batch_size: int,
    flip_average: bool,
    session_factory: SessionFactory | None,
) -> OrtEmbedder:
    return OrtEmbedder(
        spec.onnx_path(models_dir),
        model_id=spec.model_id,
        input_size=spec.input_size,
        letterbox=True,
        mean=spec.mean,
        std=spec.std,
        batch_size=batch_size,
        flip_average=flip_average,
        output_name="features",
        session_factory=session_factory,
    )


@register_embedder("efficientnet_lite0")
def build_efficientnet_lite0(
    *,
    models_dir: Path,
    batch_size: int = 16,
    flip_average: bool = True,
    session_factory: SessionFactory | None = None,
) -> OrtEmbedder:
    """EfficientNet-Lite0 ImageNet features (1280-d) from `models_dir/efficientnet_lite0.onnx`."""
    spec = LITE_SPECS["efficientnet_lite0"]
    return _build(spec, models_dir, batch_size, flip_average, session_factory)


@register_embedder("efficientnet_lite1")
def build_efficientnet_lite1(
    *,
    models_dir: Path,
    batch_size: int = 16,
    flip_average: bool = True,
    session_factory: SessionFactory | None = None,
) -> OrtEmbedder:
    """EfficientNet-Lite1 ImageNet features (1280-d, 240 px) from `efficientnet_lite1.onnx`."""
    spec = LITE_SPECS["efficientnet_lite1"]
    return _build(spec, models_dir, batch_size, flip_average, session_factory)


@register_embedder("efficientnet_lite2")
def build_efficientnet_lite2(
    *,
    models_dir: Path,
    batch_size: int = 16,
    flip_average: bool = True,
    session_factory: SessionFactory | None = None,
) -> OrtEmbedder:
    """EfficientNet-Lite2 ImageNet features (1280-d, 260 px) from `efficientnet_lite2.onnx`."""
    spec = LITE_SPECS["efficientnet_lite2"]
    return _build(spec, models_dir, batch_size, flip_average, session_factory)
