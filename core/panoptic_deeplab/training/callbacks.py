"""The Keras callbacks of a ``fit`` run, one job each, sharing one :class:`RunState`.

:class:`StepCounter` goes first: it turns micro-batches into optimizer steps (``accumulation``
micro-batches each) and stops the run when a loss is not finite. The others act on the steps it
counts, in the order ``train()`` lists them:

- :class:`ProgressLog`: a progress line, a metrics.csv row, TensorBoard scalars, MLflow.
- :class:`Checkpointer`: a resume checkpoint every ``checkpoint_every`` steps and at the last one.
- :class:`HistorySnapshots`: model-only snapshots spread over the run (``history/``).
- :class:`StatusFile`: ``status.json`` for the app and the jobs store (phase, step time, ETA).
- :class:`PredictionPreview`: TensorBoard prediction images at each checkpoint.
- :class:`PeriodicEval`: PQ / mIoU every ``eval_every`` steps.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from ..losses import LOSS_TERMS
from .tensorboard_events import images as tb_images
from .tensorboard_events import scalar as tb_scalar

LOG_KEYS = ("loss", *LOSS_TERMS)


@dataclass
class RunState:
    """What the callbacks of one run share: the step count and what happened at it."""

    step: int = 0
    total_steps: int = 0
    last_checkpoint_step: int = 0
    stepped: bool = False  # the batch just ended completed an optimizer step
    diverged: str | None = None  # message when the loss stopped being finite
    last_losses: dict = field(default_factory=dict)
    last_eval: dict = field(default_factory=dict)
    step_ends: deque = field(default_factory=lambda: deque(maxlen=21))  # perf_counter per step

    @property
    def is_last(self) -> bool:
        return self.step >= self.total_steps

    def step_seconds(self) -> float | None:
        """Mean time of the recent timed steps; the first step of a run (tracing) is not one."""
        if len(self.step_ends) < 2:
            return None
        return (self.step_ends[-1] - self.step_ends[0]) / (len(self.step_ends) - 1)

    def eta_seconds(self) -> float | None:
        seconds = self.step_seconds()
        return None if seconds is None else seconds * max(self.total_steps - self.step, 0)


def every(step: int, interval: int, state: RunState) -> bool:
    """True at multiples of ``interval`` and at the run's last step."""
    return step % max(int(interval), 1) == 0 or state.is_last


class StepCallback(keras.callbacks.Callback):
    """A callback that acts once per optimizer step (``on_step``), after :class:`StepCounter`."""

    def __init__(self, state: RunState):
        super().__init__()
        self.state = state

    def on_train_batch_end(self, batch, logs=None):
        if self.state.stepped and not self.state.diverged:
            self.on_step(self.state.step, logs or {})

    def on_step(self, step: int, logs: dict) -> None:
        raise NotImplementedError


class StepCounter(keras.callbacks.Callback):
    """Counts optimizer steps from the resumed step; a loss that is not finite stops the run at once
    (the weights of that step are then not saved)."""

    def __init__(self, state: RunState, accumulation: int, checkpoint_dir):
        super().__init__()
        self.state = state
        self.accumulation = max(int(accumulation), 1)
        self.checkpoint_dir = checkpoint_dir  # named in the message
        self._micro = 0

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        self.state.stepped = False
        values = {k: float(logs[k]) for k in LOG_KEYS if k in logs}
        if not all(math.isfinite(v) for v in values.values()):
            self.diverge(self.model, self.state, values, str(self.checkpoint_dir))
            return
        self._micro += 1
        if self._micro % self.accumulation:
            return
        self.state.step += 1
        self.state.stepped = True
        self.state.last_losses = values
        self.state.step_ends.append(time.perf_counter())

    @staticmethod
    def diverge(model, state: RunState, values: dict, where: str) -> None:
        step = state.step + 1
        terms = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        state.diverged = (
            f"training stopped: the loss is not finite at step {step} ({terms}). The last good "
            f"checkpoint is step {state.last_checkpoint_step} in {where}; it is kept. Lower "
            "train.base_learning_rate (or add train.warmup_steps), check the data set for broken "
            "images or labels, then run the same command again to resume from it."
        )
        state.stepped = False
        model.stop_training = True


