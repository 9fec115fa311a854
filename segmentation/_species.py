"""Species gate: EfficientNet-Lite0 ImageNet logits → cat, dog, other animal, or not an animal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from segmentation._base import Species
from segmentation._ort import InferenceSession

__all__ = ["SpeciesClassifier", "SpeciesGuess", "species_from_probabilities"]

# ImageNet-1k: 151–268 dog breeds, 281–285 domestic cats, 0–397 all animals.
DOG_CLASSES = slice(151, 269)
CAT_CLASSES = slice(281, 286)
ANIMAL_CLASSES = slice(0, 398)
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


@dataclass(frozen=True, slots=True)
class SpeciesGuess:
    species: Species | None  # None: not an animal (dropped)
    score: float  # probability mass of that species (or of "animal" when None)


def species_from_probabilities(
    probabilities: np.ndarray, *, animal_threshold: float
) -> SpeciesGuess:
    """Cat / dog / other animal from 1000 ImageNet probabilities; None below the threshold."""
    cat = float(probabilities[CAT_CLASSES].sum())
    dog = float(probabilities[DOG_CLASSES].sum())
    animal = float(probabilities[ANIMAL_CLASSES].sum())
    if animal < animal_threshold:
        return SpeciesGuess(None, animal)
    other = max(animal - cat - dog, 0.0)
    species, score = max(
        ((Species.CAT, cat), (Species.DOG, dog), (Species.OTHER, other)), key=lambda kv: kv[1]
    )
    return SpeciesGuess(species, score)


def _letterbox(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interpolation)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top : top + nh, left : left + nw] = resized
    return canvas


class SpeciesClassifier:
    """Runs the classifier ONNX (output `logits`, 224x224 input) on letterboxed images."""

    def __init__(
        self, session: InferenceSession, *, animal_threshold: float = 0.5, size: int = 224
    ) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        outputs = [o.name for o in session.get_outputs()]
        self._output = "logits" if "logits" in outputs else outputs[0]
        self.animal_threshold = animal_threshold
        self.size = size

    def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(n, 1000) softmax probabilities for RGB uint8 images."""
        if not images:
            return np.zeros((0, 1000), dtype=np.float32)
        batch = np.stack([_letterbox(image, self.size) for image in images])
        x = (batch.transpose(0, 3, 1, 2).astype(np.float32) / 255.0 - _MEAN) / _STD
        (logits,) = self._session.run([self._output], {self._input: x})
        logits = np.asarray(logits, dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def classify(self, images: Sequence[np.ndarray]) -> list[SpeciesGuess]:
        return [
            species_from_probabilities(p, animal_threshold=self.animal_threshold)
            for p in self.probabilities(images)
        ]
