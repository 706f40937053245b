"""Post-processing against its floor: `post_process` / the XLA argmax of the same logits.

    python benchmarks/bench_postprocess.py [--runs 10] [--height 1025 --width 2049]
        [--scenes 50:0.2:2 50:0.5:2 200:0.5:3] [--keep-k 200]

Each scene ``CENTERS:THINGS:GOAL`` is a Cityscapes-sized street-like input (19 classes, things
11..18): stuff bands plus CENTERS rectangular thing objects covering about THINGS of the pixels, a
Gaussian center peak per object and offsets pointing at it. The floor is the semantic argmax
alone (XLA-compiled, as inside post-processing), the least any post-processing of these logits
does; one read of the logits (a NumPy max) is printed as well. The timings take turns (floor,
scene 1, scene 2, ... per round) so machine load hits all of them alike; the ratio of medians is
checked against GOAL (issue: 2x at 50 centers, 3x at 200 centers with half the pixels things).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_scene(
    height: int, width: int, centers: int, things: float = 0.2, num_classes: int = 19, seed: int = 0
):
    """(logits, heatmap, offsets, thing pixel fraction) of a synthetic street scene."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(height) * 11 // height, width).reshape(height, width)  # stuff
    heat = np.zeros((height, width), np.float32)
    offsets = np.zeros((height, width, 2), np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    # Randomly placed boxes overlap: this total area covers about `things` of the image.
    area_each = -np.log1p(-things) * height * width / max(centers, 1)
    for _ in range(centers):
        bh = int(np.sqrt(area_each * 1.5))
        bw = int(area_each / max(bh, 1))
        y0 = rng.integers(0, height - bh)
        x0 = rng.integers(0, width - bw)
        cy, cx = y0 + bh // 2, x0 + bw // 2
        box = (slice(y0, y0 + bh), slice(x0, x0 + bw))
        labels[box] = rng.integers(11, 19)
        offsets[box + (0,)] = cy - yy[box]
        offsets[box + (1,)] = cx - xx[box]
        sl = (slice(max(cy - 24, 0), cy + 25), slice(max(cx - 24, 0), cx + 25))
        peak = np.exp(-((yy[sl] - cy) ** 2 + (xx[sl] - cx) ** 2) / (2 * 8.0**2))
        heat[sl] = np.maximum(heat[sl], peak)
    logits = rng.normal(scale=0.1, size=(height, width, num_classes)).astype(np.float32)
    np.put_along_axis(logits, labels[..., None], 5.0, axis=-1)
    return logits, heat, offsets, float((labels >= 11).mean())


def machine() -> str:
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        model = next(ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln)
        have = set(next(ln for ln in info.splitlines() if ln.startswith("flags")).split())
        flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in have)
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} CPUs, flags: {flags or 'none of avx2/avx512/amx'}"


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--height", type=int, default=1025)
    parser.add_argument("--width", type=int, default=2049)
    parser.add_argument("--scenes", nargs="+", default=["50:0.2:2", "50:0.5:2", "200:0.5:3"])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep-k", type=int, default=200)
    args = parser.parse_args()

    import tensorflow as tf

    from panoptic_deeplab.config import load_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.postprocess import PostProcessOptions, post_process

    options = PostProcessOptions.from_config(
        load_config("cityscapes/mobilenet_v3_large_os16"),
        get_dataset_spec("cityscapes"),
        keep_k_centers=args.keep_k,
    )
    scenes = []
    for text in args.scenes:
        centers, things, goal = text.split(":")
        logits, heat, offsets, fraction = make_scene(
            args.height, args.width, int(centers), float(things)
        )
        inputs = [tf.constant(x) for x in (logits, heat, offsets)]
        found = int(post_process(*inputs, options)["num_centers"])  # traces and compiles
        scenes.append((f"{found} centers, {fraction:.0%} things", inputs, float(goal)))

    argmax = tf.function(lambda x: tf.argmax(x, axis=-1, output_type=tf.int32), jit_compile=True)
    argmax(scenes[0][1][0]).numpy()
    floor, read, timed = [], [], [[] for _ in scenes]
    for _ in range(args.runs):  # taking turns
        start = time.perf_counter()
        argmax(scenes[0][1][0]).numpy()
        floor.append(time.perf_counter() - start)
        start = time.perf_counter()
        scenes[0][1][0].numpy().max()
        read.append(time.perf_counter() - start)
        for (_, inputs, _), times in zip(scenes, timed):
            start = time.perf_counter()
            post_process(*inputs, options)["panoptic"].numpy()
            times.append(time.perf_counter() - start)

    print(f"machine: {machine()}; TF {tf.__version__}; load average {os.getloadavg()[0]:.1f}")
    print(f"{args.height}x{args.width}, 19 classes, keep_k {args.keep_k}, {args.runs} runs each")
    print(f"floor, the XLA argmax of the logits: median {_median_ms(floor):.1f} ms")
    print(f"one read of the logits (NumPy max): median {_median_ms(read):.1f} ms")
    print("| scene | post_process (median ms) | min | ratio to the argmax | goal | met |")
    print("|---|---|---|---|---|---|")
    met_all = True
    for (name, _, goal), times in zip(scenes, timed):
        ratio = statistics.median(times) / statistics.median(floor)
        met_all &= ratio <= goal
        print(
            f"| {name} | {_median_ms(times):.1f} | {min(times) * 1000:.1f} | {ratio:.2f}x "
            f"| {goal:g}x | {'yes' if ratio <= goal else 'no'} |"
        )
    print("all goals met" if met_all else "some goals not met")


if __name__ == "__main__":
    main()
