"""Seconds per photo for the default `u2netp` segmenter (target: <= 1 s on 2 cores).

    python scripts/bench_segmentation.py [--models-dir var/models] [--repeats 5] [--threads 2]

Exports the species classifier into a temporary folder first if `models-dir` lacks it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage.data


def _photos() -> dict[str, np.ndarray]:
    cat = skimage.data.chelsea()
    gap = np.full((cat.shape[0], 60, 3), 255, np.uint8)
    big = np.asarray(
        __import__("cv2").resize(skimage.data.astronaut(), (1280, 960)), dtype=np.uint8
    )
    return {
        "cat_451x300": cat,
        "two_cats_962x300": np.concatenate([cat, gap, cat], axis=1),
        "astronaut_1280x960": big,
        "coffee_600x400": skimage.data.coffee(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("var/models"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import onnxruntime as ort

    from segmentation import build_segmenter

    classifier = args.models_dir / "efficientnet_lite0.onnx"
    if not classifier.is_file():
        from reid.export import prepare_efficientnet_lite0

        classifier, _ = prepare_efficientnet_lite0(Path(tempfile.mkdtemp()))

    def session(path: Path) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    segmenter = build_segmenter("u2netp", classifier_path=classifier, session_factory=session)
    results = {}
    for name, photo in _photos().items():
        segmenter.segment(photo)  # warm-up (and model loading)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            crops = segmenter.segment(photo)
            times.append(time.perf_counter() - start)
        results[name] = {
            "median_s": round(statistics.median(times), 3),
            "crops": [c.species.value for c in crops],
        }
    overall = statistics.median(r["median_s"] for r in results.values())
    print(json.dumps({"threads": args.threads, "photos": results, "median_s_per_photo": overall}))


if __name__ == "__main__":
    main()
