"""``train()``: build, restore or initialise, fit, checkpoint, and write the model bundle.

Step numbers count optimizer updates. With ``train.gradient_accumulation = A`` each update averages
the gradients of A micro-batches of ``batch_size / A`` images (Keras' own optimizer accumulation),
so ``batch_size`` is always the effective batch.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import yaml

from ..bundle import CLASS_LAYER, WeightsMismatchError, is_bundle, load_weights_checked, save_bundle
from ..config import Config, save_config
from ..datasets.specs import DatasetSpec
from ..errors import CheckpointError, ConfigError, UserError
from ..losses import PanopticLoss
from ..safe_files import (
    RunLock,
    disk_full_as_user_error,
    disk_full_error,
    is_disk_full,
    remove_leftovers,
)
from .callbacks import (
    Checkpointer,
    HistorySnapshots,
    PeriodicEval,
    PredictionPreview,
    ProgressLog,
    RunState,
    StatusFile,
    StepCounter,
    history_interval,
    log_interval,
)
from .checkpoints import CheckpointStore, checkpoint_step, restore_model_weights
from .distribution import is_chief, make_strategy, task_info
from .history import SnapshotHistory, write_run_spec
from .run_files import MlflowLogger, RunFiles, announce_phase
from .schedule import schedule_from_config
from .step import PanopticTrainingModel

# dataset_fn(micro_batch_size, seed) -> tf.data.Dataset of (features, targets), repeating forever.
DatasetFn = Callable[[int, int], tf.data.Dataset]


class TrainingDivergedError(UserError):
    """The loss became NaN/inf; the message names the last good checkpoint."""


@dataclass
class TrainResult:
    workdir: Path
    step: int
    resumed_from: int | None
    bundle: Path | None
    wall_time_s: float
    metrics: dict = field(default_factory=dict)


def train(
    config: Config,
    workdir: str | Path,
    *,
    dataset_fn: DatasetFn,
    spec: DatasetSpec,
    strategy: str | tf.distribute.Strategy | None = None,
    init_from: str | Path | None = None,
    evaluate_fn: Callable[[keras.Model, int], dict] | None = None,
    preview_images: np.ndarray | None = None,
    use_mlflow: bool = False,
    out=None,
    domain: str | None = None,
) -> TrainResult:
    """Train ``config`` into ``workdir`` (steps, batch size, checkpointing from ``config.train``) on
    the batches of ``dataset_fn`` (the fit loop; :func:`panoptic_deeplab.train` builds those from a
    data set folder).

    A workdir that already holds checkpoints is resumed from the newest one. ``evaluate_fn(network,
    step)`` returns metrics such as {pq, sq, rq, miou} (every ``train.eval_every`` steps);
    ``preview_images`` (a few RGB images) are predicted at each checkpoint for TensorBoard.
    ``domain`` describes the training images in the bundle (model_card). One run at a time per
    workdir: a second gets ``LockedError`` naming the first.
    """
    out = out or sys.stdout
    tc = config.train
    if not isinstance(strategy, tf.distribute.Strategy):
        strategy = make_strategy(strategy or tc.strategy)
    accumulation = max(int(tc.gradient_accumulation), 1)
    micro_batch = _micro_batch(tc.batch_size, accumulation, strategy.num_replicas_in_sync)
    workdir = Path(workdir)
    chief = is_chief(strategy)
    workdir.mkdir(parents=True, exist_ok=True)
    # Only the chief writes the workdir's files, so only it holds the lock (workers may share it).
    lock = RunLock(workdir, "pdl train").acquire() if chief else None
    try:
        if chief:
            remove_leftovers(workdir)  # a bundle save or status write of a killed run
        with disk_full_as_user_error(workdir, "the training run's files"), _quick_graph_passes():
            return _train_locked(
                config,
                workdir,
                strategy,
                accumulation,
                micro_batch,
                chief,
                out,
                dataset_fn,
                spec,
                init_from,
                evaluate_fn,
                preview_images,
                use_mlflow,
                domain,
            )
    finally:
        if lock is not None:
            lock.release()


# Grappler passes that cost seconds when the training step's graph first runs and gained nothing
# measurable afterwards: first step 24.5 s against 27.0 s, later steps 0.90 against 0.99 s/step
# (medians of 4 interleaved `pdl train` runs from the demo model; docs/performance.md). The
# remapper's op fusions and the others stay on.
_SLOW_FIRST_RUN_PASSES = (
    "constant_folding",
    "arithmetic_optimization",
    "dependency_optimization",
    "loop_optimization",
    "layout_optimizer",
)


@contextlib.contextmanager
def _quick_graph_passes():
    """Those passes off while training, then the process's own settings back."""
    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options(dict.fromkeys(_SLOW_FIRST_RUN_PASSES, False))
    try:
        yield
    finally:
        restored = {name: before.get(name, True) for name in _SLOW_FIRST_RUN_PASSES}
        tf.config.optimizer.set_experimental_options(restored)


