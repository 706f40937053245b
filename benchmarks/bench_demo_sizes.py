"""PQ of a bundle (default: the shipped demo) on held-out synthetic validation sets at several image
sizes, scored with panopticapi (``pq_compute``) on `pdl predict`'s COCO-panoptic output.

    python benchmarks/bench_demo_sizes.py [--model assets/models/synthetic_demo] [--images 60] \
        [--seeds 2027 2031 2039] [--sizes 256x512 512x1024 1024x2048] [--cache DIR]

Each set is `pdl make-dataset synthetic --num-train 0 --num-val N --height H --width W --seed S`
(the demo was trained on seed 1; the default seeds were never trained on), made once under
--cache. Prints PQ, things and stuff per seed and size, the mean over seeds, and whether each size
meets the demo's goal (PQ >= 82, things >= 70 on every seed).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PDL = [sys.executable, "-m", "panoptic_deeplab"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=str(REPO / "assets" / "models" / "synthetic_demo"))
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2027, 2031, 2039])
    parser.add_argument("--sizes", nargs="+", default=["256x512", "512x1024", "1024x2048"])
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "pdl-demo-sizes"))
    args = parser.parse_args()
    from panopticapi.evaluation import pq_compute

    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    rows = []
    for size, seed in [(size, seed) for size in args.sizes for seed in args.seeds]:
        height, width = (int(v) for v in size.split("x"))
        data = Path(args.cache) / f"val_{size}_seed{seed}_n{args.images}"
        if not (data / "annotations" / "panoptic_val.json").is_file():
            subprocess.run(
                [
                    *PDL,
                    "make-dataset",
                    "synthetic",
                    "--out",
                    str(data),
                    "--num-train",
                    "0",
                    "--num-val",
                    str(args.images),
                    "--height",
                    str(height),
                    "--width",
                    str(width),
                    "--seed",
                    str(seed),
                ],
                check=True,
                env=env,
            )
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            subprocess.run(
                [
                    *PDL,
                    "predict",
                    "--model",
                    args.model,
                    "--dataset",
                    str(data),
                    "--split",
                    "val",
                    "--out",
                    out,
                ],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            seconds = time.perf_counter() - started
            with contextlib.redirect_stdout(io.StringIO()):
                result = pq_compute(
                    str(data / "annotations" / "panoptic_val.json"),
                    str(Path(out) / "panoptic.json"),
                    gt_folder=str(data / "annotations" / "panoptic_val"),
                    pred_folder=str(Path(out) / "panoptic"),
                )
        row = {k: result[k]["pq"] * 100 for k in ("All", "Things", "Stuff")}
        rows.append((size, seed, row))
        print(
            f"{size} seed {seed}: PQ {row['All']:.2f} (things {row['Things']:.2f}, "
            f"stuff {row['Stuff']:.2f}); {args.images} images, pdl predict {seconds:.0f} s",
            flush=True,
        )
    print(f"\npanopticapi PQ of {args.model}, {args.images} images per set")
    print("| size | seeds | PQ (mean) | things (mean) | stuff (mean) | lowest PQ / things | goal |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        mine = [row for s, _, row in rows if s == size]
        mean = {k: sum(r[k] for r in mine) / len(mine) for k in ("All", "Things", "Stuff")}
        low_pq, low_things = min(r["All"] for r in mine), min(r["Things"] for r in mine)
        met = "met" if low_pq >= 82 and low_things >= 70 else "not met"
        print(
            f"| {size} | {len(mine)} | {mean['All']:.2f} | {mean['Things']:.2f} | "
            f"{mean['Stuff']:.2f} | {low_pq:.2f} / {low_things:.2f} | {met} |"
        )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
