"""Errors raised by `reid`.

ReidError
 ├── ModelNotFoundError   an ONNX file or its sidecar is missing (`petmatch models prepare`)
 └── ModelConfigError     a model's sidecar JSON is unreadable or inconsistent
"""

from __future__ import annotations

__all__ = ["ModelConfigError", "ModelNotFoundError", "ReidError"]


class ReidError(Exception):
    """Base of every `reid` error."""


class ModelNotFoundError(ReidError, FileNotFoundError):
    """A model file the embedder needs is not there; nothing falls back silently."""


class ModelConfigError(ReidError, ValueError):
    """A model description (sidecar JSON) is missing a key or has a wrong value."""
