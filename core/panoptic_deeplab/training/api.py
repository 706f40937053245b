"""``panoptic_deeplab.train``: train from Python with a config, a data set folder and a workdir.

This is what ``pdl train`` and the jobs it launches run: the data-set check, the memory mode, the
strategy, the input pipeline, the periodic evaluator and the TensorBoard preview are set up here,
then :func:`training.trainer.train` (the fit loop, for callers with their own ``tf.data``
pipeline) runs. See docs/training-api.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import Config


def train(
    config: Config | str | Path,
    dataset: str | Path,
    workdir: str | Path,
    *,
    split: str = "train",
    overrides: list[str] | dict | None = None,
    init_from: str | Path | None = None,
    eval_split: str | None = None,
    eval_images: int = 0,
    strategy=None,
    low_memory: bool | None = None,
    check_dataset: bool = True,
    use_mlflow: bool = False,
    out=None,
):
    """Train (or resume, or fine-tune with ``init_from``) ``config`` on ``split`` of ``dataset``
    into ``workdir``; returns a :class:`training.trainer.TrainResult` (``bundle``: the model).

    ``config``: a Config, a preset name (``synthetic/tiny``) or a YAML file, with ``overrides``
    (``["train.steps=30"]`` or ``{"train.steps": 30}``) applied. ``eval_split``: PQ / mIoU every
    ``train.eval_every`` steps on the first ``eval_images`` images of that split (0: all).
    ``low_memory``: None chooses from the device, the crop and the free memory. Errors the user can
    fix are :class:`errors.UserError` (a broken data set, a workdir in use, a full disk).
    """
    from ..glibc_malloc import tune_malloc

    tune_malloc()  # before TensorFlow starts its threads: keeps CPU peak RSS near the live tensors
    out = out or sys.stdout
    config = _as_config(config, overrides)
    from .run_files import announce_phase

    if check_dataset:
        # A broken data set fails now, with check-dataset's messages, not as a TF error mid-run.
        from ..datasets.checks import require_valid_dataset

        announce_phase("checking the data set", out)
        for name in dict.fromkeys(s for s in (split, eval_split) if s):
            require_valid_dataset(dataset, name)

    # MultiWorkerMirroredStrategy must exist before any other TensorFlow op runs.
    import tensorflow as tf

    from .distribution import make_strategy
    from .trainer import train as fit

    memory = _memory_mode(config, low_memory, tf, out)
    if strategy is None or isinstance(strategy, str):
        strategy = make_strategy(strategy or config.train.strategy)

    from ..datasets.readers import open_dataset

    reader = open_dataset(dataset, split)
    spec = reader.spec
    if config.dataset.name != spec.name:
        print(
            f"note: config dataset '{config.dataset.name}', data set classes '{spec.name}': using "
            f"the data set's {spec.num_classes} classes",
            file=sys.stderr,
        )
    evaluate_fn = None
    if eval_split:
        from .periodic_eval import make_periodic_evaluator

        eval_reader = open_dataset(dataset, eval_split, spec)
        evaluate_fn = make_periodic_evaluator(
            eval_reader, eval_split, config, spec, int(eval_images) or None
        )
    return fit(
        config,
        workdir,
        dataset_fn=_dataset_fn(reader, split, config, spec, memory.low_memory),
        spec=spec,
        strategy=strategy,
        init_from=init_from,
        evaluate_fn=evaluate_fn,
        preview_images=_preview_images(reader, config, spec),
        use_mlflow=use_mlflow,
        out=out,
        domain=_domain(dataset, split, spec, len(reader), init_from),
    )


def _as_config(config, overrides) -> Config:
    from ..config import load_config

    if isinstance(config, Config):
        return config.replace(overrides) if overrides else config
    return load_config(config, overrides)


def _memory_mode(config: Config, requested: bool | None, tf, out):
    from .memory import available_memory_bytes, choose_low_memory, use_system_allocator

    tc = config.train
    memory = choose_low_memory(
        config,
        micro_batch=max(tc.batch_size // max(tc.gradient_accumulation, 1), 1),
        on_gpu=bool(tf.config.list_physical_devices("GPU")),
        available_bytes=available_memory_bytes(),
        requested=requested,
    )
    print(memory.describe(), file=out, flush=True)
    if memory.low_memory:
        try:  # possible only until TensorFlow starts its runtime (a fresh process, as pdl train)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            print("note: TensorFlow runs already; its thread pools stay as they are", file=out)
        use_system_allocator()  # before the first tensor: read when the CPU allocator is made
    return memory


def _dataset_fn(reader, split: str, config: Config, spec, low_memory: bool):
    import tensorflow as tf

    from ..data.pipeline import make_dataset

    def dataset_fn(batch_size: int, seed: int):
        ds = make_dataset(
            reader, split, config, training=True, batch_size=batch_size, spec=spec, seed=seed
        )
        if low_memory:
            options = tf.data.Options()
            options.autotune.ram_budget = 256 * 2**20
            options.threading.private_threadpool_size = 1
            ds = ds.with_options(options)
        return ds

    return dataset_fn


def _domain(dataset, split: str, spec, images: int, init_from) -> str:
    """The bundle's one-line domain: the training images and their classes."""
    base = f"; fine-tuned from {Path(init_from).name}" if init_from else ""
    return (
        f"images like the {images} of '{Path(dataset).resolve().name}' split '{split}' "
        f"({spec.num_classes} classes of '{spec.name}'){base}"
    )


def _preview_images(reader, config: Config, spec):
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
