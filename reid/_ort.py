"""A generic ONNX Runtime embedder: any image model with an NCHW input and a (n, d) output.

The ONNX session sits behind a small protocol so tests can hand in a fake one; the real
session is created lazily on first use and kept (immich `sessions/ort.py`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reid._base import Embeddings
from reid._preprocess import IMAGENET_MEAN, IMAGENET_STD, prepare_batch
from reid.errors import ModelConfigError, ModelNotFoundError

__all__ = [
    "InferenceSession",
    "OnnxModelSpec",
    "OrtEmbedder",
    "SessionFactory",
    "l2_normalize",
    "load_onnx_embedder",
    "ort_session",
    "sidecar_path",
]

logger = logging.getLogger("petmatch.reid")


class _NodeArg(Protocol):
    name: str
    shape: Sequence[Any]


class InferenceSession(Protocol):
    """The slice of `onnxruntime.InferenceSession` the embedder uses."""

    def get_inputs(self) -> Sequence[_NodeArg]: ...

    def get_outputs(self) -> Sequence[_NodeArg]: ...

    def run(
        self, output_names: list[str] | None, input_feed: dict[str, np.ndarray]
    ) -> list[np.ndarray]: ...


SessionFactory = Callable[[Path], InferenceSession]


_ARENA_LOCK = threading.Lock()
_shared_arena_registered = False


def _share_cpu_arena(ort: Any, options: Any) -> None:
    """Make the session allocate from one process-wide CPU arena that grows by what is asked.

    Each session's own arena keeps its peak for good and grows in powers of two, so U²-Net-p,
    the species classifier and the embedder held the sum of their peaks; one shared arena holds
    about the largest. With no memory pattern (its planned block is one more per-session peak)
    the three sessions in one process went from 760 to 443 MiB resident, and
    `scripts/bench_load.py --real-vision` from 909 to 589 MiB peak, at the same U²-Net-p speed
    (interleaved runs on this 2-core machine).
    """
    global _shared_arena_registered
    with _ARENA_LOCK:
        if not _shared_arena_registered:
            info = ort.OrtMemoryInfo(
                "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
            )
            same_as_requested = 1  # arena_extend_strategy: kSameAsRequested
            ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, same_as_requested, -1, -1))
            _shared_arena_registered = True
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.use_env_allocators", "1")


def ort_session(path: Path, *, threads: int | None = None) -> InferenceSession:
    """A CPU ONNX Runtime session for `path` (onnxruntime imported here, not at module load),
    allocating from the process's shared CPU arena."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
    _share_cpu_arena(ort, options)
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class OrtEmbedder:
    """Crops in, L2-normalized vectors out, through one ONNX model on ONNX Runtime."""

    def __init__(
        self,
        onnx_path: Path,
        *,
        model_id: str,
        input_size: tuple[int, int],
        letterbox: bool,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        batch_size: int = 16,
        flip_average: bool = True,
        output_name: str | None = None,
        session_factory: SessionFactory | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(input_size) != 2 or min(input_size) < 1:
            raise ValueError(f"input_size must be (h, w) > 0, got {input_size}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError("mean and std need three values each, std > 0")
        self.onnx_path = Path(onnx_path)
        if session_factory is None and not self.onnx_path.is_file():
            raise ModelNotFoundError(
                f"ONNX model {self.onnx_path} is missing; run `petmatch models prepare` "
                "(or `petmatch reid export` for a trained model) to create it"
            )
        self.model_id = model_id
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.letterbox = letterbox
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.batch_size = batch_size
        self.flip_average = flip_average
        self._output_name = output_name
        self._session_factory: SessionFactory = session_factory or ort_session
        self._session: InferenceSession | None = None
        self._lock = threading.Lock()

    def _get_session(self) -> InferenceSession:
        with self._lock:
            if self._session is None:
                logger.info("loading ONNX model %s (%s)", self.model_id, self.onnx_path)
                session = self._session_factory(self.onnx_path)
                outputs = [o.name for o in session.get_outputs()]
                if self._output_name is None:
                    self._output_name = outputs[0]
                elif self._output_name not in outputs:
                    raise ModelConfigError(
                        f"{self.onnx_path} has no output {self._output_name!r}; it has {outputs}"
                    )
                self._input_name = session.get_inputs()[0].name
                self._session = session
            return self._session

    @property
    def dim(self) -> int:
        """Length of the vectors (read from the model's output shape)."""
        session = self._get_session()
        for output in session.get_outputs():
            if output.name == self._output_name:
                last = output.shape[-1]
                if isinstance(last, int):
                    return last
        # Symbolic last dimension: ask the model once.
        probe = np.zeros((*self.input_size, 3), dtype=np.uint8)
        return int(self.embed([probe]).vectors.shape[1])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        session = self._get_session()
        (features,) = session.run([self._output_name], {self._input_name: batch})
        features = np.asarray(features, dtype=np.float32)
        return features.reshape(features.shape[0], -1)

    def embed(self, crops: Sequence[np.ndarray]) -> Embeddings:
        """Vectors for `crops` (RGB uint8 HxWx3), in order; flip-averaged if configured."""
        chunks: list[np.ndarray] = []
        for start in range(0, len(crops), self.batch_size):
            batch = prepare_batch(
                crops[start : start + self.batch_size],
                input_size=self.input_size,
                letterbox_crops=self.letterbox,
                mean=self.mean,
                std=self.std,
            )
            if self.flip_average:
                # One run over originals and mirrors; average the unit vectors of both.
                both = self._run(np.concatenate([batch, batch[:, :, :, ::-1]], axis=0))
                n = batch.shape[0]
                features = l2_normalize(both[:n]) + l2_normalize(both[n:])
            else:
                features = self._run(batch)
            chunks.append(l2_normalize(features))
        if not chunks:
            return Embeddings(
                vectors=np.zeros((0, self.dim), dtype=np.float32), model_id=self.model_id
            )
        return Embeddings(vectors=np.concatenate(chunks, axis=0), model_id=self.model_id)


class OnnxModelSpec(BaseModel):
    """What an `.onnx` file needs to be run: the sidecar `<name>.json` next to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str = Field(min_length=1)
    input_size: tuple[int, int]
    letterbox: bool
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    output_name: str | None = None
    source_sha256: str | None = None  # checksum of the weights the file was exported from


def sidecar_path(onnx_path: Path) -> Path:
    """`model.onnx` → `model.json`."""
    return Path(onnx_path).with_suffix(".json")


def load_onnx_embedder(
    onnx_path: Path,
    *,
    batch_size: int = 16,
    flip_average: bool = True,
    session_factory: SessionFactory | None = None,
) -> OrtEmbedder:
    """An `OrtEmbedder` for any exported model, described by its sidecar JSON."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelNotFoundError(f"ONNX model {onnx_path} does not exist")
    side = sidecar_path(onnx_path)
    if not side.is_file():
        raise ModelNotFoundError(
            f"{onnx_path} has no sidecar {side.name}: write "
            '{"model_id": ..., "input_size": [h, w], "letterbox": ..., "mean": [...], "std": [...]}'
        )
    try:
        spec = OnnxModelSpec.model_validate(json.loads(side.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise ModelConfigError(f"{side} is not a valid model description: {exc}") from exc
    return OrtEmbedder(
        onnx_path,
        model_id=spec.model_id,
        input_size=spec.input_size,
        letterbox=spec.letterbox,
        mean=spec.mean,
        std=spec.std,
        batch_size=batch_size,
        flip_average=flip_average,
        output_name=spec.output_name,
        session_factory=session_factory,
    )