def _train_locked(
    config,
    workdir,
    strategy,
    accumulation,
    micro_batch,
    chief,
    out,
    dataset_fn,
    spec,
    init_from,
    evaluate_fn,
    preview_images,
    use_mlflow,
    domain,
) -> TrainResult:
    started = time.time()
    tc = config.train
    if chief:
        _check_workdir_config(config, workdir)
    files = RunFiles(workdir, tc.steps, enabled=chief)
    if chief:  # not in status.json yet: the run may still be refused
        announce_phase("building the model", out)

    with strategy.scope():
        network = _build_network(config, spec)
        optimizer = _make_optimizer(config, accumulation)
        trainer = PanopticTrainingModel(network, PanopticLoss(config.loss, spec.ignore_label))
        trainer.compile(optimizer=optimizer, jit_compile=bool(tc.xla))
        optimizer.build(network.trainable_variables)
    task_type, task_id = task_info(strategy)
    scratch = workdir / "worker_scratch"
    store = CheckpointStore(
        workdir / "checkpoints",
        network,
        optimizer,
        keep=tc.keep_checkpoints,
        writer=chief,
        scratch=scratch / f"{task_type}-{task_id}",
    )
    history = SnapshotHistory(
        workdir,
        network,
        tc.keep_history,
        writer=chief,
        scratch=scratch / f"history-{task_type}-{task_id}",
    )
    restored = store.restore_latest()
    start_step = checkpoint_step(restored) if restored else 0
    if restored:
        print(f"resumed from step {start_step} ({restored})", file=out, flush=True)
    elif init_from:
        print(f"initialised from {_init_weights(network, init_from)}", file=out, flush=True)
    if (
        chief
    ):  # only now: a checkpoint or --init-from that does not fit leaves the workdir as it was
        save_config(config, workdir / "config.yaml")
        write_run_spec(workdir, spec)

    files.start_metrics(start_step)
    files.status("starting", start_step, phase="preparing the input pipeline")
    if chief:
        announce_phase("preparing the input pipeline", out)
    mlflow = _maybe_mlflow(use_mlflow and chief, workdir, config, out)
    writer = tf.summary.create_file_writer(str(workdir / "tensorboard")) if chief else None
    state = RunState(step=start_step, total_steps=tc.steps, last_checkpoint_step=start_step)
    preview = None
    if preview_images is not None and writer is not None:
        preview = _preview_fn(network, spec, preview_images)
    evaluate = None
    if evaluate_fn is not None and chief:
        evaluate = lambda step: evaluate_fn(network, step)  # noqa: E731 - one line, read in place
    log_every = log_interval(tc.log_every, tc.steps)
    status = StatusFile(
        state, files=files, every_steps=log_every, checkpoint_every=tc.checkpoint_every
    )
    checkpointer = Checkpointer(
        state,
        store=store,
        network=network,
        checkpoint_every=tc.checkpoint_every,
        chief=chief,
        out=out,
    )
    callbacks = [
        StepCounter(state, accumulation, store.directory),
        ProgressLog(
            state,
            files=files,
            batch_size=tc.batch_size,
            accumulation=accumulation,
            log_every=log_every,
            writer=writer,
            mlflow=mlflow,
            chief=chief,
            out=out,
        ),
        checkpointer,
        HistorySnapshots(
            state,
            history=history,
            interval=history_interval(tc.steps, tc.keep_history),
            checkpoint_every=tc.checkpoint_every,
        ),
        status,
    ]
    if preview is not None:
        callbacks.append(
            PredictionPreview(
                state, preview=preview, writer=writer, checkpoint_every=tc.checkpoint_every
            )
        )
    if evaluate is not None:
        callbacks.append(
            PeriodicEval(
                state,
                evaluate=evaluate,
                eval_every=tc.eval_every,
                files=files,
                writer=writer,
                mlflow=mlflow,
                out=out,
            )
        )

    remaining = tc.steps - start_step
    try:
        if remaining > 0:
            dataset = dataset_fn(micro_batch, tc.seed + start_step)
            if task_type is not None:
                options = tf.data.Options()
                options.experimental_distribute.auto_shard_policy = (
                    tf.data.experimental.AutoShardPolicy.DATA
                )
                dataset = dataset.with_options(options)
            print(
                f"training {config.name}: steps {start_step}->{tc.steps}, batch {tc.batch_size}"
                f"{f' ({accumulation} x {micro_batch})' if accumulation > 1 else ''}, "
                f"{strategy.num_replicas_in_sync} replica(s), "
                f"{network.count_params():,} parameters",
                file=out,
                flush=True,
            )
            files.status("starting", start_step, phase="tracing the training step")
            if chief:
                announce_phase("tracing the training step", out)
            trainer.fit(
                dataset,
                epochs=1,
                steps_per_epoch=remaining * accumulation,
                verbose=0,
                shuffle=False,
                callbacks=callbacks,
            )
        else:
            print(
                f"already at step {start_step} of {tc.steps}; nothing to train",
                file=out,
                flush=True,
            )
    except (
        KeyboardInterrupt,
        SystemExit,
    ) as err:  # Ctrl-C; SIGTERM (docker stop, the app's Cancel)
        if task_type is None:  # a multi-worker save needs every worker, and they are stopping too
            _checkpoint_on_stop(checkpointer, optimizer, state, store.latest_step, files, out)
        last = _last_checkpoint(state, store, chief)
        how = "interrupted (Ctrl-C)" if isinstance(err, KeyboardInterrupt) else "stopped (SIGTERM)"
        resume = (
            f"the last checkpoint is step {last} in {store.directory}. Run the same command again "
            "to resume from it."
            if last
            else "no checkpoint was written yet, so running the same command again starts over."
        )
        message = f"{how} at step {state.step}; {resume}"
        status.write("stopped", message=message, last_checkpoint=last)
        print(message, file=sys.stderr, flush=True)
        if mlflow:
            mlflow.close("KILLED")
        raise
    except BaseException as err:
        _record_failure(
            err, workdir, status, (store, history), _last_checkpoint(state, store, chief)
        )
        if mlflow:
            mlflow.close("FAILED")
        raise

    if state.diverged:
        status.write("failed", message=state.diverged)
        if mlflow:
            mlflow.close("FAILED")
        raise TrainingDivergedError(state.diverged)

    wall = time.time() - started
    metrics = {
        "steps": state.step,
        "batch_size": tc.batch_size,
        "final_losses": state.last_losses,
        "eval": state.last_eval,
        "wall_time_s": round(wall, 1),
    }
    bundle = None
    if chief:
        try:
            bundle = save_bundle(
                workdir / "model",
                network,
                config,
                spec,
                metrics=metrics,
                steps=state.step,
                domain=domain,
            )
        except BaseException as err:
            _record_failure(err, workdir, status, (), state.last_checkpoint_step)
            raise
        status.write("finished", message="done", bundle=str(bundle))
        print(f"model bundle written to {bundle}", file=out, flush=True)
    if mlflow:
        mlflow.close()
    return TrainResult(workdir, state.step, start_step if restored else None, bundle, wall, metrics)


