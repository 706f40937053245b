"""Cold start: ``pdl predict`` of one image with the demo model in a new process, against its floor,
a new process that only imports TensorFlow.

    python benchmarks/bench_cold_start.py               # 3 rounds
    python benchmarks/bench_cold_start.py --rounds 5 --image street.png --model BUNDLE

Each round runs the floor (``python -c "import tensorflow"``) and then ``pdl predict`` (taking
turns, so load from other users of the machine falls on both alike), each in a fresh process; wall
time and CPU time (user + system of the child) per run. Printed: the machine, its CPU flags, the
load average, each run, the medians and the ratio predict / floor (goal: at most 1.5, issue 26).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "models" / "synthetic_demo"
GOAL = 1.5


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def machine() -> str:
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")):
                key, value = line.split(":", 1)
                if key.strip() == "flags":
                    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma")
                    flags = " ".join(f for f in value.split() if f in wanted)
                    break
                name = value.strip()
    except OSError:
        name = platform.processor()
    return f"{name}, {os.cpu_count()} CPUs, flags: {flags or '-'}"


def make_image(path: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (257, 513, 3), dtype=np.uint8)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=str(DEMO))
    parser.add_argument("--image", default=None, help="default: a random 257x513 image")
    args = parser.parse_args()

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(args.image) if args.image else Path(tmp) / "image.png"
        if not args.image:
            make_image(image)
        floor_cmd = [sys.executable, "-c", "import tensorflow"]
        predict_cmd = [
            *(sys.executable, "-m", "panoptic_deeplab", "predict", "--model", args.model),
            *("--images", str(image), "--out", str(Path(tmp) / "out")),
        ]
        print(f"machine: {machine()}")
        print(f"python {platform.python_version()}, load average before: {os.getloadavg()}")
        floors, predicts = [], []
        for k in range(args.rounds):
            floors.append(timed(floor_cmd, env))
            predicts.append(timed(predict_cmd, env))
            print(
                f"round {k + 1}: import tensorflow {floors[-1][0]:.2f} s wall "
                f"({floors[-1][1]:.2f} CPU-s); pdl predict {predicts[-1][0]:.2f} s wall "
                f"({predicts[-1][1]:.2f} CPU-s); load {os.getloadavg()[0]:.2f}"
            )
    for what, index in (("wall", 0), ("CPU", 1)):
        floor = statistics.median(f[index] for f in floors)
        predict = statistics.median(p[index] for p in predicts)
        print(
            f"median {what}: import tensorflow {floor:.2f} s, pdl predict {predict:.2f} s, "
            f"ratio {predict / floor:.2f} (goal <= {GOAL})"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
