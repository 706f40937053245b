"""Time every inference engine and precision on this machine, model alone and end to end.

    python benchmarks/bench_engines.py                  # R50 OS32 and MNV3-L OS16, 1025x2049
    python benchmarks/bench_engines.py --models mnv3l --engines tf openvino --runs 5
    python benchmarks/bench_engines.py --precisions fp32 bf16

For each model (random weights, saved once as a bundle under ``--bundle-dir``; speed does not depend
on the weights): one ``Predictor`` per (engine, precision) pair the engine can run (engines.py),
warmed up, then ``--runs`` rounds in which every pair takes one turn, so load from other users of
the machine falls on all pairs alike. Times are medians over the rounds (min-max in brackets):

* **model**: the network alone on the padded 1025x2049 batch (what the engine runs);
* **end to end**: ``Predictor(image)`` on a uint8 1025x2049 image: padding, network, softmax,
  post-processing, cropping, the result as NumPy.

Then the bounds: the best matmul throughput TensorFlow reaches here in float32 and bfloat16, the
arithmetic floor of each model at those peaks (analytic multiply-adds, model/flops.py), and the
memory bandwidth (one large copy), with the goals (R50 <= 1.0 s, MNV3-L <= 0.7 s end to end with the
``auto`` choice) marked met or not. The machine, its CPU flags and the load average are printed
with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from panoptic_deeplab.bundle import load_bundle, save_bundle
from panoptic_deeplab.config import load_config
from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.engines import PRECISIONS as ENGINE_PRECISIONS
from panoptic_deeplab.inference import Predictor
from panoptic_deeplab.model.builder import build_model
from panoptic_deeplab.model.flops import count_mult_adds
from panoptic_deeplab.precision import choose_precision, cpu_flags

MODELS = {"r50": "cityscapes/resnet50_os32", "mnv3l": "cityscapes/mobilenet_v3_large_os16"}
GOALS_S = {"r50": 1.0, "mnv3l": 0.7}


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def matmul_peak(dtype, n: int = 3072, runs: int = 5) -> float:
    """Best multiply-adds per second of an n x n x n matmul in ``dtype``."""
    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)
    matmul = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
    matmul()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        matmul().numpy()
        best = min(best, time.perf_counter() - start)
    return n**3 / best


def memory_bandwidth(mib: int = 512, runs: int = 5) -> float:
    """Bytes per second of one large NumPy copy (read + write)."""
    src = np.ones(mib * 2**20 // 4, np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def random_bundle(name: str, preset: str, root: Path) -> Path:
    directory = root / name
    if (directory / "bundle.json").is_file():
        return directory
    config = load_config(preset)
    spec = get_dataset_spec(config.dataset.name)
    return save_bundle(directory, build_model(config, num_classes=spec.num_classes), config, spec)


def summary(times: list[float]) -> dict:
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "runs": len(times),
    }


def bench_model(name: str, bundle_dir: Path, size, engines, precisions, runs: int) -> list[dict]:
    image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    padded = None
    pairs = {}
    for engine in engines:
        for precision in precisions:
            if precision not in ENGINE_PRECISIONS[engine]:
                continue
            start = time.perf_counter()
            predictor = Predictor(bundle_dir, backend=engine, precision=precision)
            load_s = time.perf_counter() - start
            if padded is None:
                network = predictor.pipeline.network_size(*size)
                padded = predictor.pipeline.resize_and_pad(
                    image[None], network, predictor.pipeline.padded_size(*network)
                )
            model = predictor.pipeline.model
            forward = tf.function(lambda x, m=model: m(x, training=False))
            pairs[(engine, precision)] = {
                "model": lambda f=forward, x=padded: {k: v.numpy() for k, v in f(x).items()},
                "end_to_end": lambda p=predictor: p(image, return_raw=False).panoptic,
                "load_s": load_s,
                "times": {"model": [], "end_to_end": []},
            }
            for _ in range(2):  # trace, then one warm call of each
                pairs[(engine, precision)]["model"]()
                pairs[(engine, precision)]["end_to_end"]()
            print(
                f"  ready: {name} {engine} {precision} (load {load_s:.1f} s, load average "
                f"{load_average()})",
                file=sys.stderr,
                flush=True,
            )
    for _ in range(runs):
        for pair in pairs.values():
            for kind in ("model", "end_to_end"):
                start = time.perf_counter()
                pair[kind]()
                pair["times"][kind].append(time.perf_counter() - start)
    return [
        {
            "model": name,
            "engine": engine,
            "precision": precision,
            "load_s": pair["load_s"],
            "model_s": summary(pair["times"]["model"]),
            "end_to_end_s": summary(pair["times"]["end_to_end"]),
        }
        for (engine, precision), pair in pairs.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--engines", nargs="+", default=["tf", "onnx", "openvino"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--size", nargs=2, type=int, default=[1025, 2049], metavar=("H", "W"))
    parser.add_argument(
        "--runs", type=int, default=5, help="interleaved rounds (each pair timed once per round)"
    )
    parser.add_argument(
        "--bundle-dir",
        type=Path,
        default=Path("/tmp/pdl-bench-bundles"),
        help="where the random-weight bundles are kept between runs",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    flags = sorted(cpu_flags())
    auto = choose_precision("auto")
    cpu = (
        subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        if sys.platform == "linux"
        else ""
    )
    model_name = next(
        (
            line.split(":", 1)[1].strip()
            for line in cpu.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor() or platform.machine(),
    )
    print(
        f"machine: {model_name}, {os.cpu_count()} CPUs, TF {tf.__version__}; load average "
        f"{load_average()}"
    )
    print(f"SIMD flags: {' '.join(f for f in flags if f.startswith(('avx', 'amx', 'fma')))}")
    print(f"auto precision here: {auto.describe()}")
    peaks = {"fp32": matmul_peak(tf.float32), "bf16": matmul_peak(tf.bfloat16)}
    bandwidth = memory_bandwidth()
    for key, peak in peaks.items():
        print(
            f"{key} matmul peak (TensorFlow): {peak / 1e9:.1f} G multiply-adds/s "
            f"({2 * peak / 1e9:.0f} GFLOP/s)"
        )
    print(f"memory bandwidth (NumPy copy): {bandwidth / 1e9:.1f} GB/s")

    results = []
    for name in args.models:
        bundle_dir = random_bundle(name, MODELS[name], args.bundle_dir)
        mult_adds = count_mult_adds(
            build_model(
                load_bundle(bundle_dir, precision="fp32").config, input_shape=tuple(args.size)
            )
        )
        rows = bench_model(name, bundle_dir, args.size, args.engines, args.precisions, args.runs)
        print(
            f"\n{MODELS[name]} at {args.size[0]}x{args.size[1]}: {mult_adds / 1e9:.1f} G "
            f"multiply-adds; load average {load_average()}"
        )
        print(f"  {'engine':9} {'precision':9} {'model s':>24} {'end to end s':>24}")
        for r in rows:
            m, e = r["model_s"], r["end_to_end_s"]
            print(
                f"  {r['engine']:9} {r['precision']:9} {m['median']:8.3f} "
                f"[{m['min']:.3f}-{m['max']:.3f}] {e['median']:8.3f} "
                f"[{e['min']:.3f}-{e['max']:.3f}]"
            )
            r["mult_adds"] = mult_adds
        results.extend(rows)
        auto_rows = [
            r for r in rows if r["precision"] == (auto.name if r["engine"] != "onnx" else "fp32")
        ]
        best = min(auto_rows, key=lambda r: r["end_to_end_s"]["median"]) if auto_rows else None
        if best:
            goal = GOALS_S[name]
            verdict = "met" if best["end_to_end_s"]["median"] <= goal else "NOT met"
            print(
                f"  goal {goal} s end to end with the auto choice: {verdict} (best: "
                f"{best['engine']} {best['precision']}, {best['end_to_end_s']['median']:.3f} s)"
            )
            for key, peak in peaks.items():
                print(
                    f"  bound: the arithmetic alone at the {key} matmul peak takes "
                    f"{mult_adds / peak:.2f} s"
                )
            print(
                f"  bound: one read of the 1025x2049x19 float32 logits at {bandwidth / 1e9:.0f} "
                f"GB/s takes {1025 * 2049 * 19 * 4 / bandwidth * 1e3:.0f} ms (post-processing "
                "reads them at least twice)"
            )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "load_average": load_average(),
                    "flags": flags,
                    "peaks": peaks,
                    "bandwidth": bandwidth,
                    "results": results,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
