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
        help="run folder: checkpoints, history (snapshots over the run), logs, metrics.csv, "
        "status.json, model/",
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
        help="start without the `pdl check-dataset` pass over the split(s) "
        "(large data sets checked before)",
    )
    parser.add_argument(
        "--low-memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="CPU: run one op at a time, keep the input pipeline small and take tensors from "
        "malloc (TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1), not TensorFlow's pool (lower peak RSS, slower; "
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
    from ..config import load_config

    config = load_config(args.config, overrides)
    from ..training.api import train

    result = train(
        config,
        args.dataset,
        args.workdir,
        split=args.split,
        init_from=args.init_from,
        eval_split=args.eval_split,
        eval_images=args.eval_images,
        low_memory=args.low_memory,
        check_dataset=not args.skip_dataset_check,
        use_mlflow=args.mlflow,
    )
    print(f"finished at step {result.step} in {result.wall_time_s:.0f} s")
    return 0


@contextlib.contextmanager
def _stop_cleanly_on_sigterm():
    """SIGTERM (``docker stop``, ``kill``, the app's Cancel) ends training the way Ctrl-C does:
    status.json says "stopped" and names the checkpoint to resume from. Without a handler Python
    dies on the spot, and as a container's PID 1 it ignores SIGTERM until docker sends SIGKILL. The
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