def _checkpoint_on_stop(
    checkpointer: Checkpointer, optimizer, state: RunState, saved_step: int, files, out
) -> None:
    """A stop (Ctrl-C, SIGTERM: the app's Cancel, ``docker stop``) saves the step it stopped at, so
    that Resume continues from there. The optimizer's update count is the step the weights are
    at: a signal is handled when TensorFlow's step returns, before the callbacks count that step,
    whose losses are then unknown (its metrics.csv row has the step only, so a resume's rows follow
    on)."""
    step = int(optimizer.iterations)
    if step <= max(state.last_checkpoint_step, saved_step) or state.diverged:
        return
    counted, state.step = state.step, step
    try:
        if checkpointer.save(step):
            for uncounted in range(counted + 1, step + 1):
                files.append_metrics({"step": uncounted})
            print(f"stopping: saved step {step} to resume from", file=out, flush=True)
    except Exception as err:  # noqa: BLE001 - the stop goes on; the message names the last checkpoint
        print(f"stopping: could not save step {step} ({err})", file=sys.stderr, flush=True)


def _record_failure(
    err: BaseException, workdir: Path, status: StatusFile, stores, last: int
) -> None:
    """status.json "failed" with the error. On a full disk the message says which folder and what to
    do, and the stores' half-written saves are removed first (which may free the space needed)."""
    message = f"{type(err).__name__}: {err}"
    if is_disk_full(err):
        for store in stores:
            store.remove_unfinished_saves()
        message = str(disk_full_error(workdir, "the training run's files"))
    with contextlib.suppress(OSError):  # the disk may still be full
        status.write("failed", message=message[:2000], last_checkpoint=last)


