"""`pdl train --config CFG --dataset ROOT --workdir DIR [...]`: train, resume, or fine-tune.

Running the same command again with the same --workdir resumes from its newest checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from ..config import STRATEGIES


def configure_parser(parser) -> None:
    parser.add_argument(
        "--config", required=True, help="preset name (synthetic/tiny) or a YAML file"
    )
    parser.add_argument(
        "--dataset",
        required=True,
        help="data set folder (COCO-panoptic, Cityscapes or Mapillary Vistas layout)",
    )
    parser.add_argument("--split", default="train", help="split to train on (default: train)")
    parser.add_argument(
        "--workdir",
        required=True,
        help="run folder: checkpoints, history (snapshots over the run), logs, metrics.csv, status.json, model/",
    )
    parser.add_argument("--steps", type=int, help="total optimizer steps (train.steps)")
    parser.add_argument("--batch-size", type=int, help="effective batch size (train.batch_size)")
    parser.add_argument(
        "--checkpoint-every", type=int, help="steps between checkpoints (train.checkpoint_every)"
    )
    parser.add_argument(
        "--init-from",
        help="bundle folder, .weights.h5 file, workdir or checkpoint prefix to start from",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, e.g. --set train.base_learning_rate=1e-3 (repeatable)",
    )
    parser.add_argument(
        "--strategy", choices=STRATEGIES, help="tf.distribute strategy (train.strategy)"
    )
    parser.add_argument(
        "--eval-split", help="split to evaluate every train.eval_every steps (e.g. val)"
    )
    parser.add_argument(
        "--eval-every", type=int, help="steps between evaluations (train.eval_every)"
    )
    parser.add_argument(
        "--eval-images", type=int, default=0, help="evaluate on the first N images only (0 = all)"
    )
    parser.add_argument(
        "--xla", action="store_true", help="compile the train step with XLA (train.xla)"
    )
    from .predict import add_precision_argument

    add_precision_argument(parser, training=True)
    parser.add_argument(
        "--mixed-precision",
        choices=["float32", "mixed_float16", "mixed_bfloat16"],
        help="Keras dtype policy (model.dtype_policy); --precision fp32|bf16|fp16 says the same",
    )
    parser.add_argument("--mlflow", action="store_true", help="also log to MLflow (if installed)")
    parser.add_argument(
        "--skip-dataset-check",
        action="store_true",
        help="start without the `pdl check-dataset` pass over the split(s) (large data sets checked before)",
    )
    parser.add_argument(
        "--low-memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="CPU: run one op at a time, keep the input pipeline small and take tensors from malloc "
        "(TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1), not TensorFlow's pool (lower peak RSS, slower; "
        "default: chosen from the device, the crop and the free memory, and printed)",
    )


def before_tensorflow() -> None:
    from ..glibc_malloc import tune_malloc  # not via ..training, whose package imports TensorFlow

    tune_malloc()  # before TensorFlow starts its threads: keeps CPU peak RSS near the live tensors


def run(args) -> int:
    with _stop_cleanly_on_sigterm():
        return _run(args)


def _run(args) -> int:
    before_tensorflow()  # (again, harmless) for callers that run this without the CLI
    from ..config import load_config

    overrides = list(args.overrides)
    for flag, key in (
        ("steps", "train.steps"),
        ("batch_size", "train.batch_size"),
        ("checkpoint_every", "train.checkpoint_every"),
        ("strategy", "train.strategy"),
        ("eval_every", "train.eval_every"),
        ("mixed_precision", "model.dtype_policy"),
    ):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    if args.xla:
        overrides.append("train.xla=true")
    if args.precision is not None:
        from ..precision import choose_precision

        choice = choose_precision(args.precision, training=True)
        overrides.append(f"model.dtype_policy={choice.policy}")
        print(f"training in {choice.describe()}", file=sys.stderr)
    config = load_config(args.config, overrides)
    if not args.skip_dataset_check:
        # A broken data set fails now, with check-dataset's messages, not as a TF error mid-run.
        from ..datasets.checks import require_valid_dataset
        from ..training.run_files import announce_phase

        announce_phase("checking the data set")
        for split in dict.fromkeys(s for s in (args.split, args.eval_split) if s):
            require_valid_dataset(args.dataset, split)

    # MultiWorkerMirroredStrategy must exist before any other TensorFlow op runs.
    import tensorflow as tf

    from ..training import make_strategy, train
    from ..training.memory import available_memory_bytes, choose_low_memory, use_system_allocator

    tc = config.train
    # Before the strategy: inter-op threads can be set only until TensorFlow starts its runtime.
    memory = choose_low_memory(
        config,
        micro_batch=max(tc.batch_size // max(tc.gradient_accumulation, 1), 1),
        on_gpu=bool(tf.config.list_physical_devices("GPU")),
        available_bytes=available_memory_bytes(),
        requested=args.low_memory,
    )
    print(memory.describe(), flush=True)
    if memory.low_memory:
        tf.config.threading.set_inter_op_parallelism_threads(1)
        use_system_allocator()  # before the first tensor: TensorFlow reads it when it makes its CPU allocator
    strategy = make_strategy(config.train.strategy)

    from ..data.pipeline import make_dataset
    from ..datasets.readers import open_dataset

    reader = open_dataset(args.dataset, args.split)
    spec = reader.spec
    if config.dataset.name != spec.name:
        print(
            f"note: config dataset '{config.dataset.name}', data set classes '{spec.name}': using the data set's "
            f"{spec.num_classes} classes",
            file=sys.stderr,
        )

    def dataset_fn(batch_size: int, seed: int):
        ds = make_dataset(
            reader, args.split, config, training=True, batch_size=batch_size, spec=spec, seed=seed
        )
        if memory.low_memory:
            options = tf.data.Options()
            options.autotune.ram_budget = 256 * 2**20
            options.threading.private_threadpool_size = 1
            ds = ds.with_options(options)
        return ds

    evaluate_fn = None
    if args.eval_split:
        eval_reader = open_dataset(args.dataset, args.eval_split, spec)
        evaluate_fn = _make_evaluator(eval_reader, args.eval_split, config, spec, args.eval_images)
    preview = _preview_images(reader, config, spec)
    result = train(
        config,
        args.workdir,
        dataset_fn=dataset_fn,
        spec=spec,
        strategy=strategy,
        init_from=args.init_from,
        evaluate_fn=evaluate_fn,
        preview_images=preview,
        use_mlflow=args.mlflow,
        domain=_domain(args, spec, len(reader)),
    )
    print(f"finished at step {result.step} in {result.wall_time_s:.0f} s")
    return 0


def _domain(args, spec, images: int) -> str:
    """The bundle's one-line domain: the training images and their classes."""
    from pathlib import Path

    base = f"; fine-tuned from {Path(args.init_from).name}" if args.init_from else ""
    return (
        f"images like the {images} of '{Path(args.dataset).resolve().name}' split '{args.split}' "
        f"({spec.num_classes} classes of '{spec.name}'){base}"
    )


