"""Training OSNet for pets: data, training loop, evaluation reports, export, dataset building.

Torch is imported only when a torch-backed name is first used, so importing this package (for
`build_dataset` or the identity split) does not need the `train` extra.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "AugmentConfig",
    "DatasetConfig",
    "DatasetReport",
    "ExportedModel",
    "PostPhotos",
    "TrainConfig",
    "TrainResult",
    "activation_maps",
    "build_dataset",
    "evaluate_model",
    "export_checkpoint",
    "is_validation_identity",
    "pick_device",
    "posts_from_folder",
    "split_identities",
    "train",
    "write_activation_grid",
    "write_evaluation_report",
]

_LAZY = {
    "AugmentConfig": "reid.training._data",
    "is_validation_identity": "reid.training._data",
    "split_identities": "reid.training._data",
    "TrainConfig": "reid.training._train",
    "TrainResult": "reid.training._train",
    "evaluate_model": "reid.training._train",
    "pick_device": "reid.training._train",
    "train": "reid.training._train",
    "DatasetConfig": "reid.training._dataset",
    "DatasetReport": "reid.training._dataset",
    "PostPhotos": "reid.training._dataset",
    "build_dataset": "reid.training._dataset",
    "posts_from_folder": "reid.training._dataset",
    "ExportedModel": "reid.training._export",
    "export_checkpoint": "reid.training._export",
    "activation_maps": "reid.training._report",
    "write_activation_grid": "reid.training._report",
    "write_evaluation_report": "reid.training._report",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reid.training' has no attribute {name!r}")
