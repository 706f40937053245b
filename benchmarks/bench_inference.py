"""Time Panoptic-DeepLab inference on this machine and compare it with the measured matmul peak.

    python benchmarks/bench_inference.py                     # MNV3-L OS16, R50 OS32 at 1025x2049
    python benchmarks/bench_inference.py --models r50 --jit  # XLA-compiled model
    python benchmarks/bench_inference.py --dtype mixed_bfloat16

For each model: build at the static input size (random weights; speed does not depend on them),
fold its batch norms into the convs (``--no-fold`` to keep them), warm up, then time ``--runs``
calls of the tf.function'd model (batch 1) and of model plus
post-processing (``panoptic_deeplab.postprocess.post_process``), and print the median and the
spread (min-max). Achieved multiply-adds per second use the analytic count of
``model/flops.py``; the peak is the best of several large fp32 ``tf.matmul`` runs (2 FLOP = 1 MAC).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

from panoptic_deeplab.config import load_config
from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.model.builder import build_model
from panoptic_deeplab.model.flops import count_mult_adds
from panoptic_deeplab.model.fold import fold_batch_norms

MODELS = {"mnv3l": "cityscapes/mobilenet_v3_large_os16", "r50": "cityscapes/resnet50_os32"}


def timed(fn, runs: int, cpu_times: list[float] | None = None) -> list[float]:
    """Wall-clock seconds of each run; the process CPU seconds go to ``cpu_times`` (a figure that
    other load on the machine disturbs much less than wall-clock time)."""
    times = []
    for _ in range(runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        if cpu_times is not None:
            cpu_times.append(time.process_time() - cpu_start)
    return times


def matmul_peak_macs(n: int = 3072, runs: int = 5) -> float:
    """Best fp32 multiply-adds per second of an n x n x n matmul (n^3 MACs)."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul()
    return n**3 / min(timed(lambda: matmul().numpy(), runs))


def bench_model(
    preset: str, size, runs: int, jit: bool, dtype: str, postprocess: bool, fold: bool
) -> dict:
    config = load_config(preset, [f"model.dtype_policy={dtype}"])
    spec = get_dataset_spec(config.dataset.name)
    model = build_model(config, input_shape=tuple(size))
    mult_adds = count_mult_adds(model)
    if fold:
        model = fold_batch_norms(model)
    image = tf.random.uniform((1, *size, 3), 0, 255, seed=0)

    forward = tf.function(lambda x: model(x, training=False), jit_compile=jit)

    def model_only():
        out = forward(image)
        return {k: v.numpy() for k, v in out.items()}

    result = {
        "config": preset,
        "input": [1, *size, 3],
        "jit_compile": jit,
        "fold_bn": fold,
        "dtype_policy": dtype,
        "mult_adds": mult_adds,
    }
    start = time.perf_counter()
    model_only()
    result["first_call_s"] = time.perf_counter() - start
    model_only()
    cpu = []
    times = timed(model_only, runs, cpu)
    result["model_s"] = summary(times)
    result["model_cpu_s"] = summary(cpu)
    result["model_mult_adds_per_s"] = mult_adds / statistics.median(times)

    if postprocess:
        from panoptic_deeplab.postprocess import PostProcessOptions, post_process

        options = PostProcessOptions.from_config(config, spec)

        def end_to_end():
            out = forward(image)
            panoptic = post_process(
                out["semantic_logits"][0], out["center_heatmap"][0], out["offsets"][0], options
            )
            return panoptic["panoptic"].numpy()

        end_to_end()
        end_to_end()
        result["end_to_end_s"] = summary(timed(end_to_end, runs))
    return result


def summary(times: list[float]) -> dict:
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "runs": len(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", nargs="+", default=list(MODELS), help=f"any of {list(MODELS)} or preset names"
    )
    parser.add_argument("--size", nargs=2, type=int, default=[1025, 2049], metavar=("H", "W"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="XLA jit_compile the model",
    )
    parser.add_argument(
        "--dtype",
        default="float32",
        help="float32 | mixed_bfloat16 | mixed_float16 | auto (what --precision auto picks here)",
    )
    parser.add_argument(
        "--fold",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fold batch norms into the convs (model/fold.py) before timing",
    )
    parser.add_argument("--postprocess", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--peak",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the fp32 matmul peak (seconds) to say how much of it the model reaches",
    )
    args = parser.parse_args()
    if args.dtype == "auto":
        from panoptic_deeplab.precision import choose_precision

        choice = choose_precision("auto")
        print(f"--dtype auto: {choice.policy} ({choice.reason})")
        args.dtype = choice.policy

    peak = matmul_peak_macs() if args.peak else float("nan")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"TF {tf.__version__}"
    )
    if args.peak:
        print(
            f"fp32 matmul peak: {peak / 1e9:.1f} G multiply-adds/s ({2 * peak / 1e9:.0f} GFLOP/s)"
        )
    results = []
    for name in args.models:
        r = bench_model(
            MODELS.get(name, name),
            args.size,
            args.runs,
            args.jit,
            args.dtype,
            args.postprocess,
            args.fold,
        )
        r["peak_mult_adds_per_s"] = peak if args.peak else None
        results.append(r)
        m = r["model_s"]
        print(
            f"{r['config']} {r['dtype_policy']} jit={r['jit_compile']} fold_bn={r['fold_bn']}: "
            f"{r['mult_adds'] / 1e9:.1f} G mult-adds"
        )
        print(
            f"  model        median {m['median']:.3f} s  (min {m['min']:.3f}, max {m['max']:.3f}, "
            f"{m['runs']} runs; first call {r['first_call_s']:.1f} s)"
        )
        print(f"  model CPU    median {r['model_cpu_s']['median']:.3f} CPU-s (all threads)")
        share = f" = {100 * r['model_mult_adds_per_s'] / peak:.0f}% of the matmul peak"
        print(
            f"  achieved     {r['model_mult_adds_per_s'] / 1e9:.1f} G mult-adds/s"
            + (share if args.peak else "")
        )
        if "end_to_end_s" in r:
            e = r["end_to_end_s"]
            print(
                f"  end to end   median {e['median']:.3f} s  (min {e['min']:.3f}, "
                f"max {e['max']:.3f}) incl. post-processing"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
