"""CPU time and peak memory of one forward pass of the zoo presets (the README's zoo table).

    python benchmarks/bench_zoo.py                          # the large rows, R50 OS32 between them
    python benchmarks/bench_zoo.py --presets cityscapes/wide_resnet41_os16 --max-gib 18
    python benchmarks/bench_zoo.py --graph --size 1025 2049 \
        --presets tests/fixtures/deeplab2_zoo/zoo_variables/coco_r50_os32.textproto

A "preset" is one of our configs or a deeplab2 experiment textproto (the zoo model exactly as
``pdl import deeplab2`` builds it, e.g. COCO's 133-class head).

Each model runs in a process of its own (peak RSS is per process): build the preset with random
weights (time and memory do not depend on them), one warm-up call at 65x129, then one eager call at
the preset's eval size (``dataset.crop_size``: 1025x2049 for Cityscapes; ``--size H W`` for
another), no post-processing. ``--graph``: the call runs as one ``tf.function`` traced for that
size beforehand, as the Predictor runs it; TensorFlow then frees each activation once used, where
an eager Keras call may keep them to the end.

The reference, ``cityscapes/resnet50_os32``, runs before the
first model and after each one, so every model sits between two reference runs made under nearly the
same load: the headline figure is the ratio to their mean. The parent watches each child's resident
memory and stops it above ``--max-gib`` (never more than the memory available at its start less
``--spare-gib``, and also when the memory available falls under ``--spare-gib``, so the shared
machine keeps room), reporting the row as not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

REFERENCE = "cityscapes/resnet50_os32"
LARGE_ROWS = [
    "cityscapes/swidernet_sac_1_1_1_os16",
    "cityscapes/axial_swidernet_1_1_1_os16",
    "cityscapes/max_deeplab_l_backbone_os16",
    "cityscapes/swidernet_sac_1_1_3_os16",
    "cityscapes/axial_swidernet_1_1_3_os16",
    "cityscapes/swidernet_sac_1_1_4.5_os16",
    "cityscapes/axial_swidernet_1_1_4.5_os16",
]
GIB = 2**30


def run_one(preset: str, graph: bool, size: list[int] | None) -> None:
    """Child: print one JSON line with the preset's figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from panoptic_deeplab.deeplab2.importer import read_config
    from panoptic_deeplab.model.builder import build_model

    config = read_config(preset, None)[0]  # our config name, or a deeplab2 textproto
    size = tuple(int(s) for s in (size or config.dataset.crop_size))
    start = time.perf_counter()
    model = build_model(config)
    built = time.perf_counter() - start
    model(tf.random.uniform((1, 65, 129, 3), 0, 255, seed=0), training=False)
    image = tf.random.uniform((1, *size, 3), 0, 255, seed=0)
    forward = lambda x: model(x, training=False)  # noqa: E731 - one line, read in place
    if graph:  # traced (not run) for this size before the clock starts
        forward = tf.function(forward, autograph=False).get_concrete_function(image)
    start, cpu_start = time.perf_counter(), time.process_time()
    out = forward(image)
    _ = {k: v.numpy() for k, v in out.items()}
    seconds = time.perf_counter() - start
    result = {
        "preset": preset,
        "size": list(size),
        "mode": "graph" if graph else "eager",
        "params": int(model.count_params()),
        "build_s": round(built, 1),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB, 2),
        "load": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result), flush=True)


def available_gib() -> float:
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) * 1024 / GIB


def rss_gib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / GIB
    except FileNotFoundError:
        pass
    return 0.0


def measure(preset: str, max_gib: float, spare_gib: float, graph: bool = False, size=None) -> dict:
    """Parent: run one preset in a child process, stopping it above the memory cap."""
    cap = min(max_gib, available_gib() - spare_gib)
    load = os.getloadavg()[0]
    options = [*(["--graph"] if graph else []), *(["--size", *map(str, size)] if size else [])]
    child = subprocess.Popen(
        [sys.executable, __file__, "--one", preset, *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    peak = 0.0
    started = time.perf_counter()
    while child.poll() is None:
        peak = max(peak, rss_gib(child.pid))
        if peak > cap or available_gib() < spare_gib:  # others' memory grows too
            child.kill()
            child.wait()
            return {
                "preset": preset,
                "stopped": f"resident memory passed {cap:.1f} GiB after "
                f"{time.perf_counter() - started:.0f} s (cap: --max-gib {max_gib:g}, "
                f"{available_gib():.1f} GiB available now)",
                "load_before": round(load, 2),
            }
        time.sleep(0.2)
    lines = child.stdout.read().strip().splitlines()
    if child.returncode != 0 or not lines:
        return {"preset": preset, "stopped": f"exit status {child.returncode}"}
    return {**json.loads(lines[-1]), "load_before": round(load, 2)}


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "?"
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    return " ".join(flag for flag in wanted if flag in flags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=LARGE_ROWS)
    parser.add_argument("--max-gib", type=float, default=20.0)
    parser.add_argument("--spare-gib", type=float, default=1.5)
    parser.add_argument("--graph", action="store_true", help="run the call as one tf.function")
    parser.add_argument(
        "--size", nargs=2, type=int, metavar=("H", "W"), help="input size (default: eval size)"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one, args.graph, args.size)
        return
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.processor()}"
    )
    print(f"CPU flags: {cpu_flags()}")
    print(f"memory available: {available_gib():.1f} GiB; load average: {os.getloadavg()}")
    reference = [measure(REFERENCE, args.max_gib, args.spare_gib, args.graph, args.size)]
    print(json.dumps(reference[-1]), flush=True)
    rows = []
    for preset in args.presets:
        row = measure(preset, args.max_gib, args.spare_gib, args.graph, args.size)
        print(json.dumps(row), flush=True)
        reference.append(measure(REFERENCE, args.max_gib, args.spare_gib, args.graph, args.size))
        print(json.dumps(reference[-1]), flush=True)
        around = [r["seconds"] for r in reference[-2:] if "seconds" in r]
        if "seconds" in row and around:
            row["ratio"] = round(row["seconds"] / (sum(around) / len(around)), 2)
        rows.append(row)
    print(f"\nload average after: {os.getloadavg()}")
    print("| preset | s (x R50 OS32) | peak GiB | load |")
    print("|---|---|---|---|")
    for row in rows:
        if "seconds" in row:
            figure = f"{row['seconds']:.0f} ({row['ratio']:.2f}x)"
            print(f"| {row['preset']} | {figure} | {row['peak_gib']:.1f} | {row['load']:.1f} |")
        else:
            print(f"| {row['preset']} | - | - | {row['stopped']} |")


if __name__ == "__main__":
    main()
