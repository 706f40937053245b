"""Files a training run writes for people and for the app: ``status.json``, ``metrics.csv``,
TensorBoard event files, and optionally MLflow. Only the chief worker writes them."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

from ..safe_files import LOCK_NAME, lock_holder, pid_alive, temp_path, write_json_atomic

METRIC_COLUMNS = (
    "step",
    "loss",
    "semantic_loss",
    "center_loss",
    "offset_loss",
    "learning_rate",
    "images_per_sec",
    "elapsed_s",
    "pq",
    "sq",
    "rq",
    "miou",
)


# What a run does before its first step, in order; the app shows it. Each is printed as a
# "phase: ..." line; the last two also go to status.json ("phase"), which is only written once the
# run is sure to start (a refused run leaves the workdir as it was).
PHASES = (
    "checking the data set",
    "building the model",
    "preparing the input pipeline",
    "tracing the training step",
)
PHASE_PREFIX = "phase: "


def announce_phase(phase: str, out=None) -> None:
    import sys

    print(f"{PHASE_PREFIX}{phase}", file=out or sys.stdout, flush=True)


class RunFiles:
    """``status.json``: {state: starting|running|finished|failed|stopped, step, total_steps, phase,
    message, ...}, replaced
    atomically. ``metrics.csv``: one row per logged step (eval columns empty) and one per evaluation
    (loss columns empty), flushed at once so the app can read it while training runs."""

    def __init__(self, workdir: str | Path, total_steps: int, enabled: bool = True):
        self.workdir = Path(workdir)
        self.total_steps = int(total_steps)
        self.enabled = enabled
        self.status_path = self.workdir / "status.json"
        self.metrics_path = self.workdir / "metrics.csv"
        self.started = time.time()

    def status(
        self, state: str, step: int, message: str = "", phase: str | None = None, **extra
    ) -> None:
        """``phase`` says what a run does before its first step (PHASES), then "training"; it is
        kept from the previous call when not given."""
        if not self.enabled:
            return
        if state not in ("starting", "running"):
            phase = state  # finished, failed, stopped
        self.phase = phase or getattr(self, "phase", None) or "training"
        write_json_atomic(
            self.status_path,
            {
                "state": state,
                "step": int(step),
                "total_steps": self.total_steps,
                "message": message,
                "phase": self.phase,
                "pid": os.getpid(),
                "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **extra,
            },
        )

    def start_metrics(self, resumed_step: int) -> None:
        """Create the CSV, or on resume drop the rows past the checkpoint we resumed from (those
        steps are trained again)."""
        if not self.enabled:
            return
        rows = []
        if self.metrics_path.is_file() and resumed_step > 0:
            with self.metrics_path.open(newline="") as f:
                rows = [
                    r
                    for r in csv.DictReader(f)
                    if r.get("step") and int(float(r["step"])) <= resumed_step
                ]
        # Through a temporary file: a kill at this moment must not lose the rows already logged.
        tmp = temp_path(self.metrics_path)
        try:
            with tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
            os.replace(tmp, self.metrics_path)
        finally:
            tmp.unlink(missing_ok=True)

    def append_metrics(self, row: dict) -> None:
        if not self.enabled:
            return
        with self.metrics_path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=METRIC_COLUMNS, extrasaction="ignore").writerow(
                {k: _fmt(v) for k, v in row.items()}
            )


def read_status(workdir: str | Path) -> dict | None:
    """``status.json`` of a run as its reader should show it: a run that says "starting" or
    "running" but whose process is gone (killed: SIGKILL, a crash, the machine restarted) is shown
    as "stopped", with a message saying so. None when there is no readable status file."""
    workdir = Path(workdir)
    try:
        data = json.loads((workdir / "status.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("state") in ("starting", "running") and not _run_alive(workdir, data):
        last = data.get("last_checkpoint") or 0
        resume = (
            f"its last checkpoint is step {last}: run the same command again to resume from it"
            if last
            else "it wrote no checkpoint: running the same command again starts over"
        )
        data.update(
            state="stopped",
            phase="stopped",
            message=f"the training process (pid {data.get('pid', '?')}) ended without finishing "
            f"(killed, or the machine restarted) at step {data.get('step', 0)}; {resume}.",
            eta=None,
            eta_s=None,
        )
    return data


def _run_alive(workdir: Path, data: dict) -> bool:
    """The workdir's lock says whether its run is alive (the operating system drops it with the
    process); a run of a version without the lock is judged by its pid."""
    holder = lock_holder(workdir)
    if holder is not None:
        return True
    if (workdir / LOCK_NAME).exists():
        return False
    return pid_alive(int(data.get("pid") or 0))


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


class MlflowLogger:
    """Logs params and metrics to MLflow when it is installed (``--mlflow``); the default store is
    ``sqlite:///WORKDIR/mlflow.db`` unless ``MLFLOW_TRACKING_URI`` says otherwise."""

    def __init__(self, workdir: Path, config_dict: dict, run_name: str):
        import mlflow  # optional dependency

        self.mlflow = mlflow
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(f"sqlite:///{Path(workdir).resolve() / 'mlflow.db'}")
        mlflow.set_experiment("panoptic-deeplab")
        self.run = mlflow.start_run(run_name=run_name)
        flat = {}
        for section, values in config_dict.items():
            if isinstance(values, dict):
                for key, value in values.items():
                    flat[f"{section}.{key}"] = str(value)[:250]
        mlflow.log_params(flat)

    def log(self, step: int, metrics: dict) -> None:
        self.mlflow.log_metrics(
            {k: float(v) for k, v in metrics.items() if v is not None}, step=int(step)
        )

    def close(self, status: str = "FINISHED") -> None:
        self.mlflow.end_run(status=status)