@contextlib.contextmanager
def _stop_cleanly_on_sigterm():
    """SIGTERM (``docker stop``, ``kill``, the app's Cancel) ends training the way Ctrl-C does:
    status.json says "stopped" and names the checkpoint to resume from. Without a handler Python dies
    on the spot, and as a container's PID 1 it ignores SIGTERM until docker sends SIGKILL. The
    previous handler comes back afterwards, for callers that train inside a longer-lived process."""
    import signal
    import threading

    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _preview_images(reader, config, spec):
    """The TensorBoard preview: the first training image under ``pdl evaluate``'s resize and pad
    rules, cropped to ``dataset.crop_size`` at the top left (a full-size image can be large); any
    image size works, so a preview never stops a run."""
    from ..inference import InferencePipeline

    sizes = InferencePipeline(None, config, spec)  # the size rules only
    image = reader.load_image(0)
    network = sizes.network_size(*image.shape[:2])
    padded = sizes.resize_and_pad(image[None], network, sizes.padded_size(*network))
    crop_h, crop_w = sizes.crop_size
    return padded[:, :crop_h, :crop_w].numpy()


def _make_evaluator(reader, split, config, spec, limit: int):
    """Periodic PQ / mIoU on ``split`` (training.periodic_eval)."""
    from ..training.periodic_eval import make_periodic_evaluator

    return make_periodic_evaluator(reader, split, config, spec, limit or None)
