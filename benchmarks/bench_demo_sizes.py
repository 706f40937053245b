"""PQ of a bundle (default: the shipped demo) on held-out synthetic validation sets at several image
sizes, scored with panopticapi (``pq_compute``) on `pdl predict`'s COCO-panoptic output.

    python benchmarks/bench_demo_sizes.py [--model assets/models/synthetic_demo] [--images 60] \
        [--seed 2027] [--sizes 256x512 512x1024 1024x2048] [--cache DIR]

Each set is `pdl make-dataset synthetic --num-train 0 --num-val N --height H --width W --seed S`
(the demo was trained on seed 1; 2027 is the model card's held-out seed), made once under --cache.
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
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--sizes", nargs="+", default=["256x512", "512x1024", "1024x2048"])
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "pdl-demo-sizes"))
    args = parser.parse_args()
    from panopticapi.evaluation import pq_compute

    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    rows = []
    for size in args.sizes:
        height, width = (int(v) for v in size.split("x"))
        data = Path(args.cache) / f"val_{size}_seed{args.seed}_n{args.images}"
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
                    str(args.seed),
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
        rows.append((size, row, seconds))
        print(
            f"{size}: PQ {row['All']:.2f} (things {row['Things']:.2f}, stuff {row['Stuff']:.2f}); "
            f"{args.images} images, pdl predict {seconds:.0f} s",
            flush=True,
        )
    print(
        f"panopticapi PQ of {args.model}, seed {args.seed}: "
        + ", ".join(f"{size} {row['All']:.2f}" for size, row, _ in rows)
        + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
