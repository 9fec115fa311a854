"""Building a pet re-ID dataset from posts: de-duplicate photos, cut animals out with a
segmenter, group crops into identity folders, clean, report, and split by identity.

Layout written under `out_dir`:

    identities/<postid>_<k>/<postid>_<photo>_<n>.jpg   training images (one folder per animal)
    contact_sheets/<postid>_<k>.jpg                    a quick look at each identity
    report.json                                        counts, what was dropped and why, flags
    split.json                                         the fixed train/val split by identity

`reid` never imports `segmentation`: the segmenter is passed in and only needs
`segment(rgb) -> list[crop]` where a crop has `species`, `score`, `mask`, `crop`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import imagehash
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from reid.evaluation import IMAGE_SUFFIXES
from reid.training._data import SPLIT_SALT, is_validation_identity

__all__ = [
    "DatasetConfig",
    "DatasetReport",
    "PostPhotos",
    "build_dataset",
    "posts_from_folder",
]

logger = logging.getLogger("petmatch.reid")


class PostPhotos(BaseModel):
    """One post's photos, in post order."""

    model_config = ConfigDict(frozen=True)

    post_id: str = Field(pattern=r"^[A-Za-z0-9-]+$")
    photos: tuple[Path, ...]


class _Crop(Protocol):
    species: Any
    score: float
    mask: np.ndarray
    crop: np.ndarray


class _Segmenter(Protocol):
    def segment(self, image: np.ndarray) -> Sequence[_Crop]: ...


class DatasetConfig(BaseModel):
    """Cleaning thresholds."""

    model_config = ConfigDict(frozen=True)

    min_side: int = 48  # crops smaller than this (pixels, either side) are dropped
    min_score: float = 0.5  # species-classifier confidence below this: "not an animal"
    near_duplicate_bits: int = 6  # phash Hamming distance for a near-duplicate photo
    crop_match: float = 0.92  # normalized correlation for "one photo is a crop of another"
    val_percent: int = 20
    contact_thumb: int = 96


class DatasetReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    counts: dict[str, int]
    dropped: list[dict[str, str]]
    flagged_posts: dict[str, list[str]]
    identities: dict[str, int]  # identity -> number of crops
    train: list[str]
    val: list[str]