class ProgressLog(StepCallback):
    """Every ``log_every`` steps: one progress line, a metrics.csv row, TensorBoard scalars and
    MLflow metrics, each the mean over the steps since the previous row."""

    def __init__(
        self,
        state,
        *,
        files,
        batch_size: int,
        accumulation: int,
        log_every: int,
        writer=None,
        mlflow=None,
        chief=True,
        out=None,
    ):
        super().__init__(state)
        self.files = files
        self.batch_size = int(batch_size)
        self.accumulation = max(int(accumulation), 1)
        self.log_every = max(int(log_every), 1)
        self.writer = writer
        self.mlflow = mlflow
        self.chief = chief
        self.out = out or sys.stdout
        self._sums = dict.fromkeys(LOG_KEYS, 0.0)
        self._count = 0
        self._window_start = self._run_start = None

    def on_train_begin(self, logs=None):
        self._run_start = self._window_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.state.diverged:
            return
        for key in LOG_KEYS:  # every micro-batch counts towards the mean
            if key in (logs or {}):
                self._sums[key] += float(logs[key])
        self._count += 1
        super().on_train_batch_end(batch, logs)

    def on_step(self, step, logs):
        if every(step, self.log_every, self.state):
            self._log(step, float(logs.get("learning_rate", float("nan"))))

    def _log(self, step: int, learning_rate: float) -> None:
        now = time.perf_counter()
        means = {k: v / max(self._count, 1) for k, v in self._sums.items()}
        seconds = max(now - self._window_start, 1e-9)
        images_per_sec = self._count * self.batch_size / self.accumulation / seconds
        elapsed = now - self._run_start
        self._sums = dict.fromkeys(LOG_KEYS, 0.0)
        self._count = 0
        self._window_start = now
        if not self.chief:
            return
        step_s = self.batch_size / max(images_per_sec, 1e-9)
        eta = self.state.eta_seconds()  # None until two steps are timed: the first one traces
        print(
            f"step {step}/{self.state.total_steps} loss {means['loss']:.4f} "
            f"(sem {means['semantic_loss']:.4f} center {means['center_loss']:.5f} "
            f"offset {means['offset_loss']:.3f}) lr {learning_rate:.3g} "
            f"{images_per_sec:.3g} img/s ({step_s:.3g} s/step) "
            f"eta {'after the next step' if eta is None else duration(eta)}",
            file=self.out,
            flush=True,
        )
        row = {"step": step, **means, "learning_rate": learning_rate}
        row.update(images_per_sec=images_per_sec, elapsed_s=elapsed)
        self.files.append_metrics(row)
        scalars = {**means, "learning_rate": learning_rate, "images_per_sec": images_per_sec}
        write_scalars(self.writer, step, scalars)
        if self.mlflow is not None:
            self.mlflow.log(step, scalars)


class Checkpointer(StepCallback):
    """Every ``checkpoint_every`` steps and at the last: a resume checkpoint, after checking that
    the weights are finite (a run whose weights went bad stops without saving them)."""

    def __init__(self, state, *, store, network, checkpoint_every: int, chief=True, out=None):
        super().__init__(state)
        self.store = store
        self.network = network
        self.checkpoint_every = max(int(checkpoint_every), 1)
        self.chief = chief
        self.out = out or sys.stdout

    def on_step(self, step, logs):
        if every(step, self.checkpoint_every, self.state):
            self.save(step)

    def save(self, step: int) -> bool:
        if not weights_finite(self.network):
            StepCounter.diverge(
                self.model, self.state, {"weights": float("nan")}, str(self.store.directory)
            )
            return False
        path = self.store.save(step)
        self.state.last_checkpoint_step = step  # registered now, whatever stops us below
        if self.chief:
            print(f"step {step}: checkpoint {path}", file=self.out, flush=True)
        return True


def history_interval(total_steps: int, keep: int) -> int:
    """Steps between history snapshots: ``keep`` of them spread evenly over the run, so a short
    fine-tune still has ``keep`` steps to look at (thinning keeps them spread on longer runs)."""
    return max(1, math.ceil(int(total_steps) / max(int(keep), 1)))


