"""Test-time augmentation and several-photos-per-post fusion for the default embedder, measured.

    nice -n 15 python scripts/eval_tta.py [--model efficientnet_lite1] [--models-dir var/models]
        [--shared ../shared] [--dogs 150] [--seed 0] [--cache /tmp/petmatch-tta]

Every view is flip-averaged, exactly as `OrtEmbedder` does today; a TTA variant is the
L2-normalised mean of the unit vectors of its views. The ONNX models have a fixed input size
(240 px for Lite1), so "scales" change how large the animal is drawn inside that square:

- `full`   the product's view: the crop letterboxed to 240 px;
- `small`  the crop letterboxed to 204 px (0.85) and padded with black to 240;
- `large`  the crop letterboxed to 276 px (1.15), centre 240 px kept (the borders are lost);
- `crop90` the central 90 % of the crop (each side), letterboxed to 240 px.

Data (never the 178 held-out DogFaceNet identities of docs/training.md):
- vk_set2 query→gallery, image level (as `petmatch reid eval`) and post level (identity = post:
  39 gallery posts; a post scored by its best photo, as the matcher does, or by the mean vector
  of its photos);
- `--dogs` random DogFaceNet *fit-side* identities (the 754 of the fixed split), leave-one-out;
  for posts, each dog with 4+ photos becomes two "posts" (alternate photos), one queries the
  other's among all dogs' second posts.

Embeddings are cached per view under `--cache`; a second run only prints the table.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reid import build_embedder  # noqa: E402
from reid._ort import l2_normalize  # noqa: E402
from reid._preprocess import letterbox  # noqa: E402
from reid.evaluation import (  # noqa: E402
    LabelledImage,
    evaluate_leave_one_out,
    evaluate_query_gallery,
    list_labelled_images,
    read_rgb,
    retrieval_metrics,
)
from reid.training._data import split_identities  # noqa: E402

SIZE = 240
View = Callable[[np.ndarray], np.ndarray]


def _centre(image: np.ndarray, height: int, width: int) -> np.ndarray:
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


def view_full(crop: np.ndarray) -> np.ndarray:
    return letterbox(crop, (SIZE, SIZE))


def view_small(crop: np.ndarray) -> np.ndarray:
    inner = round(SIZE * 0.85)
    canvas = np.zeros((SIZE, SIZE, 3), np.uint8)
    offset = (SIZE - inner) // 2
    canvas[offset : offset + inner, offset : offset + inner] = letterbox(crop, (inner, inner))
    return canvas


def view_large(crop: np.ndarray) -> np.ndarray:
    outer = round(SIZE * 1.15)
    return np.ascontiguousarray(_centre(letterbox(crop, (outer, outer)), SIZE, SIZE))


def view_crop90(crop: np.ndarray) -> np.ndarray:
    h, w = crop.shape[:2]
    inner = _centre(crop, max(1, round(h * 0.9)), max(1, round(w * 0.9)))
    return letterbox(np.ascontiguousarray(inner), (SIZE, SIZE))


VIEWS: dict[str, View] = {
    "full": view_full,
    "small": view_small,
    "large": view_large,
    "crop90": view_crop90,
}
VARIANTS: dict[str, tuple[str, ...]] = {
    "full (today)": ("full",),
    "full + small": ("full", "small"),
    "full + large": ("full", "large"),
    "full + small + large": ("full", "small", "large"),
    "full + crop90": ("full", "crop90"),
    "full + crop90 + large": ("full", "crop90", "large"),
}


def embed_views(
    model: str, models_dir: Path, items: list[LabelledImage], cache: Path, tag: str
) -> dict[str, np.ndarray]:
    """{view: unit vectors (n, d)}, flip-averaged, in the order of `items`; cached as .npy."""
    out: dict[str, np.ndarray] = {}
    embedder = None
    crops: list[np.ndarray] | None = None
    for name, view in VIEWS.items():
        path = cache / f"{model}__{tag}__{name}.npy"
        if path.is_file():
            out[name] = np.load(path)
            continue
        if embedder is None:
            embedder = build_embedder(model, models_dir=models_dir)
            crops = [read_rgb(item.path) for item in items]
        assert crops is not None
        vectors = [
            embedder.embed([view(c) for c in crops[i : i + 32]]).vectors
            for i in range(0, len(crops), 32)
        ]
        out[name] = np.concatenate(vectors)
        cache.mkdir(parents=True, exist_ok=True)
        np.save(path, out[name])
        print(f"  embedded {tag}/{name}: {len(crops)} crops", file=sys.stderr)
    return out


def fuse(views: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    return l2_normalize(sum(l2_normalize(views[n]) for n in names))


def _rows(posts: list[str]) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {}
    for row, post in enumerate(posts):
        rows.setdefault(post, []).append(row)
    return rows


def post_metrics(
    query: np.ndarray,
    query_posts: list[str],
    gallery: np.ndarray,
    gallery_posts: list[str],
    *,
    mode: str,
) -> tuple[float, float]:
    """Rank-1 / mAP of ranking gallery *posts* for every query post.

    `best`: a pair of posts scores its best photo pair (what the matcher does);
    `mean`: the cosine of the two posts' L2-normalised mean vectors.
    """
    q_rows, g_rows = _rows(query_posts), _rows(gallery_posts)
    q_names, g_names = sorted(q_rows), sorted(g_rows)
    if mode == "best":
        sims = query @ gallery.T
        scores = np.array(
            [[sims[np.ix_(q_rows[q], g_rows[g])].max() for g in g_names] for q in q_names]
        )
    else:
        q_means = l2_normalize(np.stack([query[q_rows[q]].mean(axis=0) for q in q_names]))
        g_means = l2_normalize(np.stack([gallery[g_rows[g]].mean(axis=0) for g in g_names]))
        scores = q_means @ g_means.T
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.asarray(g_names, dtype=object)[order]
    result = retrieval_metrics(
        ranked == np.asarray(q_names, dtype=object)[:, None], gallery=len(g_names)
    )
    return result.rank1, result.mAP


def dog_posts(ids: np.ndarray) -> tuple[list[int], list[str], list[int], list[str]]:
    """Dogs with 4+ photos, split into two posts by alternate photos: rows and ids of each."""
    a_rows: list[int] = []
    a_ids: list[str] = []
    b_rows: list[int] = []
    b_ids: list[str] = []
    for identity, rows in sorted(_rows([str(i) for i in ids]).items()):
        if len(rows) < 4:
            continue
        a_rows += rows[0::2]
        a_ids += [identity] * len(rows[0::2])
        b_rows += rows[1::2]
        b_ids += [identity] * len(rows[1::2])
    return a_rows, a_ids, b_rows, b_ids


def top1_right(
    query: np.ndarray, q_ids: list[str], gallery: np.ndarray, g_ids: list[str]
) -> np.ndarray:
    """Per query, whether its most similar gallery vector is the same identity (self excluded
    when query and gallery are the same set)."""
    sims = query @ gallery.T
    if query is gallery:
        np.fill_diagonal(sims, -np.inf)
    return np.asarray(g_ids, dtype=object)[sims.argmax(axis=1)] == np.asarray(q_ids, dtype=object)


def won_lost(right: np.ndarray, baseline: np.ndarray) -> str:
    return f"+{int((right & ~baseline).sum())} −{int((baseline & ~right).sum())}"


def _pair(metrics: tuple[float, float]) -> str:
    return f"{metrics[0]:.3f} / {metrics[1]:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="efficientnet_lite1")
    parser.add_argument("--models-dir", type=Path, default=REPO / "var" / "models")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--dogs", type=int, default=150, help="random fit-side DogFaceNet ids")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/petmatch-tta"))
    args = parser.parse_args()
    reid_root = args.shared / "data" / "reid"
    if not reid_root.is_dir():
        sys.exit(f"{reid_root} is missing: this script needs the shared data sets")

    query = list_labelled_images(reid_root / "vk_set2" / "query")
    gallery = list_labelled_images(reid_root / "vk_set2" / "gallery")
    dfn_all = list_labelled_images(reid_root / "dogfacenet")
    fit_side, _held_out = split_identities(sorted({i.identity for i in dfn_all}), 20)
    dogs = set(random.Random(args.seed).sample(fit_side, args.dogs))
    dfn = [item for item in dfn_all if item.identity in dogs]

    q_views = embed_views(args.model, args.models_dir, query, args.cache, "vkq")
    g_views = embed_views(args.model, args.models_dir, gallery, args.cache, "vkg")
    d_views = embed_views(
        args.model, args.models_dir, dfn, args.cache, f"dfn{args.dogs}s{args.seed}"
    )
    q_ids = [i.identity for i in query]
    g_ids = [i.identity for i in gallery]
    d_ids = np.asarray([i.identity for i in dfn])

    print(
        f"{args.model}; vk_set2 {len(query)} queries / {len(gallery)} gallery photos "
        f"({len(set(g_ids))} posts); DogFaceNet {len(dogs)} fit-side dogs, {len(dfn)} photos "
        f"(seed {args.seed})\n"
    )
    print(
        "| TTA (views flip-averaged) | vk_set2 q→g rank-1 / mAP | top-1 won / lost "
        "| DogFaceNet LOO rank-1 / mAP | top-1 won / lost |"
    )
    print("| --- | --- | --- | --- | --- |")
    vk_base = dfn_base = None
    for label, names in VARIANTS.items():
        qv, gv, dv = fuse(q_views, names), fuse(g_views, names), fuse(d_views, names)
        vk = evaluate_query_gallery(qv, q_ids, gv, g_ids)
        dfn_m = evaluate_leave_one_out(dv, d_ids)
        vk_right = top1_right(qv, q_ids, gv, g_ids)
        dfn_right = top1_right(dv, list(d_ids), dv, list(d_ids))
        if vk_base is None or dfn_base is None:
            vk_base, dfn_base = vk_right, dfn_right
        print(
            f"| {label} | {_pair((vk.rank1, vk.mAP))} | {won_lost(vk_right, vk_base)} "
            f"| {_pair((dfn_m.rank1, dfn_m.mAP))} | {won_lost(dfn_right, dfn_base)} |"
        )

    a_rows, a_ids, b_rows, b_ids = dog_posts(d_ids)
    print(
        f"\nSeveral photos per post (full view): vk_set2 {len(set(g_ids))} gallery posts; "
        f"DogFaceNet {len(set(a_ids))} dogs with 4+ photos, each split into two posts\n"
    )
    print("| post score | vk_set2 post rank-1 / mAP | DogFaceNet post rank-1 / mAP |")
    print("| --- | --- | --- |")
    qv, gv, dv = fuse(q_views, ("full",)), fuse(g_views, ("full",)), fuse(d_views, ("full",))
    for label, mode in (("best photo pair (today)", "best"), ("mean vector per post", "mean")):
        vk = post_metrics(qv, q_ids, gv, g_ids, mode=mode)
        dogs_m = post_metrics(dv[a_rows], a_ids, dv[b_rows], b_ids, mode=mode)
        print(f"| {label} | {_pair(vk)} | {_pair(dogs_m)} |")


if __name__ == "__main__":
    main()
