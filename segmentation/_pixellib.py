"""The optional `pixellib` backend: PixelLib 0.7.1 PointRend (COCO `cat`/`dog`).

PixelLib is unmaintained: its torch backend needs torchvision, fvcore, iopath, imantics and
`pkg_resources`, and it still calls Pillow names removed in Pillow 10 (`Image.LINEAR`,
`Image.ANTIALIAS`), which `_apply_pillow_shims` puts back. Install the `pixellib` extra and
supply `pointrend_resnet50.pkl` yourself; without either, building the backend fails with a
message that says which one is missing. The conversion of PixelLib's result dict to our
crops (`crops_from_pixellib`) is plain numpy and works without PixelLib.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segmentation._base import AnimalCrop, Species, register_segmenter
from segmentation._image import check_image
from segmentation.errors import SegmentationModelNotFoundError

__all__ = ["PixellibSegmenter", "build_pixellib_segmenter", "crops_from_pixellib"]

logger = logging.getLogger("petmatch.segmentation")

# PixelLib's 0-based COCO class list: ... 14 bird, 15 cat, 16 dog, 17 horse ...
COCO_SPECIES = {15: Species.CAT, 16: Species.DOG}


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def crops_from_pixellib(
    image: np.ndarray,
    result: dict[str, Any],
    *,
    min_score: float = 0.5,
    min_crop_pixels: int = 48 * 48,
) -> list[AnimalCrop]:
    """PixelLib's `{boxes, class_ids, masks, scores}` to our crops (cats and dogs only).

    PixelLib gives scores as 0..100 integers and masks stacked as (H, W, N); (N, H, W) and
    0..1 scores are accepted too. Largest animal first.
    """
    image = check_image(image)
    h, w = image.shape[:2]
    boxes = _as_numpy(result.get("boxes", np.zeros((0, 4)))).reshape(-1, 4)
    class_ids = _as_numpy(result.get("class_ids", np.zeros(0))).reshape(-1).astype(int)
    scores = _as_numpy(result.get("scores", np.zeros(0))).reshape(-1).astype(float)
    masks = _as_numpy(result.get("masks", np.zeros((h, w, 0), bool)))
    n = len(class_ids)
    if len(boxes) != n or len(scores) != n:
        raise ValueError(
            f"PixelLib result has {n} classes, {len(boxes)} boxes, {len(scores)} scores"
        )
    if n and masks.ndim == 3 and masks.shape[:2] == (h, w) and masks.shape[2] == n:
        masks = np.moveaxis(masks, 2, 0)
    if n and (masks.ndim != 3 or masks.shape != (n, h, w)):
        raise ValueError(f"PixelLib masks of shape {masks.shape} do not fit {n} objects in {h}x{w}")
    if n and scores.max() > 1.0:
        scores = scores / 100.0
    crops: list[AnimalCrop] = []
    for i in range(n):
        species = COCO_SPECIES.get(int(class_ids[i]))
        mask_full = masks[i].astype(bool)
        if species is None or scores[i] < min_score or mask_full.sum() < min_crop_pixels:
            continue
        ys, xs = np.nonzero(mask_full)
        # The mask is the truth; PixelLib's box can be looser or clipped differently.
        x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
        mask = mask_full[y0:y1, x0:x1].copy()
        crop = image[y0:y1, x0:x1].copy()
        crop[~mask] = 0
        crops.append(
            AnimalCrop(
                species=species, score=float(scores[i]), box=(x0, y0, x1, y1), mask=mask, crop=crop
            )
        )
    crops.sort(key=lambda c: -int(c.mask.sum()))
    return crops


def _apply_pillow_shims() -> None:
    """Names PixelLib 0.7.1 uses that Pillow 10 removed."""
    from PIL import Image

    if not hasattr(Image, "LINEAR"):
        Image.LINEAR = Image.BILINEAR  # type: ignore[attr-defined]
    if not hasattr(Image, "ANTIALIAS"):
        Image.ANTIALIAS = Image.LANCZOS  # type: ignore[attr-defined]


class PixellibSegmenter:
    """PointRend instance segmentation through PixelLib, loaded on first use."""

    name = "pixellib"

    def __init__(
        self, weights: Path, *, min_score: float = 0.5, min_crop_pixels: int = 48 * 48
    ) -> None:
        self.weights = Path(weights)
        self.min_score = min_score
        self.min_crop_pixels = min_crop_pixels
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                _apply_pillow_shims()
                from pixellib.torchbackend.instance import instanceSegmentation

                model = instanceSegmentation()
                model.load_model(str(self.weights), confidence=self.min_score)
                self._targets = model.select_target_classes(cat=True, dog=True)
                self._model = model
            return self._model

    def segment(self, image: np.ndarray) -> list[AnimalCrop]:
        image = check_image(image)
        model = self._load()
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        result, _ = model.segmentFrame(bgr, segment_target_classes=self._targets)
        return crops_from_pixellib(
            image, result, min_score=self.min_score, min_crop_pixels=self.min_crop_pixels
        )


@register_segmenter("pixellib")
def build_pixellib_segmenter(
    *,
    weights: Path | None = None,
    min_score: float = 0.5,
    min_crop_pixels: int = 48 * 48,
    models_dir: Path | None = None,
) -> PixellibSegmenter:
    """PixelLib PointRend: the `pixellib` extra and a user-supplied `pointrend_resnet50.pkl`.

    `models_dir` is accepted (and unused) so callers can pass the same arguments to every backend.
    """
    try:
        _apply_pillow_shims()
        import pixellib.torchbackend.instance  # noqa: F401
    except Exception as exc:  # ImportError, or its own broken imports on modern stacks
        raise SegmentationModelNotFoundError(
            "the pixellib backend needs PixelLib 0.7.1 and its torch stack (torchvision, "
            f"fvcore, iopath, imantics): pip install 'petmatch[pixellib]' ({exc})"
        ) from exc
    if weights is None or not Path(weights).is_file():
        raise SegmentationModelNotFoundError(
            f"PointRend weights {weights} are missing: download pointrend_resnet50.pkl "
            "yourself and set PETMATCH_SEGMENTATION__POINTREND_WEIGHTS to its path"
        )
    return PixellibSegmenter(Path(weights), min_score=min_score, min_crop_pixels=min_crop_pixels)