class HistorySnapshots(StepCallback):
    """A model-only snapshot every ``history_interval`` steps, at each checkpoint and at the last
    step (which holds the weights the final bundle is saved from); the history thins itself."""

    def __init__(self, state, *, history, interval: int, checkpoint_every: int):
        super().__init__(state)
        self.history = history
        self.interval = max(int(interval), 1)
        self.checkpoint_every = max(int(checkpoint_every), 1)

    def on_step(self, step, logs):
        due = every(step, self.interval, self.state) or step % self.checkpoint_every == 0
        if self.history.keep > 0 and due:
            self.history.save(step)


class StatusFile(StepCallback):
    """``status.json`` while training: at the first step (tracing is over: the phase becomes
    "training"), then every ``every_steps`` steps and after each checkpoint, with the mean time of
    the steps actually timed and the ETA from it."""

    def __init__(self, state, *, files, every_steps: int, checkpoint_every: int):
        super().__init__(state)
        self.files = files
        self.every_steps = max(int(every_steps), 1)
        self.checkpoint_every = max(int(checkpoint_every), 1)
        self._first = True

    def on_step(self, step, logs):
        due = every(step, self.every_steps, self.state) or every(
            step, self.checkpoint_every, self.state
        )
        if self._first or due:
            self._first = False
            self.write("running", phase="training")

    def write(self, state: str, message: str = "", **extra) -> None:
        seconds, eta = self.state.step_seconds(), self.state.eta_seconds()
        fields = {
            "last_checkpoint": self.state.last_checkpoint_step,
            "step_seconds": None if seconds is None else round(seconds, 4),
            "eta_s": None if eta is None else round(eta, 1),
            "eta": None if eta is None else duration(eta),
        }
        self.files.status(state, self.state.step, message=message, **{**fields, **extra})


class PredictionPreview(StepCallback):
    """TensorBoard prediction images at each checkpoint: ``preview(step) -> {name: images}``."""

    def __init__(self, state, *, preview: Callable[[int], dict], writer, checkpoint_every: int):
        super().__init__(state)
        self.preview = preview
        self.writer = writer
        self.checkpoint_every = max(int(checkpoint_every), 1)

    def on_step(self, step, logs):
        if every(step, self.checkpoint_every, self.state):
            images = self.preview(step)
            with self.writer.as_default(step=step):
                for name, batch in images.items():
                    tb_images(f"predictions/{name}", batch, step)
            self.writer.flush()


class PeriodicEval(StepCallback):
    """``evaluate(step) -> {pq, sq, rq, miou, ...}`` every ``eval_every`` steps and at the last;
    printed, written to metrics.csv (a row with only the eval columns), TensorBoard and MLflow."""

    def __init__(
        self, state, *, evaluate, eval_every: int, files, writer=None, mlflow=None, out=None
    ):
        super().__init__(state)
        self.evaluate = evaluate
        self.eval_every = int(eval_every)
        self.files = files
        self.writer = writer
        self.mlflow = mlflow
        self.out = out or sys.stdout

    def on_step(self, step, logs):
        if self.eval_every > 0 and every(step, self.eval_every, self.state):
            self._evaluate(step)

    def _evaluate(self, step: int) -> None:
        started = time.perf_counter()
        results = self.evaluate(step) or {}
        self.state.last_eval = {"step": step, **results}
        numbers = {k: v for k, v in results.items() if isinstance(v, (int, float))}
        shown = " ".join(f"{k} {v:.4f}" for k, v in numbers.items())
        took = time.perf_counter() - started
        print(f"step {step}: eval {shown} ({took:.1f}s)", file=self.out, flush=True)
        self.files.append_metrics(
            {"step": step, **{k: results.get(k) for k in ("pq", "sq", "rq", "miou")}}
        )
        numeric = {f"eval/{k}": float(v) for k, v in numbers.items()}
        write_scalars(self.writer, step, numeric)
        if self.mlflow is not None:
            self.mlflow.log(step, numeric)


def write_scalars(writer, step: int, scalars: dict) -> None:
    if writer is None:
        return
    with writer.as_default(step=step):
        for key, value in scalars.items():
            tb_scalar(key, value, step)
    writer.flush()


def weights_finite(network) -> bool:
    return all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in network.trainable_variables)


def log_interval(log_every: int, total_steps: int, points: int = 20) -> int:
    """Steps between log rows: ``log_every``, or less for a short run so that it still logs about
    ``points`` rows (a 60-step fine-tune logged every 20 steps draws three dots, not a curve)."""
    return max(1, min(int(log_every), int(total_steps) // points))


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
