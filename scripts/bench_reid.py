"""Crops per second for each re-ID backend on ONNX Runtime vs the same model eager in torch.

    python scripts/bench_reid.py [--threads 2] [--batch 16] [--seconds 5] [--osnet-weights PATH]

Target: ONNX Runtime >= 3x torch eager on 2 cores. No flip averaging here (it doubles both).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SHARED_OSNET = Path(__file__).resolve().parents[2] / "shared" / "models" / "osnet_x0_25_msmt17.pth"


def _rate(run: Callable[[], object], batch: int, seconds: float) -> float:
    run()  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run()
        done += batch
    return done / (time.perf_counter() - start)


def _bench(name: str, module, onnx_path: Path, size, args) -> dict:
    import onnxruntime as ort
    import torch

    x = np.random.default_rng(0).normal(size=(args.batch, 3, *size)).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}
    ort_rate = _rate(lambda: session.run(None, feed), args.batch, args.seconds)
    tensor = torch.from_numpy(x)
    module.eval()

    def eager() -> object:
        with torch.no_grad():
            return module(tensor)

    torch_rate = _rate(eager, args.batch, args.seconds)
    return {
        "backend": name,
        "input": list(size),
        "onnxruntime_crops_per_s": round(ort_rate, 1),
        "torch_eager_crops_per_s": round(torch_rate, 1),
        "ratio": round(ort_rate / torch_rate, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--osnet-weights", type=Path, default=SHARED_OSNET)
    args = parser.parse_args()

    import torch

    from reid._torch.efficientnet_lite import load_efficientnet_lite0
    from reid.export import export_onnx

    torch.set_num_threads(args.threads)
    workdir = Path(tempfile.mkdtemp())
    rows = []
    model = load_efficientnet_lite0()
    path = export_onnx(model, workdir / "eff.onnx", (224, 224), ("logits", "features"))
    rows.append(_bench("efficientnet_lite0", model, path, (224, 224), args))
    if args.osnet_weights.is_file():
        try:
            from reid._torch.osnet import load_osnet
        except ImportError as exc:
            rows.append({"backend": "osnet", "skipped": f"no OSNet definition: {exc}"})
        else:
            osnet, _meta = load_osnet(args.osnet_weights)
            path = export_onnx(osnet, workdir / "osnet.onnx", (256, 128))
            rows.append(_bench("osnet", osnet, path, (256, 128), args))
    print(json.dumps({"threads": args.threads, "batch": args.batch, "results": rows}))


if __name__ == "__main__":
    main()
