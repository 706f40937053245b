"""Training-pipeline throughput (images/s) at Cityscapes' 1025x2049 crop.

Generates a synthetic data set at 1024x2048 in a temporary folder, builds the training pipeline
(decode, random scale 0.5-2.0, random pad/crop to 1025x2049, flip, targets) and times
``--images`` crops per run after a warm-up; prints the median of ``--runs`` runs, in images/s
(wall clock) and CPU-seconds per image (what the pipeline takes away from training on a small
machine, and a figure less sensitive to other load).

    python benchmarks/bench_pipeline.py [--images 16] [--runs 3] [--num-files 8]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="crops timed per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--num-files", type=int, default=8, help="synthetic images generated")
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()

    from panoptic_deeplab.config import Config
    from panoptic_deeplab.data.pipeline import make_dataset
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    cfg = Config()  # Cityscapes defaults: crop 1025x2049, scales 0.5-2.0 step 0.1
    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic_dataset(tmp, args.num_files, 0, height=1024, width=2048, seed=0)
        ds = make_dataset(tmp, "train", cfg, training=True, batch_size=args.batch_size, seed=0)
        batches = max(1, args.images // args.batch_size)
        iterator = iter(ds)
        for _ in range(2):  # warm-up: tracing, thread pools, autotune
            next(iterator)
        rates, cpu = [], []
        for run in range(args.runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(batches):
                features, _targets = next(iterator)
            features["image"].numpy()
            elapsed = time.perf_counter() - start
            rates.append(batches * args.batch_size / elapsed)
            # CPU seconds per image: robust to other load on a shared machine.
            cpu.append((time.process_time() - start_cpu) / (batches * args.batch_size))
            print(f"run {run + 1}: {rates[-1]:.2f} images/s, {cpu[-1]:.2f} CPU-s/image")
        # Stop the prefetching readers before their files go, or they print 'PNG not found'.
        del iterator, ds
        gc.collect()
    print(
        f"median training-pipeline throughput at 1025x2049: {statistics.median(rates):.2f} "
        f"images/s ({statistics.median(cpu):.2f} CPU-s/image)"
    )


if __name__ == "__main__":
    main()
