"""Re-identification: crops in, L2-normalized vectors out, plus evaluation and calibration."""

from reid import (
    _efficientnet,  # noqa: F401  (registers the `efficientnet_lite0` backend)
    _osnet,  # noqa: F401  (registers the `osnet` backend)
)
from reid._base import (
    Embedder,
    Embeddings,
    available_embedders,
    build_embedder,
    register_embedder,
)
from reid._efficientnet import (
    EFFICIENTNET_LITE0_ID,
    LITE_SPECS,
    efficientnet_lite0_path,
    efficientnet_lite_path,
)
from reid._ort import (
    InferenceSession,
    OnnxModelSpec,
    OrtEmbedder,
    SessionFactory,
    l2_normalize,
    load_onnx_embedder,
    ort_session,
    sidecar_path,
)
from reid._preprocess import IMAGENET_MEAN, IMAGENET_STD, letterbox, prepare_batch, stretch
from reid.calibration import (
    Calibration,
    PrecisionRecallRow,
    calibration_path,
    fit_calibration,
    packaged_calibration,
    pair_similarities,
    precision_recall_table,
)
from reid.errors import ModelConfigError, ModelNotFoundError, ReidError

__all__ = [
    "EFFICIENTNET_LITE0_ID",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LITE_SPECS",
    "Calibration",
    "Embedder",
    "Embeddings",
    "InferenceSession",
    "ModelConfigError",
    "ModelNotFoundError",
    "OnnxModelSpec",
    "OrtEmbedder",
    "PrecisionRecallRow",
    "ReidError",
    "SessionFactory",
    "available_embedders",
    "build_embedder",
    "calibration_path",
    "efficientnet_lite0_path",
    "efficientnet_lite_path",
    "fit_calibration",
    "l2_normalize",
    "letterbox",
    "load_onnx_embedder",
    "ort_session",
    "packaged_calibration",
    "pair_similarities",
    "precision_recall_table",
    "prepare_batch",
    "register_embedder",
    "sidecar_path",
    "stretch",
]
