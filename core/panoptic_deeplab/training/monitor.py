"""The callback that watches a ``fit`` run: NaN stop, checkpoints, progress lines, metrics.csv,
TensorBoard scalars and prediction images, periodic evaluation."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from ..losses import LOSS_TERMS
from .tensorboard_events import images as tb_images
from .tensorboard_events import scalar as tb_scalar

LOG_KEYS = ("loss", *LOSS_TERMS)


@dataclass
class MonitorState:
    step: int = 0
    last_checkpoint_step: int = 0
    diverged: str | None = None  # message when the loss stopped being finite
    last_losses: dict = field(default_factory=dict)
    last_eval: dict = field(default_factory=dict)


class TrainingMonitor(keras.callbacks.Callback):
    """Counts optimizer steps (``accumulation`` micro-batches each) from ``start_step``.

    Every micro-batch: stop at once if a loss term is not finite (the weights are then not saved).
    Every ``log_every`` steps: one progress line, a metrics.csv row, TensorBoard scalars.
    Every ``checkpoint_every`` steps and at the last step: a checkpoint (and prediction images).
    Every ``history_every`` steps as well: a history snapshot, so that a run shorter than
    ``keep_history`` checkpoint intervals still keeps its snapshots spread over the run.
    Every ``eval_every`` steps: ``evaluate(step) -> {pq, sq, rq, miou, ...}``.
    """

    def __init__(
        self,
        *,
        network,
        store,
        files,
        history=None,
        total_steps: int,
        start_step: int,
        batch_size: int,
        accumulation: int = 1,
        log_every: int = 20,
        checkpoint_every: int = 1000,
        eval_every: int = 0,
        evaluate: Callable[[int], dict] | None = None,
        preview: Callable[[int], dict] | None = None,
        summary_writer=None,
        mlflow=None,
        chief: bool = True,
        out=None,
    ):
        super().__init__()
        self.network = network
        self.store = store
        self.history = history
        self.files = files
        self.total_steps = int(total_steps)
        self.batch_size = int(batch_size)
        self.accumulation = max(int(accumulation), 1)
        self.log_every = max(int(log_every), 1)
        self.checkpoint_every = max(int(checkpoint_every), 1)
        keep = history.keep if history is not None else 0
        self.history_every = (
            min(self.checkpoint_every, max(1, math.ceil(self.total_steps / keep)))
            if keep > 0
            else self.checkpoint_every
        )
        self.eval_every = int(eval_every)
        self.evaluate = evaluate
        self.preview = preview
        self.writer = summary_writer
        self.mlflow = mlflow
        self.chief = chief
        self.out = out or sys.stdout  # looked up per run, not bound at import
        self.state = MonitorState(step=int(start_step), last_checkpoint_step=int(start_step))
        self._micro = 0
        self._first_step = True
        self._window_sums = {k: 0.0 for k in LOG_KEYS}
        self._window_count = 0
        self._window_start = None
        self._run_start = None

    # -- keras hooks ------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._run_start = self._window_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        values = {k: float(logs[k]) for k in LOG_KEYS if k in logs}
        if not all(math.isfinite(v) for v in values.values()):
            self._diverge(values)
            return
        for k, v in values.items():
            self._window_sums[k] += v
        self._window_count += 1
        self._micro += 1
        if self._micro % self.accumulation:
            return
        self.state.step += 1
        step = self.state.step
        self.state.last_losses = values
        last = step >= self.total_steps
        if self._first_step:  # tracing is over: say so at once, not at the first logged step
            self._first_step = False
            self.files.status(
                "running", step, phase="training", last_checkpoint=self.state.last_checkpoint_step
            )
        if step % self.log_every == 0 or last:
            self._log(step, float(logs.get("learning_rate", float("nan"))))
        if step % self.checkpoint_every == 0 or last:
            if not self._save(step):
                return
        elif self.history is not None and step % self.history_every == 0:
            self.history.save(step)
        if (
            self.evaluate is not None
            and self.eval_every > 0
            and (step % self.eval_every == 0 or last)
            and self.chief
        ):
            self._evaluate(step)

    # -- pieces -----------------------------------------------------------------------------
    def _diverge(self, values: dict) -> None:
        step = self.state.step + 1
        terms = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        self.state.diverged = (
            f"training stopped: the loss is not finite at step {step} ({terms}). The last good "
            f"checkpoint is step {self.state.last_checkpoint_step} in {self.store.directory}; it "
            "is kept. Lower "
            "train.base_learning_rate (or add train.warmup_steps), check the data set for broken "
            "images or labels, then run the same command again to resume from it."
        )
        self.model.stop_training = True

    def _save(self, step: int) -> bool:
        finite = all(
            bool(tf.reduce_all(tf.math.is_finite(v))) for v in self.network.trainable_variables
        )
        if not finite:
            self._diverge({"weights": float("nan")})
            return False
        path = self.store.save(step)
        self.state.last_checkpoint_step = step  # registered now, whatever stops us below
        if self.history is not None:
            self.history.save(step)
        if self.chief:
            print(f"step {step}: checkpoint {path}", file=self.out, flush=True)
            self.files.status("running", step, last_checkpoint=step)
            if self.preview is not None and self.writer is not None:
                self._write_images(step)
        return True

    def _log(self, step: int, learning_rate: float) -> None:
        now = time.perf_counter()
        count = max(self._window_count, 1)
        means = {k: v / count for k, v in self._window_sums.items()}
        images_per_sec = (
            self._window_count
            * self.batch_size
            / self.accumulation
            / max(now - self._window_start, 1e-9)
        )
        elapsed = now - self._run_start
        self._window_sums = {k: 0.0 for k in LOG_KEYS}
        self._window_count = 0
        self._window_start = now
        if not self.chief:
            return
        remaining = (self.total_steps - step) * self.batch_size / max(images_per_sec, 1e-9)
        print(
            f"step {step}/{self.total_steps} loss {means['loss']:.4f} "
            f"(sem {means['semantic_loss']:.4f} center {means['center_loss']:.5f} "
            f"offset {means['offset_loss']:.3f}) lr {learning_rate:.3g} {images_per_sec:.3g} img/s "
            f"({self.batch_size / max(images_per_sec, 1e-9):.3g} s/step) "
            f"eta {_duration(remaining)}",
            file=self.out,
            flush=True,
        )
        row = {
            "step": step,
            **means,
            "learning_rate": learning_rate,
            "images_per_sec": images_per_sec,
            "elapsed_s": elapsed,
        }
        self.files.append_metrics(row)
        self.files.status("running", step, last_checkpoint=self.state.last_checkpoint_step)
        scalars = {**means, "learning_rate": learning_rate, "images_per_sec": images_per_sec}
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for key, value in scalars.items():
                    tb_scalar(key, value, step)
            self.writer.flush()
        if self.mlflow is not None:
            self.mlflow.log(step, scalars)

    def _evaluate(self, step: int) -> None:
        started = time.perf_counter()
        results = self.evaluate(step) or {}
        self.state.last_eval = {"step": step, **results}
        shown = " ".join(f"{k} {v:.4f}" for k, v in results.items() if isinstance(v, (int, float)))
        print(
            f"step {step}: eval {shown} ({time.perf_counter() - started:.1f}s)",
            file=self.out,
            flush=True,
        )
        self.files.append_metrics(
            {"step": step, **{k: results.get(k) for k in ("pq", "sq", "rq", "miou")}}
        )
        numeric = {f"eval/{k}": float(v) for k, v in results.items() if isinstance(v, (int, float))}
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for key, value in numeric.items():
                    tb_scalar(key, value, step)
            self.writer.flush()
        if self.mlflow is not None:
            self.mlflow.log(step, numeric)

    def _write_images(self, step: int) -> None:
        images = self.preview(step)
        with self.writer.as_default(step=step):
            for name, batch in images.items():
                tb_images(f"predictions/{name}", batch, step)
        self.writer.flush()


def log_interval(log_every: int, total_steps: int, points: int = 20) -> int:
    """Steps between log rows: ``log_every``, or less for a short run so that it still logs about
    ``points`` rows (a 60-step fine-tune logged every 20 steps draws three dots, not a curve)."""
    return max(1, min(int(log_every), int(total_steps) // points))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
