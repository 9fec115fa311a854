"""Training data: labelled images in memory, the fixed identity split, P×K batches, augmentation.

Augmentations are numpy/OpenCV only (no torchvision): random resized crop, horizontal flip,
colour and gamma jitter (sun-bleached fur is common in VK photos), random erasing.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reid._preprocess import IMAGENET_MEAN, IMAGENET_STD, letterbox, stretch
from reid.evaluation import LabelledImage, read_rgb

logger = logging.getLogger("petmatch.reid")

SPLIT_SALT = "petmatch-split-v1"


def is_validation_identity(identity: str, val_percent: int, salt: str = SPLIT_SALT) -> bool:
    """The fixed split: an identity is held out when sha1(salt:identity) mod 100 < val_percent.

    It depends on the identity's name only, so it never changes when images are added and
    never splits one identity's images between train and validation.
    """
    digest = hashlib.sha1(f"{salt}:{identity}".encode()).hexdigest()
    return int(digest[:8], 16) % 100 < val_percent


def split_identities(
    identities: Sequence[str], val_percent: int, salt: str = SPLIT_SALT
) -> tuple[list[str], list[str]]:
    """(train, validation) identity names under the fixed hash split."""
    train = [i for i in identities if not is_validation_identity(i, val_percent, salt)]
    val = [i for i in identities if is_validation_identity(i, val_percent, salt)]
    return train, val


def fit_image(image: np.ndarray, input_size: tuple[int, int], letterbox_crops: bool) -> np.ndarray:
    """The same fit the ONNX embedder applies (letterbox for square input, else stretch)."""
    return letterbox(image, input_size) if letterbox_crops else stretch(image, input_size)


@dataclass(frozen=True)
class LabelledImages:
    """Images already fitted to the model input, their identity names and integer labels."""

    images: np.ndarray  # uint8 (n, h, w, 3)
    identities: tuple[str, ...]  # per image
    labels: np.ndarray  # int64 (n,), 0..num_classes-1 in sorted identity order
    paths: tuple[Path, ...]

    @property
    def num_classes(self) -> int:
        return len(set(self.identities))


def load_images(
    items: Sequence[LabelledImage], input_size: tuple[int, int], letterbox_crops: bool
) -> LabelledImages:
    """Read and fit `items` (from `reid.evaluation.list_labelled_images`) into memory."""
    names = sorted({item.identity for item in items})
    index = {name: i for i, name in enumerate(names)}
    images = np.empty((len(items), *input_size, 3), dtype=np.uint8)
    for i, item in enumerate(items):
        images[i] = fit_image(read_rgb(item.path), input_size, letterbox_crops)
    return LabelledImages(
        images=images,
        identities=tuple(item.identity for item in items),
        labels=np.asarray([index[item.identity] for item in items], dtype=np.int64),
        paths=tuple(item.path for item in items),
    )


class PKSampler:
    """Identity-balanced batches: P identities × K images each (K drawn with replacement
    when an identity has fewer). Only identities with ≥ 2 images take part."""

    def __init__(self, labels: np.ndarray, p: int, k: int) -> None:
        by_label: dict[int, list[int]] = defaultdict(list)
        for i, label in enumerate(labels.tolist()):
            by_label[label].append(i)
        self.groups = {label: idx for label, idx in by_label.items() if len(idx) >= 2}
        if len(self.groups) < 2:
            raise ValueError("P×K batches need at least two identities with two images each")
        self.p = min(p, len(self.groups))
        self.k = k
        n = sum(len(v) for v in self.groups.values())
        self.batches_per_epoch = max(1, n // (self.p * self.k))

    def epoch(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """Index batches for one epoch."""
        labels = np.asarray(sorted(self.groups))
        for _ in range(self.batches_per_epoch):
            chosen = rng.choice(labels, size=self.p, replace=False)
            batch = []
            for label in chosen.tolist():
                pool = self.groups[label]
                batch.extend(rng.choice(pool, size=self.k, replace=len(pool) < self.k).tolist())
            yield np.asarray(batch, dtype=np.int64)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation."""

    crop_scale: tuple[float, float] = (0.64, 1.0)
    crop_ratio: tuple[float, float] = (0.75, 1.333)
    flip_p: float = 0.5
    color_p: float = 0.8
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    gamma_p: float = 0.5
    gamma: tuple[float, float] = (0.6, 1.6)
    erase_p: float = 0.5
    erase_area: tuple[float, float] = (0.02, 0.25)
    erase_ratio: tuple[float, float] = (0.3, 3.3)


def _random_resized_crop(
    img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    h, w = img.shape[:2]
    for _ in range(10):
        area = h * w * rng.uniform(*cfg.crop_scale)
        ratio = float(np.exp(rng.uniform(np.log(cfg.crop_ratio[0]), np.log(cfg.crop_ratio[1]))))
        cw = round(np.sqrt(area * ratio))
        ch = round(np.sqrt(area / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            y = int(rng.integers(0, h - ch + 1))
            x = int(rng.integers(0, w - cw + 1))
            return cv2.resize(img[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_LINEAR)
    return img


def _color_jitter(x: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    # x: float32 HxWx3 in 0..1. Brightness is multiplicative so a black background stays black.
    x = x * rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) + mean
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * rng.uniform(1 - cfg.saturation, 1 + cfg.saturation) + grey
    return np.clip(x, 0.0, 1.0)


def _random_erase(chw: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> None:
    _, h, w = chw.shape
    for _ in range(10):
        area = h * w * rng.uniform(*cfg.erase_area)
        ratio = rng.uniform(*cfg.erase_ratio)
        eh = round(np.sqrt(area * ratio))
        ew = round(np.sqrt(area / ratio))
        if 0 < eh < h and 0 < ew < w:
            y = int(rng.integers(0, h - eh + 1))
            x = int(rng.integers(0, w - ew + 1))
            chw[:, y : y + eh, x : x + ew] = rng.standard_normal((3, eh, ew), dtype=np.float32)
            return


def augment(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """One augmented, normalized CHW float32 view of a fitted uint8 image."""
    img = _random_resized_crop(img, cfg, rng)
    if rng.random() < cfg.flip_p:
        img = img[:, ::-1]
    x = img.astype(np.float32) / 255.0
    if rng.random() < cfg.color_p:
        x = _color_jitter(x, cfg, rng)
    if rng.random() < cfg.gamma_p:
        x = np.power(x, rng.uniform(*cfg.gamma), dtype=np.float32)
    chw = normalize(x)
    if rng.random() < cfg.erase_p:
        _random_erase(chw, cfg, rng)
    return chw


def normalize(x: np.ndarray) -> np.ndarray:
    """HxWx3 float in 0..1 → ImageNet-normalized CHW float32 (as the ONNX embedder does)."""
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    return np.ascontiguousarray(((x - mean) / std).transpose(2, 0, 1), dtype=np.float32)


def plain_batch(images: np.ndarray) -> np.ndarray:
    """Fitted uint8 (n, h, w, 3) → normalized NCHW float32, no augmentation."""
    return np.stack([normalize(img.astype(np.float32) / 255.0) for img in images])


def augmented_batch(images: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Fitted uint8 (n, h, w, 3) → augmented normalized NCHW float32."""
    return np.stack([augment(img, cfg, rng) for img in images])
