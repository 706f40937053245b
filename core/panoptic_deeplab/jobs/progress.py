"""How far a job is, read from what its run writes, without TensorFlow or pandas: ``status.json``
and ``metrics.csv`` (``pdl train``), and the log (``phase: ...`` lines, ``pdl evaluate``'s progress
bar). ``read_progress`` gives one reading; ``JobStore.progress`` keeps it forward only.

``status.json`` is read tolerantly: ``state``, ``step``, ``total_steps``, ``phase``, ``updated``
and ``seconds_per_step`` (timed on steps after the first) are each used when present and sane.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import re
import time
from pathlib import Path

from .records import CANCELLED, STAGE_RANK, Job, Progress

# What `pdl train` prints before each phase (training.run_files.announce_phase).
PHASE_PREFIX = "phase: "

# The trainer's words for its phases -> STAGES.
_PHASE_STAGES = {
    "checking the data set": "loading",
    "building the model": "loading",
    "loading the model": "loading",
    "preparing the input pipeline": "loading",
    "tracing the training step": "tracing",
    "finished": "done",
    "failed": "done",
    "stopped": "done",
}
_STAGE_WORDS = (  # first words of phases the table above does not know yet
    (("checking", "building", "loading", "preparing", "restoring", "reading"), "loading"),
    (("tracing", "compiling"), "tracing"),
    (("saving", "writing", "exporting"), "saving"),
)
# tqdm's bar, as `pdl evaluate` writes it: " 3/8 [00:04<00:07, ..."
_BAR = re.compile(r"(\d+)/(\d+) \[(?:(\d+):)?(\d+):(\d+)<")
_TAIL_BYTES = 16384


def stage_of(phase: str | None) -> str | None:
    """The stage of a run's phase words, or None when they say nothing known."""
    if not phase:
        return None
    words = phase.strip().lower()
    if words in STAGE_RANK:
        return words
    if words in _PHASE_STAGES:
        return _PHASE_STAGES[words]
    first = words.split()[0]
    return next((stage for starts, stage in _STAGE_WORDS if first in starts), None)


def read_status(workdir: str | Path) -> dict:
    """``status.json`` of a run, {} when absent or unreadable (being replaced, or never written).
    As written: whether the run's process is alive is the job's backend's to say."""
    try:
        data = json.loads((Path(workdir) / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_progress(job: Job, attempt_log: str, status: dict | None = None) -> Progress:
    """One reading of a job's progress from its status (train), its log of this attempt and its
    metrics; ``stage`` is "done" once the job has ended."""
    status = read_status(job.workdir) if status is None else status
    progress = _from_status(status)
    stale = (
        progress.updated is not None
        and job.started_at is not None
        and progress.updated < job.started_at - 1
    )  # written by an earlier start of this job
    if progress.state is None or (stale and job.is_active):
        progress = _from_log(job, attempt_log, progress.total_steps)
    elif progress.stage in ("training", "evaluating") and progress.seconds_per_step is None:
        progress.seconds_per_step = _seconds_per_step(Path(job.workdir) / "metrics.csv")
    if progress.seconds_per_step is not None and progress.total_steps:
        progress.eta_s = progress.seconds_per_step * max(0, progress.total_steps - progress.step)
    if not job.is_active:
        progress.stage = "done"
        progress.eta_s = None
        if progress.state in ("starting", "running"):  # the run is gone without saying so
            progress.state = "stopped" if job.state == CANCELLED else "failed"
    return progress


def _from_status(data: dict) -> Progress:
    try:
        step = int(data.get("step") or 0)
        total = data.get("total_steps")
        total = int(total) if total else None
    except (TypeError, ValueError):
        step, total = 0, None
    try:
        updated = float(calendar.timegm(time.strptime(str(data["updated"]), "%Y-%m-%dT%H:%M:%SZ")))
    except (KeyError, ValueError):
        updated = None
    state = data.get("state") if isinstance(data.get("state"), str) else None
    phase = data.get("phase") if isinstance(data.get("phase"), str) else None
    stage = stage_of(phase)
    if state == "running" and (stage is None or STAGE_RANK[stage] < STAGE_RANK["training"]):
        stage = "training" if step > 0 else stage or "tracing"
    elif state == "finished":
        stage = "saving"  # the bundle is written and the process ends
    elif state == "starting" and stage is None:
        stage = "loading"
    seconds = data.get("seconds_per_step")
    seconds = float(seconds) if isinstance(seconds, (int, float)) and seconds > 0 else None
    return Progress(
        state=state,
        step=step,
        total_steps=total,
        phase=phase,
        updated=updated,
        stage=stage,
        seconds_per_step=seconds,
    )


def _from_log(job: Job, log: str, total: int | None) -> Progress:
    """Before a (re)started run writes status.json, or for jobs that write none: the last
    ``phase: ...`` line, or the last progress bar of ``pdl evaluate``."""
    phases = [
        line[len(PHASE_PREFIX) :].strip()
        for line in log.splitlines()
        if line.startswith(PHASE_PREFIX)
    ]
    bars = [
        (int(m[1]), int(m[2]), int(m[3] or 0) * 3600 + int(m[4]) * 60 + int(m[5]))
        for m in _BAR.finditer(log)
    ]
    if job.kind == "evaluate" and bars:
        done, total, _ = bars[-1]
        timed = [b for b in bars if b[0] >= 1]  # the first image traces the model: not timed
        seconds = (
            (timed[-1][2] - timed[0][2]) / (timed[-1][0] - timed[0][0])
            if len(timed) > 1 and timed[-1][0] > timed[0][0]
            else None
        )
        finishing = done >= total
        return Progress(
            state=None,
            step=done,
            total_steps=total,
            phase="computing the metrics and writing the results" if finishing else "evaluating",
            stage="saving" if finishing else "evaluating",
            unit="images",
            seconds_per_step=seconds,
        )
    phase = phases[-1] if phases else None
    return Progress(
        state="starting" if phases else None,
        step=0,
        total_steps=total,
        phase=phase,
        stage=(stage_of(phase) or "loading") if phases else "starting",
        unit="images" if job.kind == "evaluate" else "steps",
    )


def _seconds_per_step(metrics: Path) -> float | None:
    """Seconds per step from ``metrics.csv``'s ``elapsed_s`` over the rows of the latest run after
    its first logged one (whose time includes tracing); None until two rows are there."""
    try:
        with open(metrics, "rb") as f:
            header = f.readline().decode("utf-8", errors="replace")
            size = f.seek(0, 2)
            f.seek(max(len(header), size - _TAIL_BYTES))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = tail.splitlines()
    if size - _TAIL_BYTES > len(header):
        lines = lines[1:]  # the first line of the tail may be cut
    timed = []
    for row in csv.DictReader(io.StringIO("\n".join([header.strip(), *lines]))):
        try:
            step, elapsed = int(float(row["step"])), float(row["elapsed_s"])
        except (KeyError, TypeError, ValueError):
            continue  # an evaluation row, or a row being written
        if timed and (step <= timed[-1][0] or elapsed < timed[-1][1]):
            timed = []  # a resumed run starts its clock again
        timed.append((step, elapsed))
    if len(timed) < 2:
        return None
    (s0, e0), (s1, e1) = timed[0], timed[-1]
    return (e1 - e0) / (s1 - s0)
