"""`build_dataset`: duplicates dropped, animals cut and grouped, cleaning, report and split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from reid.training import DatasetConfig, build_dataset, is_validation_identity, posts_from_folder
from segmentation import AnimalCrop, Species


class FakeSegmenter:
    """Saturated blobs are animals; a magenta blob is "other" (not an animal)."""

    name = "fake"

    def segment(self, image: np.ndarray) -> list[AnimalCrop]:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        mask = (hsv[:, :, 1] > 120).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
        crops = []
        for i in range(1, n):
            x, y, w, h, _ = stats[i]
            m = labels[y : y + h, x : x + w] == i
            crop = image[y : y + h, x : x + w].copy()
            crop[~m] = 0
            hue = float(np.median(hsv[y : y + h, x : x + w, 0][m]))
            species = Species.OTHER if 140 <= hue <= 160 else Species.DOG
            crops.append(
                AnimalCrop(species=species, score=0.9, box=(x, y, x + w, y + h), mask=m, crop=crop)
            )
        return crops


def _photo(
    seed: int, blobs: list[tuple[tuple[int, int, int], int, int, int]], bg: int = 110
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(bg, 25, (30, 40)).clip(0, 255).astype(np.uint8)
    img = np.repeat(
        cv2.resize(base, (320, 240), interpolation=cv2.INTER_CUBIC)[:, :, None], 3, axis=2
    )
    for colour, cx, cy, r in blobs:
        cv2.circle(img, (cx, cy), r, colour, -1)
    return img


RED, GREEN, BLUE, MAGENTA = (220, 30, 30), (30, 200, 40), (30, 40, 220), (220, 30, 200)


def _save(img: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=95)


@pytest.fixture()
def posts_dir(tmp_path: Path) -> Path:
    root = tmp_path / "posts"
    _save(_photo(1, [(RED, 100, 120, 50)]), root / "100_1.jpg")
    _save(_photo(2, [(RED, 200, 100, 45)]), root / "100_2.jpg")
    shutil.copyfile(root / "100_1.jpg", root / "100_3.jpg")  # the same file re-uploaded
    big = _photo(3, [(BLUE, 160, 120, 60), (GREEN, 300, 20, 6)])  # + a speck too small
    _save(big, root / "200" / "1.jpg")
    crop = cv2.resize(big[36:204, 48:272], (200, 150), interpolation=cv2.INTER_AREA)
    _save(crop, root / "200" / "2.jpg")  # a crop of photo 1
    _save(_photo(4, [(RED, 80, 120, 40), (GREEN, 240, 120, 40)]), root / "300_1.jpg")
    _save(_photo(5, [(GREEN, 90, 100, 45), (RED, 230, 150, 40)]), root / "300_2.jpg")
    again = np.clip(_photo(2, [(RED, 200, 100, 45)]).astype(int) + 6, 0, 255).astype(np.uint8)
    _save(again, root / "400_1.jpg")  # a repost of 100_2, slightly brighter
    _save(_photo(6, [(MAGENTA, 150, 120, 50)]), root / "500_1.jpg")
    _save(_photo(7, [(BLUE, 150, 120, 50)], bg=245), root / "600_1.jpg")
    _save(_photo(8, [(GREEN, 120, 100, 50)], bg=245), root / "600_2.jpg")
    return root


def test_posts_are_read_from_both_layouts(posts_dir: Path) -> None:
    posts = {p.post_id: [f.name for f in p.photos] for p in posts_from_folder(posts_dir)}
    assert posts["100"] == ["100_1.jpg", "100_2.jpg", "100_3.jpg"]
    assert posts["200"] == ["1.jpg", "2.jpg"]
    assert set(posts) == {"100", "200", "300", "400", "500", "600"}


def test_build_dataset_cleans_groups_and_reports(posts_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    report = build_dataset(
        posts_from_folder(posts_dir), FakeSegmenter(), out, config=DatasetConfig()
    )
    reasons = {(d.get("photo") or d.get("crop")): d["reason"] for d in report.dropped}

    assert reasons["100:100_3.jpg"] == "duplicate"
    assert reasons["400:400_1.jpg"] == "near_duplicate"
    assert reasons["200:2.jpg"] == "crop_of_another"
    assert reasons["200_0_0"] == "too_small"  # the speck, found first (top)
    assert reasons["500_0_0"] == "not_animal"
    assert report.counts["duplicate"] == 1 and report.counts["near_duplicate"] == 1

    # One animal per post → <postid>_0; two animals → two folders, grouped by look.
    assert report.identities == {"100_0": 2, "200_0": 1, "300_0": 2, "300_1": 2, "600_0": 2}
    idents = out / "identities"
    for identity in ("300_0", "300_1"):
        colours = {
            "red" if np.asarray(Image.open(p))[..., 0].max() > 150 else "green"
            for p in (idents / identity).glob("*.jpg")
        }
        assert len(colours) == 1  # both crops of one animal, never one of each
    assert sorted(f.name for f in (idents / "100_0").iterdir()) == ["100_0_0.jpg", "100_1_0.jpg"]

    assert report.flagged_posts == {"600": ["over_exposed"]}
    assert sorted(p.stem for p in (out / "contact_sheets").glob("*.jpg")) == sorted(
        report.identities
    )
    split = json.loads((out / "split.json").read_text())
    assert sorted(split["train"] + split["val"]) == sorted(report.identities)
    assert all(is_validation_identity(i, 20) for i in split["val"])
    assert json.loads((out / "report.json").read_text())["counts"]["crops"] == 9
