"""Real VK photos through embedder → index → calibration → decision.

The packaged EfficientNet-Lite0 calibration's vk_set2 curve was fitted (scripts/calibrate.py)
on the animals whose identity's sha256 starts with an even hex digit; the "different animals
stay below the threshold" checks below use only the other animals, which the curve never saw
(the threshold was chosen on scenarios built from them, so they are not blind to it).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from index import FaissIndex, PartitionKey
from index.matching import MatchPolicy, PostRef, decide, hits_from_candidates, rank_post_candidates
from reid.calibration import packaged_calibration, pair_similarities

pytestmark = [pytest.mark.torch, pytest.mark.shared]

KEY = PartitionKey(species="any", kind="found", city=None)


def held_out(identity: str) -> bool:
    """The complement of scripts/calibrate.py's `fit_half` (same rule, kept in sync)."""
    return int(hashlib.sha256(identity.encode("utf-8")).hexdigest()[0], 16) % 2 == 1


@pytest.fixture(scope="module")
def vk_set2(shared_dir: Path, exported_models_dir: Path):
    """(query, gallery) embedded by the zero-shot EfficientNet-Lite0 (exported once here)."""
    root = shared_dir / "data" / "reid" / "vk_set2"
    if not root.is_dir():
        pytest.skip(f"needs {root}")
    from reid import build_embedder
    from reid.evaluation import embed_labelled, list_labelled_images

    embedder = build_embedder("efficientnet_lite0", models_dir=exported_models_dir)
    query = embed_labelled(embedder, list_labelled_images(root / "query"))
    gallery = embed_labelled(embedder, list_labelled_images(root / "gallery"))
    return embedder.model_id, query, gallery


def _gallery_index(model_id, gallery, **kwargs) -> FaissIndex:
    store = FaissIndex(model_id, gallery.vectors.shape[1], **kwargs)
    store.add(KEY, np.arange(len(gallery.identities)), gallery.vectors, model_id=model_id)
    return store


def test_same_animal_ranks_first_for_most_queries(vk_set2):
    model_id, query, gallery = vk_set2
    exact = _gallery_index(model_id, gallery)
    results = exact.search(query.vectors, KEY, k=10, model_id=model_id)
    top1 = [
        gallery.identities[r[0].id] == q for r, q in zip(results, query.identities, strict=True)
    ]
    top10 = [
        q in {gallery.identities[c.id] for c in r}
        for r, q in zip(results, query.identities, strict=True)
    ]
    # Zero-shot baseline: rank-1 measured 0.62 here (chance ≈ 0.05), rank-10 0.87.
    assert np.mean(top1) >= 0.55
    assert np.mean(top10) >= 0.8
    # The approximate structure agrees with exact search on real vectors.
    approx = _gallery_index(model_id, gallery, exact_limit=40)
    assert approx.partitions()[0].structure == "ivf"
    approx_results = approx.search(query.vectors, KEY, k=10)
    same_top1 = [a[0].id == e[0].id for a, e in zip(approx_results, results, strict=True)]
    assert np.mean(same_top1) >= 0.95


def test_different_animals_stay_below_the_calibrated_threshold(vk_set2):
    model_id, query, gallery = vk_set2
    cal = packaged_calibration("efficientnet_lite0")
    assert cal.model_id == model_id and cal.reached_target
    vectors = np.concatenate([query.vectors, gallery.vectors])
    ids = np.array(query.identities + gallery.identities)
    keep = np.array([held_out(i) for i in ids])
    assert 15 <= len(set(ids[keep])) <= 25  # about half the 39 animals
    sims, same = pair_similarities(vectors[keep], ids[keep])
    above = cal.confidence(sims) >= cal.threshold
    # The cross-domain curve (dog faces pull it down) is more cautious than the old VK-only
    # one, which let 30% of same pairs through: now 18 of 122.
    assert above[~same].mean() <= 0.005
    assert same[above].mean() >= 0.8
    assert above[same].mean() >= 0.10


def test_matching_rarely_accepts_the_wrong_animal(vk_set2):
    """Each held-out query photo as a lost post against gallery animals as found posts."""
    model_id, query, gallery = vk_set2
    cal = packaged_calibration("efficientnet_lite0")
    policy = MatchPolicy(
        threshold=cal.threshold,
        curve_xs=cal.xs,
        curve_ys=cal.ys,
        margin=0.05,
        time_decay=0.0,
        distance_decay=0.0,
    )
    store = _gallery_index(model_id, gallery)
    post_of = {n: f"found-{ident}" for n, ident in enumerate(gallery.identities)}
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    posts = {p: PostRef(post_id=p, kind="found", published_at=t0) for p in set(post_of.values())}
    right = wrong = 0
    for n, (vector, ident) in enumerate(zip(query.vectors, query.identities, strict=True)):
        if not held_out(ident):
            continue
        lost = PostRef(post_id=f"lost-{ident}", kind="lost", published_at=t0, animal_ids=(n,))
        results = store.search(vector, KEY, k=10)
        hits = hits_from_candidates([n], results, post_of)
        ranked = rank_post_candidates(lost, hits, posts, dict.fromkeys(posts, 1.0), policy)
        match = decide(ranked, policy)
        if match is not None:
            if match.found_post_id == f"found-{ident}":
                right += 1
            else:
                wrong += 1
    # Measured: 8 right, 0 wrong of 20 held-out queries (margin on similarity; with the
    # margin on the staircase confidence it was 9 right, 3 wrong).
    assert wrong <= 1
    assert right >= 5
