"""Time `post_process` on a Cityscapes-sized street-like scene (1025x2049, 19 classes).

    python benchmarks/bench_postprocess.py [--centers 50] [--runs 10] [--height 1025 --width 2049]

The scene: stuff bands plus ``--centers`` rectangular thing objects (about 20% of the pixels),
a Gaussian center peak per object and offsets pointing at it. Prints the median over the runs
(after one warm-up call that traces the tf.function), then two lower bounds for any
post-processing of these inputs on this machine: one read of the logits (a NumPy max over the
19 x H x W floats, memory bandwidth) and the semantic argmax alone (XLA-compiled, as inside).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_scene(height: int, width: int, centers: int, num_classes: int = 19, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(height) * 11 // height, width).reshape(
        height, width
    )  # stuff 0..10
    heat = np.zeros((height, width), np.float32)
    offsets = np.zeros((height, width, 2), np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    area_each = 0.2 * height * width / max(centers, 1)
    for _ in range(centers):
        bh = int(np.sqrt(area_each * 1.5))
        bw = int(area_each / max(bh, 1))
        y0 = rng.integers(0, height - bh)
        x0 = rng.integers(0, width - bw)
        cy, cx = y0 + bh // 2, x0 + bw // 2
        labels[y0 : y0 + bh, x0 : x0 + bw] = rng.integers(11, 19)
        offsets[y0 : y0 + bh, x0 : x0 + bw, 0] = cy - yy[y0 : y0 + bh, x0 : x0 + bw]
        offsets[y0 : y0 + bh, x0 : x0 + bw, 1] = cx - xx[y0 : y0 + bh, x0 : x0 + bw]
        sl = (slice(max(cy - 24, 0), cy + 25), slice(max(cx - 24, 0), cx + 25))
        heat[sl] = np.maximum(
            heat[sl], np.exp(-((yy[sl] - cy) ** 2 + (xx[sl] - cx) ** 2) / (2 * 8.0**2))
        )
    logits = rng.normal(scale=0.1, size=(height, width, num_classes)).astype(np.float32)
    np.put_along_axis(logits, labels[..., None], 5.0, axis=-1)
    return logits, heat, offsets, float((labels >= 11).mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--height", type=int, default=1025)
    parser.add_argument("--width", type=int, default=2049)
    parser.add_argument("--centers", type=int, default=50)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep-k", type=int, default=200)
    args = parser.parse_args()

    import tensorflow as tf

    from panoptic_deeplab.config import load_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.postprocess import PostProcessOptions, post_process

    logits, heat, offsets, thing_fraction = make_scene(args.height, args.width, args.centers)
    inputs = [tf.constant(x) for x in (logits, heat, offsets)]
    # The Cityscapes preset's settings (19 classes, things 11..18), with the requested top-k.
    options = PostProcessOptions.from_config(
        load_config("cityscapes/mobilenet_v3_large_os16"),
        get_dataset_spec("cityscapes"),
        keep_k_centers=args.keep_k,
    )
    out = post_process(*inputs, options)  # trace
    times, cpu = [], []
    for _ in range(args.runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = post_process(*inputs, options)
        out["panoptic"].numpy()
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    print(
        f"post_process {args.height}x{args.width}, {int(out['num_centers'])} centers, "
        f"thing pixels {thing_fraction:.0%}, {os.cpu_count()} CPUs, TF {tf.__version__}: "
        f"median {statistics.median(times):.1f} ms wall (min {min(times):.1f}, max {max(times):.1f}, runs {args.runs}), "
        f"median CPU time {statistics.median(cpu):.1f} ms (all threads), load average {os.getloadavg()[0]:.1f}"
    )

    argmax = tf.function(lambda x: tf.argmax(x, axis=-1, output_type=tf.int32), jit_compile=True)
    argmax(inputs[0]).numpy()
    bounds = {
        "read the logits once (NumPy max)": lambda: logits.max(),
        "semantic argmax alone (XLA)": lambda: argmax(inputs[0]).numpy(),
    }
    for name, fn in bounds.items():
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
        print(
            f"lower bound, {name}: median {statistics.median(times):.1f} ms "
            f"({logits.nbytes / 2**20:.0f} MiB of logits, {logits.nbytes / 1e6 / statistics.median(times):.1f} GB/s)"
        )


if __name__ == "__main__":
    main()
