"""Training throughput and peak memory of one config on this machine.

    python benchmarks/bench_training.py --config cityscapes/mobilenet_v3_large_os16 \
        --height 1025 --width 2049 --batch-size 1 --steps 3

Runs the real train step (``PanopticTrainingModel`` + ``PanopticLoss`` + Adam) on random images
and targets of the given size, so it measures the model and loss, not the input pipeline. Prints
seconds per step (after the first, traced, step), images/s and the process's peak RSS. For the
whole command including tf.data, use ``/usr/bin/time -v pdl train ...`` (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="synthetic/tiny")
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument(
        "--steps", type=int, default=3, help="timed steps after the first (traced) one"
    )
    parser.add_argument("--num-classes", type=int, default=None)
    parser.add_argument("--xla", action="store_true")
    parser.add_argument("--no-malloc-tuning", action="store_true")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    from panoptic_deeplab.glibc_malloc import tune_malloc
    from panoptic_deeplab.training.memory import peak_rss_bytes

    tuned = False if args.no_malloc_tuning else tune_malloc()

    import keras
    import numpy as np
    import tensorflow as tf

    from panoptic_deeplab.config import load_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.losses import PanopticLoss
    from panoptic_deeplab.model.builder import build_model
    from panoptic_deeplab.training.schedule import schedule_from_config
    from panoptic_deeplab.training.step import PanopticTrainingModel

    config = load_config(args.config, args.overrides)
    h = args.height or config.dataset.crop_size[0]
    w = args.width or config.dataset.crop_size[1]
    config = config.replace({"dataset.crop_size": [h, w]})
    num_classes = args.num_classes or get_dataset_spec(config.dataset.name).num_classes
    network = build_model(config, num_classes=num_classes)
    model = PanopticTrainingModel(network, PanopticLoss(config.loss))
    model.compile(
        optimizer=keras.optimizers.Adam(schedule_from_config(config.train)), jit_compile=args.xla
    )

    rng = np.random.default_rng(0)
    b = args.batch_size
    features = {"image": rng.uniform(0, 255, (b, h, w, 3)).astype(np.float32)}
    targets = {
        "semantic": rng.integers(0, num_classes, (b, h, w)).astype(np.int32),
        "semantic_weights": np.ones((b, h, w), np.float32),
        "center_heatmap": rng.uniform(0, 1, (b, h, w)).astype(np.float32),
        "center_weights": np.ones((b, h, w), np.float32),
        "offsets": rng.normal(0, 20, (b, h, w, 2)).astype(np.float32),
        "offset_weights": np.ones((b, h, w), np.float32),
    }
    dataset = tf.data.Dataset.from_tensors((features, targets)).repeat()
    times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.t)

    model.fit(dataset, epochs=1, steps_per_epoch=args.steps + 1, verbose=0, callbacks=[Timer()])
    timed = times[1:] or times
    sec = float(np.median(timed))
    print(
        json.dumps(
            {
                "config": config.name,
                "size": [h, w],
                "batch_size": b,
                "params": network.count_params(),
                "first_step_s": round(times[0], 2),
                "seconds_per_step": round(sec, 2),
                "images_per_sec": round(b / sec, 3),
                "peak_rss_gib": round(peak_rss_bytes() / 2**30, 2),
                "malloc_tuned": tuned,
                "xla": args.xla,
            }
        )
    )


if __name__ == "__main__":
    main()