def _last_checkpoint(state: RunState, store: CheckpointStore, chief: bool) -> int:
    """The step a resume would start from. The checkpoint state file is the truth: a stop may land
    between a save and the callback's note of it."""
    return max(state.last_checkpoint_step, store.latest_step if chief else 0)


def _micro_batch(batch_size: int, accumulation: int, replicas: int) -> int:
    if batch_size % accumulation:
        raise ConfigError(
            f"train.batch_size {batch_size} is not divisible by train.gradient_accumulation "
            f"{accumulation}; batch_size is the effective batch, split into gradient_accumulation "
            "micro-batches."
        )
    micro = batch_size // accumulation
    if micro % replicas:
        raise ConfigError(
            f"micro-batch {micro} (train.batch_size / train.gradient_accumulation) cannot be split "
            f"over {replicas} replicas; make it a multiple of {replicas}."
        )
    return micro


def _build_network(config: Config, spec: DatasetSpec) -> keras.Model:
    from ..model.builder import build_model

    return build_model(config, num_classes=spec.num_classes)


def _make_optimizer(config: Config, accumulation: int) -> keras.optimizers.Optimizer:
    # Adam with Keras defaults (beta 0.9/0.999, epsilon 1e-7), no weight decay: deeplab2's trainer.
    optimizer = keras.optimizers.Adam(
        learning_rate=schedule_from_config(config.train),
        gradient_accumulation_steps=accumulation if accumulation > 1 else None,
    )
    if config.model.dtype_policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _check_workdir_config(config: Config, workdir: Path) -> None:
    """A workdir belongs to one model: resuming with another model section would fail to load."""
    path = workdir / "config.yaml"
    if path.is_file() and any((workdir / "checkpoints").glob("ckpt-*.index")):
        previous = (yaml.safe_load(path.read_text()) or {}).get("model") or {}
        differences = _differences(previous, config.to_dict()["model"], "model")
        if differences:
            raise CheckpointError(
                f"{path}: this workdir holds checkpoints of a different model config "
                f"({'; '.join(differences[:5])}). Use a new --workdir, or the config it was "
                "started with (the train section may change, the model section may not)."
            )


def _differences(old: dict, new: dict, prefix: str) -> list[str]:
    """``key: A in the workdir, B now`` for each differing (nested) key."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}.{key}")
        elif a != b:
            out.append(f"{prefix}.{key}: {a!r} in the workdir, {b!r} now")
    return out


def _init_weights(network: keras.Model, source: str | Path) -> str:
    """Fine-tuning start: a bundle, a ``.weights.h5`` file, or a TF checkpoint / workdir. Weights
    for another class count load all but the semantic head's last layer (a note says so); any other
    difference (backbone, widths) is a CheckpointError naming the file and the first layer that
    differs."""
    source = Path(source)
    weights = source / "model.weights.h5" if is_bundle(source) else source
    if str(weights).endswith(".weights.h5"):
        hint = "give weights of the same backbone and decoder widths as this config"
        try:
            load_weights_checked(network, weights, hint=hint)
        except WeightsMismatchError as err:
            if err.layers != [CLASS_LAYER]:
                raise  # another backbone or width: almost nothing would load
            load_weights_checked(network, weights, hint=hint, skip_mismatch=True)
            layer = network.get_layer(CLASS_LAYER)
            shapes = ", ".join(f"{w.name} {tuple(w.shape)}" for w in layer.weights)
            print(
                f"note: {weights}: trained for another number of classes; every layer but the last "
                "of the semantic head is loaded, that one starts fresh (re-initialised: "
                f"{CLASS_LAYER}: {shapes})",
                file=sys.stderr,
            )
        return str(weights)
    return restore_model_weights(network, source)


def _preview_fn(network: keras.Model, spec: DatasetSpec, images: np.ndarray):
    palette = np.zeros((256, 3), np.uint8)
    palette[: spec.num_classes] = np.asarray(spec.colors, np.uint8)
    images = np.asarray(images, np.float32)

    def preview(step: int) -> dict:
        outputs = network(images, training=False)
        semantic = np.argmax(np.asarray(outputs["semantic_logits"]), axis=-1)
        heat = np.clip(np.asarray(outputs["center_heatmap"]), 0.0, 1.0)
        return {
            "image": images.astype(np.uint8),
            "semantic": palette[semantic],
            "center_heatmap": heat,
        }

    return preview


def _maybe_mlflow(enabled: bool, workdir: Path, config: Config, out):
    if not enabled:
        return None
    try:
        return MlflowLogger(workdir, config.to_dict(), run_name=f"{config.name}:{workdir.name}")
    except ImportError:
        print(
            "MLflow is not installed; logging to metrics.csv and TensorBoard only",
            file=out,
            flush=True,
        )
        return None
