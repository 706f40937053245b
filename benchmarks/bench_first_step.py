"""Time to the first training step of a fine-tune from the demo model, against its floor: importing
TensorFlow. Both run as fresh processes, taking turns, so machine load hits them alike.

    python benchmarks/bench_first_step.py --turns 3

Each turn times, in this order:
- ``import``: ``python -c "import tensorflow"`` (wall seconds), the floor;
- ``pdl train``: what the app's Train page runs (``pdl train --config <demo>/config.yaml
  --init-from <demo> --dataset D --workdir W --steps 3``), from the process start to the line of
  its first step (``step 1/3 ...``); the run is then killed;

Prints each time, the medians, and the ratio of ``pdl train`` to the import (issue 26's goal: 3x),
with the machine, its CPU flags and its load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "models" / "synthetic_demo"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
FIRST_STEP = re.compile(r"^step 1/\d+ ")


def time_import() -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import tensorflow"], env=ENV, check=True, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def time_first_step(prefix: list[str], dataset: Path, workdir: Path, timeout: float) -> float:
    """Seconds from starting ``pdl train`` to its first step's log line; the run is then killed."""
    argv = [*prefix, "train", "--config", str(DEMO / "config.yaml"), "--init-from", str(DEMO)]
    argv += ["--dataset", str(dataset), "--workdir", str(workdir), "--steps", "3"]
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if FIRST_STEP.match(line):
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                break
        raise RuntimeError("no first step; the run printed:\n" + "".join(seen[-30:]))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def machine() -> str:
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.*)", text)
        have = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
        flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in have)
        name = model.group(1) if model else platform.processor()
    except (OSError, AttributeError):
        name = platform.processor()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{name}, {os.cpu_count()} CPUs, flags [{flags}], load average {load}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()

    pdl = [sys.executable, "-m", "panoptic_deeplab"]
    variants = {"pdl train": pdl}
    print(f"machine: {machine()}", flush=True)
    times: dict[str, list[float]] = {"import": [], **{name: [] for name in variants}}
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "data"
        subprocess.run(
            [*pdl, "make-dataset", "synthetic", "--out", str(dataset), "--num-train", "8"]
            + ["--num-val", "2", "--height", "256", "--width", "512", "--workers", "1"],
            env=ENV,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for turn in range(args.turns):
            times["import"].append(time_import())
            for name, prefix in variants.items():
                workdir = Path(tmp) / f"run-{name.replace(' ', '-')}-{turn}"
                times[name].append(time_first_step(prefix, dataset, workdir, args.timeout))
            shown = ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items())
            print(f"turn {turn + 1}: {shown}", flush=True)
    floor = statistics.median(times["import"])
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"median import tensorflow (floor): {floor:.1f} s")
    for name in variants:
        median = statistics.median(times[name])
        print(f"median {name} to first step: {median:.1f} s = {median / floor:.2f}x the floor")


if __name__ == "__main__":
    main()