def posts_from_folder(root: Path) -> list[PostPhotos]:
    """Posts from `<postid>_<n>.jpg` files and/or `<postid>/<n>.jpg` folders under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    grouped: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        rel = path.relative_to(root)
        post = rel.parts[0] if len(rel.parts) > 1 else rel.stem.split("_", 1)[0]
        grouped.setdefault(post, []).append(path)

    def order(p: Path) -> tuple[int, str]:
        digits = re.findall(r"\d+", p.stem)
        return (int(digits[-1]) if digits else 0, p.name)

    return [
        PostPhotos(post_id=k, photos=tuple(sorted(v, key=order)))
        for k, v in sorted(grouped.items())
    ]


def _is_crop_of(small: np.ndarray, large: np.ndarray, threshold: float) -> bool:
    """Whether `small` looks like a (rescaled) crop of `large`: grey template matching."""
    g_large = cv2.cvtColor(large, cv2.COLOR_RGB2GRAY)
    g_small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    scale = 160 / max(g_large.shape)
    g_large = cv2.resize(g_large, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    for rel in (1.0, 0.85, 0.7, 0.55, 0.4):
        # the small image covers `rel` of the large one's longer side
        s = rel * max(g_large.shape) / max(g_small.shape)
        tpl = cv2.resize(g_small, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        if (
            tpl.shape[0] > g_large.shape[0]
            or tpl.shape[1] > g_large.shape[1]
            or min(tpl.shape) < 16
        ):
            continue
        if float(cv2.matchTemplate(g_large, tpl, cv2.TM_CCOEFF_NORMED).max()) >= threshold:
            return True
    return False


def _nuisances(crop: _Crop, photo: np.ndarray) -> set[str]:
    """What is wrong with one crop or its photo (a post is flagged when all crops share one)."""
    found: set[str] = set()
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    if (grey >= 250).mean() > 0.25 or grey.mean() > 210:
        found.add("over_exposed")
    if grey.mean() < 40:
        found.add("under_exposed")
    mask = np.asarray(crop.mask, bool)
    if mask.any():
        hsv = cv2.cvtColor(crop.crop, cv2.COLOR_RGB2HSV)[mask]
        hue, sat, val = hsv[:, 0].astype(int), hsv[:, 1].astype(int), hsv[:, 2].astype(int)
        if ((hue >= 35) & (hue <= 85) & (sat > 60) & (val > 40)).mean() > 0.3:
            found.add("grass_in_mask")
        if ((hue <= 20) & (sat > 40) & (sat < 170) & (val > 90)).mean() > 0.4:
            found.add("skin_in_mask")
    return found


def _colour_feature(crop: _Crop) -> np.ndarray:
    hsv = cv2.cvtColor(crop.crop, cv2.COLOR_RGB2HSV)
    mask = np.asarray(crop.mask, np.uint8)
    hist = cv2.calcHist([hsv], [0, 1, 2], mask, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    return hist / max(float(np.linalg.norm(hist)), 1e-12)


def _assign_identities(photo_crops: list[list[int]], features: np.ndarray) -> list[int]:
    """Cluster a post's crops into as many animals as its busiest photo shows; crops of one
    photo always go to different animals (Hungarian assignment to running centroids)."""
    from scipy.optimize import linear_sum_assignment

    n = sum(len(c) for c in photo_crops)
    k = max((len(c) for c in photo_crops), default=0)
    labels = [0] * n
    if k <= 1:
        return labels
    seed = max(range(len(photo_crops)), key=lambda i: len(photo_crops[i]))
    centroids = [features[j].copy() for j in photo_crops[seed]]
    for cluster, j in enumerate(photo_crops[seed]):
        labels[j] = cluster
    counts = [1] * k
    for i, crops in enumerate(photo_crops):
        if i == seed or not crops:
            continue
        cost = np.array([[-float(features[j] @ c) for c in centroids] for j in crops])
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols, strict=True):
            j = crops[r]
            labels[j] = int(c)
            counts[c] += 1
            centroids[c] += (features[j] - centroids[c]) / counts[c]
    return labels


def _contact_sheet(paths: Sequence[Path], thumb: int) -> np.ndarray:
    tiles = []
    for path in paths:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((thumb, thumb))
            tile = np.zeros((thumb, thumb, 3), np.uint8)
            arr = np.asarray(im)
            tile[: arr.shape[0], : arr.shape[1]] = arr
            tiles.append(tile)
    cols = min(8, len(tiles))
    rows = -(-len(tiles) // cols)
    tiles += [np.zeros_like(tiles[0])] * (rows * cols - len(tiles))
    return np.concatenate(
        [np.concatenate(tiles[r * cols : (r + 1) * cols], axis=1) for r in range(rows)]
    )


def build_dataset(
    posts: Iterable[PostPhotos],
    segmenter: _Segmenter,
    out_dir: Path,
    *,
    config: DatasetConfig | None = None,
    features: Callable[[Sequence[np.ndarray]], np.ndarray] | None = None,
    progress: Callable[[int], None] | None = None,
) -> DatasetReport:
    """Build identity folders from `posts` (see the module docstring for the layout).

    `features` (e.g. a re-ID embedder's vectors) separates several animals of one post;
    without it, colour histograms of the masked crops do.
    """
    cfg = config or DatasetConfig()
    out_dir = Path(out_dir)
    ident_root = out_dir / "identities"
    sheets = out_dir / "contact_sheets"
    ident_root.mkdir(parents=True, exist_ok=True)
    sheets.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(
        (
            "posts",
            "photos",
            "unreadable",
            "duplicate",
            "near_duplicate",
            "crop_of_another",
            "no_animal",
            "crops",
            "too_small",
            "not_animal",
            "identities",
        ),
        0,
    )
    dropped: list[dict[str, str]] = []
    flagged: dict[str, list[str]] = {}
    identities: dict[str, int] = {}
    seen_sha: dict[str, str] = {}
    seen_hash: list[tuple[imagehash.ImageHash, str]] = []

    for post in posts:
        counts["posts"] += 1
        kept: list[tuple[int, np.ndarray]] = []
        for n, path in enumerate(post.photos):
            counts["photos"] += 1
            key = f"{post.post_id}:{path.name}"
            try:
                raw = path.read_bytes()
                with Image.open(path) as im:
                    rgb = np.asarray(im.convert("RGB"))
            except OSError as exc:
                counts["unreadable"] += 1
                dropped.append({"photo": key, "reason": "unreadable", "detail": str(exc)})
                continue
            sha = hashlib.sha256(raw).hexdigest()
            if sha in seen_sha:
                counts["duplicate"] += 1
                dropped.append({"photo": key, "reason": "duplicate", "detail": seen_sha[sha]})
                continue
            seen_sha[sha] = key
            phash = imagehash.phash(Image.fromarray(rgb))
            near = next((k for h, k in seen_hash if h - phash <= cfg.near_duplicate_bits), None)
            if near is not None:
                counts["near_duplicate"] += 1
                dropped.append({"photo": key, "reason": "near_duplicate", "detail": near})
                continue
            parent = next(
                (
                    f"{post.post_id}:{post.photos[m].name}"
                    for m, other in kept
                    if _is_crop_of(*sorted((rgb, other), key=lambda a: a.size), cfg.crop_match)
                ),
                None,
            )
            if parent is not None:
                counts["crop_of_another"] += 1
                dropped.append({"photo": key, "reason": "crop_of_another", "detail": parent})
                continue
            seen_hash.append((phash, key))
            kept.append((n, rgb))

        crops: list[tuple[int, int, _Crop, set[str]]] = []  # photo n, crop n, crop, nuisances
        photo_crops: list[list[int]] = []
        for n, rgb in kept:
            found = segmenter.segment(rgb)
            if not found:
                counts["no_animal"] += 1
                dropped.append(
                    {
                        "photo": f"{post.post_id}:{post.photos[n].name}",
                        "reason": "no_animal",
                        "detail": "",
                    }
                )
            mine: list[int] = []
            for c, crop in enumerate(found):
                name = f"{post.post_id}_{n}_{c}"
                h, w = crop.crop.shape[:2]
                species = str(getattr(crop.species, "value", crop.species))
                if min(h, w) < cfg.min_side:
                    counts["too_small"] += 1
                    dropped.append({"crop": name, "reason": "too_small", "detail": f"{w}x{h}"})
                    continue
                if species == "other" or crop.score < cfg.min_score:
                    counts["not_animal"] += 1
                    dropped.append(
                        {
                            "crop": name,
                            "reason": "not_animal",
                            "detail": f"{species} {crop.score:.2f}",
                        }
                    )
                    continue
                mine.append(len(crops))
                crops.append((n, c, crop, _nuisances(crop, rgb)))
            photo_crops.append(mine)
        if progress is not None:
            progress(1)
        if not crops:
            continue
        feats = (
            np.asarray(features([c[2].crop for c in crops]), np.float32)
            if features is not None
            else np.stack([_colour_feature(c[2]) for c in crops])
        )
        labels = _assign_identities(photo_crops, feats)
        shared = set.intersection(*(c[3] for c in crops))
        if shared:
            flagged[post.post_id] = sorted(shared)
        for (n, c, crop, _), label in zip(crops, labels, strict=True):
            identity = f"{post.post_id}_{label}"
            folder = ident_root / identity
            folder.mkdir(exist_ok=True)
            Image.fromarray(crop.crop).save(folder / f"{post.post_id}_{n}_{c}.jpg", quality=95)
            identities[identity] = identities.get(identity, 0) + 1
            counts["crops"] += 1

    for identity in identities:
        paths = sorted((ident_root / identity).glob("*.jpg"))
        sheet = _contact_sheet(paths, cfg.contact_thumb)
        Image.fromarray(sheet).save(sheets / f"{identity}.jpg", quality=90)
    counts["identities"] = len(identities)
    names = sorted(identities)
    val = [i for i in names if is_validation_identity(i, cfg.val_percent)]
    train = [i for i in names if i not in set(val)]
    report = DatasetReport(
        counts=counts,
        dropped=dropped,
        flagged_posts=flagged,
        identities=identities,
        train=train,
        val=val,
    )
    (out_dir / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    (out_dir / "split.json").write_text(
        json.dumps(
            {
                "rule": (
                    f"val if int(sha1('{SPLIT_SALT}:' + identity)[:8], 16) % 100"
                    f" < {cfg.val_percent}"
                ),
                "train": train,
                "val": val,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    logger.info("dataset: %s", counts)
    return report
