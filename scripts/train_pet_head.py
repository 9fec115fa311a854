"""Fit small heads on frozen EfficientNet-Lite0 features and compare them with the baseline.

    .venv/bin/python scripts/train_pet_head.py [--shared ../shared] [--models-dir var/models]
                                               [--cache /tmp/petmatch_pet_head] [--seed 0]
                                               [--no-supervised] [--json]

The backbone stays frozen, so this is cheap on a CPU: every image is embedded once by the
baseline (`efficientnet_lite0`: 1280-d ImageNet features, 224x224 letterbox, flip-averaged,
L2-normalized, ONNX Runtime) and the vectors are cached as `.npy` under `--cache` (outside the
repository; nothing from `../shared` is written into it). Then, on those vectors:

- unsupervised heads fitted on the DogFaceNet TRAIN identities only: centering, PCA
  (128/256/512 dims) with and without (partial) whitening, each after optional power
  normalisation (signed square root);
- supervised closed-form "learned whitening" (within-identity covariance whitened, then PCA
  of the between-identity spread), on the same TRAIN identities;
- supervised linear projections trained with a cosine-softmax (CosFace, margin 0.2, scale 30)
  in torch, early-stopped on leave-one-out mAP of a part of the TRAIN identities
  (`is_validation_identity(id, 15, salt="petmatch-head-es")`).

Every variant is measured next to the baseline on `vk_set2` query→gallery (validation only:
nothing is fitted on it) and DogFaceNet held-out identities (`is_validation_identity(id, 20)`,
never trained on) leave-one-out, on the first 100 held-out dogs (as in docs/training.md) and
on all 178. Prints a markdown table (or JSON lines with `--json`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
ES_SALT = "petmatch-head-es"

Head = Callable[[np.ndarray], np.ndarray]


def l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def power(x: np.ndarray, alpha: float) -> np.ndarray:
    """Signed power normalisation, then L2 (alpha 1 leaves unit vectors unchanged)."""
    return l2(np.sign(x) * np.abs(x) ** alpha)


def cached_features(name: str, root: Path, cache: Path, models_dir: Path, threads: int):
    """(vectors, identities) of every image under `root`, embedded once and cached."""
    vec_file, ids_file = cache / f"{name}.npy", cache / f"{name}.json"
    if not (vec_file.is_file() and ids_file.is_file()):
        from reid import build_embedder, efficientnet_lite0_path
        from reid._ort import ort_session
        from reid.evaluation import embed_labelled, list_labelled_images

        if not efficientnet_lite0_path(models_dir).is_file():
            from reid.export import prepare_efficientnet_lite0

            prepare_efficientnet_lite0(models_dir)
        embedder = build_embedder(
            "efficientnet_lite0",
            models_dir=models_dir,
            session_factory=lambda p: ort_session(p, threads=threads),
        )
        embedded = embed_labelled(embedder, list_labelled_images(root))
        cache.mkdir(parents=True, exist_ok=True)
        np.save(vec_file, embedded.vectors)
        ids_file.write_text(json.dumps(list(embedded.identities)), encoding="utf-8")
    ids = np.array(json.loads(ids_file.read_text(encoding="utf-8")), dtype=object)
    return np.load(vec_file), ids


def pca_heads(train: np.ndarray) -> dict[str, Head]:
    heads: dict[str, Head] = {}
    for alpha in (1.0, 0.5):
        t = power(train, alpha)
        mu = t.mean(axis=0)
        tag = "" if alpha == 1.0 else ", sqrt"
        heads[f"centering{tag}"] = lambda x, a=alpha, m=mu: l2(power(x, a) - m)
        w, v = np.linalg.eigh(np.cov((t - mu).T))
        order = np.argsort(-w)
        w, v = w[order], v[:, order]
        for d in (128, 256, 512):
            heads[f"PCA {d}{tag}"] = lambda x, a=alpha, m=mu, p=v[:, :d]: l2((power(x, a) - m) @ p)
            for beta in (0.25, 0.5):
                p = v[:, :d] / (w[:d] + 1e-6 * w[0]) ** beta
                heads[f"PCA-whiten {d} (eig^-{beta}){tag}"] = lambda x, a=alpha, m=mu, p=p: l2(
                    (power(x, a) - m) @ p
                )
    return heads


def learned_whitening_heads(train: np.ndarray, ids: np.ndarray) -> dict[str, Head]:
    """Radenović-style learned whitening: whiten the within-identity scatter, PCA the rest."""
    heads: dict[str, Head] = {}
    names = sorted(set(ids))
    index = {n: i for i, n in enumerate(names)}
    y = np.array([index[i] for i in ids])
    for alpha in (1.0, 0.5):
        t = power(train, alpha)
        mu = t.mean(axis=0)
        centroids = np.zeros((len(names), t.shape[1]))
        np.add.at(centroids, y, t)
        centroids /= np.bincount(y)[:, None]
        diff = t - centroids[y]
        within = diff.T @ diff / len(diff)
        tag = "" if alpha == 1.0 else ", sqrt"
        for reg in (0.3, 1.0):
            reg_within = within + reg * np.trace(within) / len(within) * np.eye(len(within))
            ew, ev = np.linalg.eigh(reg_within)
            whiten = ev / np.sqrt(ew)
            wb, vb = np.linalg.eigh(np.cov(((t - mu) @ whiten).T))
            vb = vb[:, np.argsort(-wb)]
            for d in (256, 512):
                p = whiten @ vb[:, :d]
                heads[f"learned whitening {d}, shrink {reg}{tag}"] = lambda x, a=alpha, m=mu, p=p: (
                    l2((power(x, a) - m) @ p)
                )
    return heads


def cosface_heads(train: np.ndarray, ids: np.ndarray, seed: int) -> dict[str, Head]:
    """Linear projections trained with a cosine-softmax, early-stopped on TRAIN identities."""
    import torch
    import torch.nn.functional as F

    from reid.evaluation import evaluate_leave_one_out
    from reid.training import is_validation_identity

    torch.set_num_threads(1)
    es = np.array([is_validation_identity(i, 15, salt=ES_SALT) for i in ids])
    fit_x, fit_ids, es_x, es_ids = train[~es], ids[~es], train[es], ids[es]
    names = sorted(set(fit_ids))
    index = {n: i for i, n in enumerate(names)}
    y = torch.tensor([index[i] for i in fit_ids])
    mu = fit_x.mean(axis=0)
    x_all = torch.tensor(fit_x - mu, dtype=torch.float32)
    w, v = np.linalg.eigh(np.cov((fit_x - mu).T))
    v = v[:, np.argsort(-w)]

    def train_one(d: int, init: str, lr: float, prox: float, epochs: int = 60) -> np.ndarray:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        if init == "identity":
            w0 = torch.eye(train.shape[1])[:, :d]
        elif init == "pca":
            w0 = torch.tensor(v[:, :d], dtype=torch.float32)
        else:
            w0 = torch.randn(train.shape[1], d) / np.sqrt(train.shape[1])
        weight = torch.nn.Parameter(w0.clone())
        with torch.no_grad():
            z = F.normalize(x_all @ weight, dim=1)
            centres = torch.zeros(len(names), d).index_add_(0, y, z)
        classes = torch.nn.Parameter(F.normalize(centres, dim=1))
        opt = torch.optim.Adam([weight, classes], lr=lr)
        best_map, best_w = -1.0, w0.numpy().copy()
        for _ in range(epochs):
            perm = torch.tensor(rng.permutation(len(x_all)))
            for start in range(0, len(x_all), 256):
                j = perm[start : start + 256]
                cos = F.normalize(x_all[j] @ weight, dim=1) @ F.normalize(classes, dim=1).T
                cos = cos - 0.2 * F.one_hot(y[j], len(names))
                loss = F.cross_entropy(30.0 * cos, y[j]) + prox * ((weight - w0) ** 2).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
            current = weight.detach().numpy()
            score = evaluate_leave_one_out(l2((es_x - mu) @ current), es_ids).mAP
            if score > best_map:
                best_map, best_w = score, current.copy()
        return best_w

    heads: dict[str, Head] = {}
    for label, d, init, lr, prox in (
        ("CosFace linear 256, PCA init", 256, "pca", 1e-3, 0.0),
        ("CosFace linear 512, PCA init", 512, "pca", 1e-3, 0.0),
        ("CosFace linear 256, random init", 256, "random", 1e-3, 0.0),
        ("CosFace linear 1280, identity init, L2 to init", 1280, "identity", 3e-4, 1e-2),
    ):
        p = train_one(d, init, lr, prox)
        heads[label] = lambda x, m=mu, p=p: l2((x - m) @ p)
    return heads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--models-dir", type=Path, default=REPO / "var" / "models")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/petmatch_pet_head"))
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-supervised", action="store_true", help="skip the torch heads")
    parser.add_argument("--json", action="store_true", help="one JSON line per variant")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from reid.evaluation import evaluate_leave_one_out, evaluate_query_gallery
    from reid.training import is_validation_identity

    reid_root = args.shared / "data" / "reid"
    feats = {
        name: cached_features(name, reid_root / sub, args.cache, args.models_dir, args.threads)
        for name, sub in (
            ("vk_query", "vk_set2/query"),
            ("vk_gallery", "vk_set2/gallery"),
            ("dogfacenet", "dogfacenet"),
        )
    }
    xq, iq = feats["vk_query"]
    xg, ig = feats["vk_gallery"]
    xd, idd = feats["dogfacenet"]
    held = np.array([is_validation_identity(i, 20) for i in idd])
    x_train, i_train = xd[~held], idd[~held]
    x_held, i_held = xd[held], idd[held]
    first100 = np.isin(i_held, sorted(set(i_held))[:100])

    heads: dict[str, Head] = {"baseline (zero-shot)": lambda x: x}
    heads.update(pca_heads(x_train))
    heads.update(learned_whitening_heads(x_train, i_train))
    if not args.no_supervised:
        started = time.monotonic()
        heads.update(cosface_heads(x_train, i_train, args.seed))
        logging.getLogger("petmatch.scripts").info("torch heads: %.0fs", time.monotonic() - started)

    if not args.json:
        sys.stdout.write(
            f"fit on {len(x_train)} images of {len(set(i_train))} DogFaceNet train dogs; "
            f"held out {len(x_held)} images of {len(set(i_held))} dogs "
            f"({int(first100.sum())} in the first 100)\n\n"
            "| head | dim | vk_set2 rank-1 / mAP | vk_set2 top-1 won / lost vs baseline "
            "| DFN first-100 rank-1 / mAP | DFN all-178 rank-1 / mAP |\n"
            "| --- | --- | --- | --- | --- | --- |\n"
        )

    def top1_hits(head: Head) -> np.ndarray:
        return ig[np.argmax(head(xq) @ head(xg).T, axis=1)] == iq

    baseline_hits = top1_hits(heads["baseline (zero-shot)"])
    for name, head in heads.items():
        vk = evaluate_query_gallery(head(xq), iq, head(xg), ig)
        hits = top1_hits(head)
        won, lost = int((hits & ~baseline_hits).sum()), int((~hits & baseline_hits).sum())
        h = head(x_held)
        d100 = evaluate_leave_one_out(h[first100], i_held[first100])
        d178 = evaluate_leave_one_out(h, i_held)
        if args.json:
            row = {"head": name, "dim": int(h.shape[1]), "vk_won": won, "vk_lost": lost}
            for key, m in (("vk_set2", vk), ("dfn_first100", d100), ("dfn_all178", d178)):
                row[key] = {"rank1": round(m.rank1, 4), "mAP": round(m.mAP, 4)}
            sys.stdout.write(json.dumps(row) + "\n")
        else:
            sys.stdout.write(
                f"| {name} | {h.shape[1]} | {vk.rank1:.3f} / {vk.mAP:.3f} | {won} / {lost} "
                f"| {d100.rank1:.3f} / {d100.mAP:.3f} "
                f"| {d178.rank1:.3f} / {d178.mAP:.3f} |\n"
            )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
