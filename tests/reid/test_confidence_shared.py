"""The default embedder and its cross-domain calibration on photos of the shared dev sets.

Kept short: 30 of the 178 held-out DogFaceNet identities (never used to choose or fit) and
the vk_set2 animals the curve was not fitted on.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reid.calibration import packaged_calibration, pair_similarities

pytestmark = [pytest.mark.torch, pytest.mark.shared]

DEFAULT = "efficientnet_lite1"


def _embed(models_dir: Path, items):
    from reid import build_embedder
    from reid.evaluation import embed_labelled

    return embed_labelled(build_embedder(DEFAULT, models_dir=models_dir), items)


def test_different_dogs_rarely_clear_the_threshold_on_held_out_identities(
    shared_dir, exported_models_dir
):
    """Regression: dog faces of different dogs at cosine 0.79–0.81 were stated as 99%."""
    from reid.evaluation import list_labelled_images
    from reid.training._data import split_identities

    root = shared_dir / "data" / "reid" / "dogfacenet"
    if not root.is_dir():
        pytest.skip(f"needs {root}")
    _, held = split_identities(sorted(os.listdir(root)), 20)
    keep = set(held[:30])
    items = [i for i in list_labelled_images(root) if i.identity in keep]
    embedded = _embed(exported_models_dir, items)
    sims, same = pair_similarities(embedded.vectors, embedded.identities)
    cal = packaged_calibration(DEFAULT)
    stated = cal.confidence(sims)
    above = stated >= cal.threshold
    assert above[~same].mean() <= 0.005
    assert above[same].mean() >= 0.15  # measured 0.23 on these 30 dogs
    # The old curve said 0.99+ here; the cross-domain one stays well below.
    assert cal.confidence(0.80) < 0.9


def test_vk_animals_not_fitted_on_are_judged_cautiously(shared_dir, exported_models_dir):
    from reid.evaluation import list_labelled_images

    root = shared_dir / "data" / "reid" / "vk_set2"
    if not root.is_dir():
        pytest.skip(f"needs {root}")
    cal = packaged_calibration(DEFAULT)
    fitted = set(cal.fit_identities["vk_set2"])
    items = [
        i
        for sub in ("query", "gallery")
        for i in list_labelled_images(root / sub)
        if i.identity not in fitted
    ]
    embedded = _embed(exported_models_dir, items)
    sims, same = pair_similarities(embedded.vectors, embedded.identities)
    above = cal.confidence(sims) >= cal.threshold
    # Pairs, not comments: a comment also needs the best candidate clearly above the second.
    assert above[~same].mean() <= 0.005
    assert above[same].sum() >= 10  # measured 16 of 122
