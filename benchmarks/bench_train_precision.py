"""Training in bfloat16 against float32 on the demo config: step time and loss curve.

    python benchmarks/bench_train_precision.py --steps 100 --out /tmp/pdl-train-precision

Makes a synthetic data set once (64 training scenes, 256x512, seed 1 as for the demo model), then
runs ``pdl train --config synthetic/demo --precision P`` for fp32 and bf16 one after the other,
same seed, same steps, no periodic evaluation, and compares their ``metrics.csv``: seconds per step
(median over the logged intervals after the first) and the total / semantic / center / offset
losses at every logged step. The curve "holds" when the bf16 total loss, averaged over the logged
steps of the second half of the run (single logs are batches of 4 and noisy), is within
``--tolerance`` (relative) of fp32's.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
from pathlib import Path


def read_metrics(path: Path) -> list[dict]:
    with open(path) as f:
        return [
            {k: float(v) for k, v in row.items() if v not in ("", None)}
            for row in csv.DictReader(f)
        ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("/tmp/pdl-train-precision"))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument(
        "--tolerance", type=float, default=0.10, help="relative loss difference allowed"
    )
    args = parser.parse_args()

    pdl = [sys.executable, "-m", "panoptic_deeplab"]
    data = args.out / "data"
    if not (data / ".complete").exists():
        subprocess.run(
            pdl
            + [
                "make-dataset",
                "synthetic",
                "--out",
                str(data),
                "--num-train",
                "64",
                "--num-val",
                "4",
                "--height",
                "256",
                "--width",
                "512",
                "--seed",
                "1",
            ],
            check=True,
        )
        (data / ".complete").write_text("ok\n")
    curves = {}
    for precision in args.precisions:
        workdir = args.out / f"run-{precision}"
        if not (workdir / "model" / "bundle.json").is_file():
            print(
                f"training {precision} ({args.steps} steps; load average {os.getloadavg()[0]:.2f})",
                flush=True,
            )
            subprocess.run(
                pdl
                + [
                    "train",
                    "--config",
                    "synthetic/demo",
                    "--dataset",
                    str(data),
                    "--workdir",
                    str(workdir),
                    "--steps",
                    str(args.steps),
                    "--precision",
                    precision,
                    "--checkpoint-every",
                    str(args.steps),
                    "--eval-every",
                    "0",
                    "--set",
                    f"train.log_every={args.log_every}",
                    "--skip-dataset-check",
                ],
                check=True,
            )
        curves[precision] = read_metrics(workdir / "metrics.csv")

    base = curves[args.precisions[0]]
    print(f"load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for precision, rows in curves.items():
        intervals = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(rows, rows[1:])]
        per_step = statistics.median(intervals) / args.log_every if intervals else float("nan")
        print(f"{precision}: {per_step:.3f} s/step (median of {len(intervals)} logged intervals)")
    print("step  " + "  ".join(f"{p:>8} loss" for p in curves))
    for i, row in enumerate(base):
        print(
            f"{int(row['step']):4d}  "
            + "  ".join(f"{curves[p][i]['loss']:13.4f}" for p in curves if i < len(curves[p]))
        )
    for precision in args.precisions[1:]:
        rows = curves[precision]
        half = [(a["loss"], b["loss"]) for a, b in zip(base, rows) if a["step"] > args.steps / 2]
        mean_base = statistics.mean(a for a, _ in half)
        mean_low = statistics.mean(b for _, b in half)
        diff = (mean_low - mean_base) / mean_base
        verdict = "holds" if abs(diff) <= args.tolerance else "does NOT hold"
        print(
            f"{precision} vs {args.precisions[0]}: mean loss over the second half {mean_low:.4f} "
            f"vs {mean_base:.4f} ({100 * diff:+.1f} %) -> the curve {verdict} (tolerance "
            f"{100 * args.tolerance:.0f} %)"
        )


if __name__ == "__main__":
    main()
