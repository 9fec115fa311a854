"""ONNX Runtime behind a small protocol, so tests can hand a fake session to a backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = ["InferenceSession", "SessionFactory", "ort_session"]


class _NodeArg(Protocol):
    name: str
    shape: Sequence[Any]


class InferenceSession(Protocol):
    """The slice of `onnxruntime.InferenceSession` the backends use."""

    def get_inputs(self) -> Sequence[_NodeArg]: ...

    def get_outputs(self) -> Sequence[_NodeArg]: ...

    def run(
        self, output_names: list[str] | None, input_feed: dict[str, np.ndarray]
    ) -> list[np.ndarray]: ...


SessionFactory = Callable[[Path], InferenceSession]


def ort_session(path: Path) -> InferenceSession:
    """A CPU ONNX Runtime session that shares the process's CPU arena with the embedder's
    (see `reid.ort_session`): their peaks no longer add up."""
    from reid import ort_session as shared_arena_session

    return shared_arena_session(path)
