"""What the Inspect page waits for in post-processing: the first fuse of each new image size (an
upload) and a knob change on the same image, with and without XLA, after the app's warm-up.

Each mode runs in its own fresh process, taking turns (xla, tf, xla, tf, ...), so that both see
the same load. Prints the machine, the CPU flags and the load average.

    python benchmarks/bench_app_fuse.py --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "models" / "synthetic_demo"
# The demo samples' size, then uploads of other sizes (phone photo after the resize rule, ...).
SIZES = [(257, 513), (300, 400), (512, 683), (384, 512), (1024, 1365)]


def child(xla: bool) -> dict:
    import numpy as np

    from panoptic_deeplab.app.components import model_io

    model_io._load_and_keep(str(DEMO), trace=False)
    predictor = model_io.load_predictor(str(DEMO))
    options = model_io.default_options(predictor)
    started = time.perf_counter()
    if not xla:
        model_io._warm_up_fuse(predictor)
    warm = time.perf_counter() - started
    rng = np.random.default_rng(0)
    first, again = [], []
    for h, w in SIZES:
        probs = rng.random((h, w, predictor.spec.num_classes), np.float32)
        probs /= probs.sum(-1, keepdims=True)
        heat = (rng.random((h, w)) * 0.4).astype(np.float32)
        offsets = (rng.normal(size=(h, w, 2)) * 4).astype(np.float32)
        heads = model_io.Heads(probs, heat, offsets)
        for out, opts in ((first, options), (again, options.replace(center_threshold=0.2))):
            started = time.perf_counter()
            if xla:
                from panoptic_deeplab.postprocess import post_process

                post_process(probs, heat, offsets, opts, semantic_is_probability=True, xla=True)
            else:
                model_io._fuse(opts, heads)
            out.append(time.perf_counter() - started)
    return {"warm_up_s": warm, "first_s": first, "knob_s": again}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=["xla", "tf"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child == "xla")))
        return
    flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0]
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"avx512f={'avx512f' in flags}, amx={'amx_bf16' in flags}"
    )
    results: dict[str, list[dict]] = {"xla": [], "tf": []}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for _ in range(args.rounds):
        for mode in ("xla", "tf"):
            print(f"load average {os.getloadavg()[0]:.1f}, running {mode}", flush=True)
            done = subprocess.run(
                [sys.executable, __file__, "--child", mode],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            results[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        f"\n{'size':>12} | {'first, XLA':>11} | {'first, TF':>10} | {'knob, XLA':>10} | "
        f"{'knob, TF':>9}"
    )
    for i, (h, w) in enumerate(SIZES):
        cells = [
            min(r[key][i] for r in results[mode])
            for key in ("first_s", "knob_s")
            for mode in ("xla", "tf")
        ]
        first_x, first_t, knob_x, knob_t = cells
        print(
            f"{h:>5}x{w:<6} | {first_x:>10.2f}s | {first_t:>9.2f}s | {knob_x:>9.3f}s | "
            f"{knob_t:>8.3f}s"
        )
    warm = min(r["warm_up_s"] for r in results["tf"])
    print(f"\nthe app's warm-up of the TF fuse (once, in the background): {warm:.2f}s")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
