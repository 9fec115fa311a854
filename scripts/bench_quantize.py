"""Static int8 against float32: speed, masks and re-ID answers; prints numbers.

    .venv/bin/python scripts/bench_quantize.py --models-dir var/models
    .venv/bin/python scripts/bench_quantize.py --mask-images 40 --calibrations skimage,shared
    .venv/bin/python scripts/bench_quantize.py --skip-reid --float-after 0.62,0.77

For each calibration set (`skimage`: the photographs scikit-image bundles, what a fresh
install has; `shared`: DogFaceNet photos of training identities from ../shared, real pets,
for comparison only) it quantizes U²-Net-p and the embedder (QDQ, per-channel) and reports:
- latency of one U²-Net-p run and of one embedder batch (the crops of a post, flipped),
  float32 and int8, one thread, median;
- U²-Net-p masks (saliency >= 0.5) against the float32 masks: IoU mean, minimum and the share
  >= 0.95, on the scikit-image photos (the demo and load benchmark's photos; also the
  calibration set, so in-sample) and on held-out DogFaceNet images (out of sample);
- re-ID: DogFaceNet leave-one-out over the 178 held-out identities (docs/training.md split)
  and vk_set2 query/gallery, rank-1 and mAP, float32 and int8.
The machine's load average is printed beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bot.quantize import calibration_images, quantize_embedder, quantize_u2netp
from reid._ort import load_onnx_embedder, ort_session
from reid.evaluation import (
    embed_labelled,
    evaluate_leave_one_out,
    evaluate_query_gallery,
    list_labelled_images,
    read_rgb,
)
from reid.training._data import split_identities
from segmentation._u2netp import default_u2netp_path, u2net_input

REPO = Path(__file__).resolve().parent.parent


def heldout_dogfacenet(shared: Path) -> tuple[list, list]:
    """(held-out items, training items) of DogFaceNet under the fixed 20 % split."""
    items = list_labelled_images(shared / "data/reid/dogfacenet")
    train, val = split_identities(sorted({i.identity for i in items}), 20)
    keep = set(val)
    return [i for i in items if i.identity in keep], [i for i in items if i.identity in set(train)]


def latency(path: Path, feed: np.ndarray, runs: int = 12) -> float:
    session = ort_session(path, threads=1)
    name = session.get_inputs()[0].name
    session.run(None, {name: feed})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, {name: feed})
        times.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(times)), 1)


def masks(path: Path, images: list[np.ndarray]) -> list[np.ndarray]:
    session = ort_session(path, threads=1)
    name = session.get_inputs()[0].name
    out = []
    for image in images:
        pred = np.asarray(session.run(None, {name: u2net_input(image)})[0], np.float32)[0, 0]
        pred = (pred - pred.min()) / max(float(pred.max() - pred.min()), 1e-6)
        out.append(pred >= 0.5)
    return out


def iou_summary(reference: list[np.ndarray], other: list[np.ndarray]) -> dict:
    ious = []
    for a, b in zip(reference, other, strict=True):
        union = np.logical_or(a, b).sum()
        ious.append(1.0 if union == 0 else float(np.logical_and(a, b).sum() / union))
    arr = np.asarray(ious)
    return {
        "images": len(ious),
        "iou_mean": round(float(arr.mean()), 4),
        "iou_min": round(float(arr.min()), 4),
        "share_ge_0.95": round(float((arr >= 0.95).mean()), 4),
    }


def reid_metrics(onnx: Path, heldout: list, vk_root: Path) -> dict:
    embedder = load_onnx_embedder(onnx, batch_size=16)
    dfn = embed_labelled(embedder, heldout)
    loo = evaluate_leave_one_out(dfn.vectors, dfn.identities)
    query = embed_labelled(embedder, list_labelled_images(vk_root / "query"))
    gallery = embed_labelled(embedder, list_labelled_images(vk_root / "gallery"))
    vk = evaluate_query_gallery(
        query.vectors, query.identities, gallery.vectors, gallery.identities
    )
    return {
        "dfn_heldout_rank1": round(loo.rank1, 4),
        "dfn_heldout_mAP": round(loo.mAP, 4),
        "dfn_images": len(dfn.identities),
        "vk_set2_rank1": round(vk.rank1, 4),
        "vk_set2_mAP": round(vk.mAP, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=REPO / "var/models")
    parser.add_argument("--embedder", default="efficientnet_lite0.onnx", help="file in models dir")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--calibrations", default="skimage", help="skimage, shared, or both")
    parser.add_argument("--mask-images", type=int, default=60, help="held-out DogFaceNet images")
    parser.add_argument("--skip-reid", action="store_true")
    parser.add_argument("--out", type=Path, help="keep the int8 models here")
    parser.add_argument(
        "--float-after",
        default="",
        help="also try U²-Net-p with the nodes after these shares of the graph kept in float32, "
        "e.g. 0.62,0.77 (the decoder's last stages; where the int8 error comes from)",
    )
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-quantize-"))
    embedder = args.models_dir / args.embedder
    u2net = default_u2netp_path()
    heldout, train = heldout_dogfacenet(args.shared)
    rng = np.random.default_rng(0)
    mask_items = [heldout[i] for i in rng.permutation(len(heldout))[: args.mask_images]]
    photo_sets = {
        "skimage_photos": calibration_images()[::3],  # the originals, not flips and crops
        "dogfacenet_heldout": [read_rgb(i.path) for i in mask_items],
    }
    reference = {name: masks(u2net, images) for name, images in photo_sets.items()}
    crops = np.concatenate([u2net_input(photo_sets["skimage_photos"][0])])
    height, width = json.loads(embedder.with_suffix(".json").read_text())["input_size"]
    embedder_feed = np.zeros((2, 3, height, width), np.float32)  # a post's crop and its mirror
    report: dict = {
        "fp32": {
            "u2netp_ms": latency(u2net, crops),
            "embedder_batch2_ms": latency(embedder, embedder_feed),
        }
    }
    if not args.skip_reid:
        report["fp32"].update(reid_metrics(embedder, heldout, args.shared / "data/reid/vk_set2"))
    for calibration in args.calibrations.split(","):
        if calibration == "skimage":
            images = calibration_images()
        else:  # real pet photos of training identities (never the held-out ones)
            picks = rng.permutation(len(train))[:36]
            images = [read_rgb(train[i].path) for i in picks]
        t0 = time.perf_counter()
        q_u2net = quantize_u2netp(u2net, out / f"u2netp.{calibration}.int8.onnx", images)
        q_embedder = quantize_embedder(
            embedder, out / f"{embedder.stem}.{calibration}.int8.onnx", images
        )
        row: dict = {"quantize_s": round(time.perf_counter() - t0, 1)}
        row["u2netp_ms"] = latency(q_u2net, crops)
        row["embedder_batch2_ms"] = latency(q_embedder, embedder_feed)
        for name, images_ in photo_sets.items():
            row[f"masks_{name}"] = iou_summary(reference[name], masks(q_u2net, images_))
        if not args.skip_reid:
            row.update(reid_metrics(q_embedder, heldout, args.shared / "data/reid/vk_set2"))
        report[f"int8_{calibration}"] = row
        for share in filter(None, args.float_after.split(",")):
            partial = quantize_u2netp(
                u2net,
                out / f"u2netp.{calibration}.float_after_{share}.onnx",
                images,
                float_after=float(share),
            )
            mixed: dict = {"u2netp_ms": latency(partial, crops)}
            for name, images_ in photo_sets.items():
                mixed[f"masks_{name}"] = iou_summary(reference[name], masks(partial, images_))
            report[f"int8_{calibration}_float_after_{share}"] = mixed
    report["loadavg_1min_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    report["int8_models"] = str(out)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
