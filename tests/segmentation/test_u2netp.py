"""The default segmenter on real images: cats found, posters and maps ignored."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from segmentation import (
    AnimalCrop,
    ImageDecodeError,
    SegmentationModelNotFoundError,
    Species,
    available_segmenters,
    build_segmenter,
    read_image,
)
from segmentation._species import species_from_probabilities
from segmentation._u2netp import crop_from_mask, split_instances


def _poster() -> np.ndarray:
    poster = np.full((600, 420, 3), 245, np.uint8)
    cv2.rectangle(poster, (20, 20), (400, 120), (200, 30, 30), -1)
    for i, line in enumerate(["LOST WALLET", "REWARD 5000", "CALL +7 900", "ANY TIME"]):
        cv2.putText(
            poster, line, (30, 220 + 80 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (10, 10, 10), 4
        )
    return poster


def _map() -> np.ndarray:
    rng = np.random.default_rng(0)
    city = np.full((500, 700, 3), (232, 228, 215), np.uint8)
    for _ in range(25):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, 500, 4))
        cv2.line(city, (x0, y0), (x1 + 200, y1), (255, 255, 255), int(rng.integers(3, 12)))
    cv2.circle(city, (350, 250), 60, (170, 210, 240), -1)
    cv2.rectangle(city, (100, 80), (220, 160), (190, 230, 180), -1)
    cv2.putText(city, "ul. Lenina", (300, 400), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (60, 60, 60), 2)
    return city


def _check_crop(image: np.ndarray, crop: AnimalCrop) -> None:
    x0, y0, x1, y1 = crop.box
    assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
    assert crop.mask.shape == (y1 - y0, x1 - x0) and crop.mask.dtype == bool
    assert crop.crop.shape == (y1 - y0, x1 - x0, 3) and crop.crop.dtype == np.uint8
    assert (crop.crop[~crop.mask] == 0).all()  # background black
    np.testing.assert_array_equal(crop.crop[crop.mask], image[y0:y1, x0:x1][crop.mask])
    assert 0.0 <= crop.score <= 1.0


@pytest.mark.torch
def test_chelsea_gives_one_cat(segmenter) -> None:
    image = skimage.data.chelsea()
    crops = segmenter.segment(image)
    assert len(crops) == 1
    assert crops[0].species is Species.CAT and crops[0].score > 0.8
    _check_crop(image, crops[0])
    assert crops[0].mask.sum() > 0.3 * image.shape[0] * image.shape[1]


@pytest.mark.torch
def test_two_cats_side_by_side_give_two_crops(segmenter) -> None:
    cat = skimage.data.chelsea()
    gap = np.full((cat.shape[0], 60, 3), 255, np.uint8)
    image = np.concatenate([cat, gap, cat], axis=1)
    crops = segmenter.segment(image)
    assert [c.species for c in crops] == [Species.CAT, Species.CAT]
    left, right = sorted(crops, key=lambda c: c.box[0])
    assert left.box[2] <= cat.shape[1] + 60 and right.box[0] >= cat.shape[1]
    for crop in crops:
        _check_crop(image, crop)


@pytest.mark.torch
@pytest.mark.parametrize(
    "make",
    [
        lambda: np.stack([skimage.data.text()] * 3, axis=-1),
        _poster,
        _map,
        skimage.data.coffee,
        skimage.data.rocket,
    ],
    ids=["text", "poster", "map", "coffee", "rocket"],
)
def test_no_animal_gives_no_crops(segmenter, make) -> None:
    assert segmenter.segment(make()) == []


@pytest.mark.torch
def test_photo_from_jpeg_bytes_round_trip(segmenter) -> None:
    buffer = io.BytesIO()
    Image.fromarray(skimage.data.chelsea()).save(buffer, format="JPEG", quality=90)
    image = read_image(buffer.getvalue())
    assert [c.species for c in segmenter.segment(image)] == [Species.CAT]


def test_corrupt_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        read_image(b"\xff\xd8\xff\xe0 truncated jpeg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"GIF89a nonsense")
    with pytest.raises(ImageDecodeError, match=r"bad\.jpg"):
        read_image(bad)


@pytest.mark.torch
def test_wrong_array_is_a_clear_error(segmenter) -> None:
    with pytest.raises(ImageDecodeError, match="RGB uint8"):
        segmenter.segment(np.zeros((64, 64), dtype=np.uint8))
    with pytest.raises(ImageDecodeError, match="RGB uint8"):
        segmenter.segment(np.zeros((64, 64, 3), dtype=np.float32))


def test_missing_classifier_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(SegmentationModelNotFoundError, match="petmatch models prepare"):
        build_segmenter("u2netp", models_dir=tmp_path)
    assert available_segmenters() == ["pixellib", "u2netp"]


def test_split_instances_drops_small_blobs_and_sorts_by_size() -> None:
    mask = np.zeros((100, 100), dtype=bool)
    mask[10:30, 10:30] = True  # 400 px
    mask[50:90, 40:90] = True  # 2000 px
    mask[0:3, 95:98] = True  # 9 px: noise
    found = split_instances(mask, min_pixels=100)
    assert [box for box, _ in found] == [(40, 50, 90, 90), (10, 10, 30, 30)]
    assert found[0][1].sum() == 2000
    image = np.full((100, 100, 3), 7, np.uint8)
    box_mask, crop = crop_from_mask(image, found[1][1], found[1][0])
    assert box_mask.all() and (crop == 7).all()


def test_species_gate() -> None:
    p = np.zeros(1000)
    p[282] = 0.7
    p[300] = 0.1  # another animal (a beetle)
    p[500] = 0.2
    guess = species_from_probabilities(p, animal_threshold=0.5)
    assert guess.species is Species.CAT and guess.score == pytest.approx(0.7)
    p = np.zeros(1000)
    p[200] = 0.3  # a dog breed
    p[700] = 0.7  # an object
    assert species_from_probabilities(p, animal_threshold=0.5).species is None
    p = np.zeros(1000)
    p[100] = 0.9  # a bird
    assert species_from_probabilities(p, animal_threshold=0.5).species is Species.OTHER
