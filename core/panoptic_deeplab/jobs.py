"""Background jobs: records in SQLite and a launcher for ``pdl`` commands, used by the app and the CLI.

Each job is its own OS process in its own session (so a crash never takes the app down, and cancel
can signal the whole process group), with stdout and stderr going to a log file. Only ``pdl``
sub-commands on an allow-list, with allow-listed options and checked values, are launched, always as
an argument list, never through a shell.

The process runs ``python -m panoptic_deeplab.jobs --exit-file F -- <pdl argv>``: the same ``pdl``
entry point, wrapped only so that the exit status is written to ``F`` and survives an app restart.
Records live in SQLite, so a restarted app finds its jobs again; a job recorded as running whose
process is gone (or whose pid now belongs to another process) is shown as failed.

When a training job succeeds, its model bundle (``<workdir>/model``) is registered in the ``models``
table so the app can inspect it and compare it with its base.

A job's ``backend`` says where it runs: ``local`` (this machine, as above, the default) or ``slurm``
(a batch job on a Slurm cluster, see ``jobs_slurm``); refresh, cancel and resume go to its backend.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .sqlite_store import SqliteStore

# States a job can be in. "running" is only ever a claim checked against the live process.
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED)
LOCAL, SLURM = "local", "slurm"  # backends

# Characters that mean something to a shell. Jobs never go through a shell, but a value carrying them
# is almost certainly an injection attempt or a paste accident, so it is refused outright.
_SHELL_META = re.compile(r"[;&|`$<>\n\r\x00\\]|\$\(")
_OVERRIDE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def default_root() -> Path:
    """Where the app and ``pdl jobs`` keep job records: the work directory (``settings.workdir``)."""
    from .settings import workdir

    return workdir()


class JobError(UserError):
    """A job cannot be launched, found or changed as asked."""


# ---------------------------------------------------------------------------------------------
# Allow-list: sub-command -> option -> value kind. "flag" takes no value; kinds ending in "*" repeat;
# kinds ending in "+" take one or more values.
# Read from each command's own argparse definition, so an option is allowed as soon as its command
# has it and never after it is gone.

_INT, _FLOAT, _PATH, _NAME, _OVERRIDE, _FLAG = "int", "float", "path", "name", "override", "flag"
_NAMES = "names"  # comma-separated names, '+' allowed inside one (pdl evaluate --oracle semantic+center,all)

JOB_COMMANDS = ("train", "evaluate", "make-dataset", "check-dataset")  # what a job may run


class _RecordingParser(argparse.ArgumentParser):
    """Records every argument a command's ``configure_parser`` adds, with its keyword arguments
    (only public argparse API: ``add_argument`` and ``add_argument_group``)."""

    def __init__(self):
        self.recorded: list[tuple[tuple, dict]] | None = None  # None while argparse builds its own groups
        super().__init__(add_help=False)
        self.recorded = []

    def add_argument(self, *names, **kwargs):
        self.recorded.append((names, kwargs))
        return super().add_argument(*names, **kwargs)

    def add_argument_group(self, *args, **kwargs):
        if self.recorded is None:
            return super().add_argument_group(*args, **kwargs)
        return self  # options of a group are options of the command

    def add_mutually_exclusive_group(self, **kwargs):
        return self


def _value_kind(names: tuple, kwargs: dict) -> str:
    action = kwargs.get("action")
    if action in ("store_true", "store_false", "count") or action is argparse.BooleanOptionalAction:
        return _FLAG
    if kwargs.get("metavar") == "KEY=VALUE":
        kind = _OVERRIDE
    elif kwargs.get("metavar") == "LIST":
        kind = _NAMES
    elif kwargs.get("type") is int:
        kind = _INT
    elif kwargs.get("type") is float:
        kind = _FLOAT
    elif kwargs.get("choices") is not None or kwargs.get("dest", names[-1]).lstrip("-").replace("-", "_").endswith("split"):
        kind = _NAME  # a choice, a split name
    else:
        kind = _PATH
    if kwargs.get("nargs") in ("+", "*"):
        kind += "+"
    return kind + "*" if action == "append" else kind


def _command_arguments(command: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """``(options, positionals)`` of ``pdl command``: each option string with its value kind, and the
    kinds of its positional arguments in order."""
    import importlib

    from .cli import COMMANDS

    parser = _RecordingParser()
    importlib.import_module(COMMANDS[command][0]).configure_parser(parser)
    options: dict[str, str] = {}
    positionals: list[str] = []
    for names, kwargs in parser.recorded:
        kind = _value_kind(names, kwargs)
        if names[0].startswith("-"):
            if kwargs.get("action") is argparse.BooleanOptionalAction:  # --x also gives --no-x
                names = (*names, *(f"--no-{n[2:]}" for n in names if n.startswith("--")))
            options.update({name: kind for name in names})
        else:
            positionals.append(kind)
    return options, tuple(positionals)


ALLOWED_COMMANDS: dict[str, dict[str, str]] = {}
ALLOWED_POSITIONALS: dict[str, tuple[str, ...]] = {}
for _command in JOB_COMMANDS:
    ALLOWED_COMMANDS[_command], ALLOWED_POSITIONALS[_command] = _command_arguments(_command)
del _command


def validate_command(argv: list[str]) -> list[str]:
    """Check a ``pdl`` argument list against the allow-list; return it unchanged or raise JobError.

    ``argv`` starts with the sub-command, e.g. ``["train", "--config", "synthetic/tiny", ...]``.
    """
    if not isinstance(argv, (list, tuple)) or not argv or not all(isinstance(a, str) for a in argv):
        raise JobError("a job command must be a non-empty list of strings, e.g. ['train', '--config', ...]")
    command, rest = argv[0], list(argv[1:])
    if command not in ALLOWED_COMMANDS:
        raise JobError(f"'{command}' cannot run as a job; allowed: {', '.join(sorted(ALLOWED_COMMANDS))}")
    options = ALLOWED_COMMANDS[command]
    positionals = list(ALLOWED_POSITIONALS.get(command, ()))
    seen: set[str] = set()
    i = 0
    while i < len(rest):
        token = rest[i]
        _check_value_text(token, where=f"pdl {command}")
        if token.startswith("-"):
            name, eq, inline = token.partition("=")
            if name not in options:
                raise JobError(
                    f"option '{name}' is not allowed for 'pdl {command}' jobs; allowed: {', '.join(options)}"
                )
            kind = options[name]
            repeat = kind.endswith("*")
            kind = kind.rstrip("*")
            several = kind.endswith("+")
            kind = kind.rstrip("+")
            if name in seen and not repeat:
                raise JobError(f"option '{name}' given twice for 'pdl {command}'")
            seen.add(name)
            if kind == _FLAG:
                if eq:
                    raise JobError(f"option '{name}' takes no value")
                i += 1
                continue
            if eq:
                value, i = inline, i + 1
            else:
                if i + 1 >= len(rest):
                    raise JobError(f"option '{name}' needs a value")
                value, i = rest[i + 1], i + 2
            _check_value(kind, value, name)
            while several and i < len(rest) and not rest[i].startswith("--"):  # e.g. --scales 0.75 1 1.25
                _check_value(kind, rest[i], name)
                i += 1
        else:
            if not positionals:
                raise JobError(f"unexpected argument '{token}' for 'pdl {command}'")
            _check_value(positionals.pop(0), token, "argument")
            i += 1
    return list(argv)


def _check_value_text(value: str, where: str) -> None:
    if _SHELL_META.search(value):
        raise JobError(f"{where}: '{value}' contains shell metacharacters (; & | ` $ < > \\ or a newline)")


def _check_value(kind: str, value: str, name: str) -> None:
    _check_value_text(value, where=name)
    if value.startswith("-") and kind not in (_INT, _FLOAT):
        raise JobError(f"{name}: value '{value}' must not start with '-'")
    if kind == _INT:
        if not re.fullmatch(r"-?\d+", value) or int(value) < 0:
            raise JobError(f"{name}: '{value}' is not a non-negative integer")
    elif kind == _FLOAT:
        try:
            float(value)
        except ValueError:
            raise JobError(f"{name}: '{value}' is not a number") from None
    elif kind == _NAME:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise JobError(f"{name}: '{value}' must be letters, digits, '_', '.' or '-'")
    elif kind == _NAMES:
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+(,[A-Za-z0-9_.+-]+)*", value):
            raise JobError(f"{name}: '{value}' must be names separated by commas (letters, digits, '_', '.', '+', '-')")
    elif kind == _PATH:
        if not value.strip():
            raise JobError(f"{name}: empty path")
    elif kind == _OVERRIDE:
        key, eq, _ = value.partition("=")
        if not eq or not _OVERRIDE_KEY.match(key.strip()):
            raise JobError(f"{name}: '{value}' must look like section.key=value, e.g. train.batch_size=2")


def train_command(
    config: str,
    dataset: str | os.PathLike,
    workdir: str | os.PathLike,
    steps: int | None = None,
    init_from: str | os.PathLike | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> list[str]:
    """The ``pdl train`` argument list for a (fine-tuning) job, validated.

    The arguments are checked first, then the config and its overrides are loaded so that a typo in
    a key is reported before any process starts, with the config module's own message.
    """
    from .config import load_config

    argv = ["train", "--config", str(config), "--dataset", str(dataset), "--workdir", str(workdir)]
    if steps is not None:
        argv += ["--steps", str(int(steps))]
    if init_from:
        argv += ["--init-from", str(init_from)]
    for item in overrides:
        argv += ["--set", item]
    validate_command(argv)
    load_config(config, list(overrides) or None)
    return argv


def option_value(argv: list[str], name: str) -> str | None:
    """The value of ``name`` in an argument list (``--x v`` or ``--x=v``), or None."""
    for i, token in enumerate(argv):
        if token == name and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(name + "="):
            return token.split("=", 1)[1]
    return None


# ---------------------------------------------------------------------------------------------
# GPUs


@dataclass(frozen=True)
class GPU:
    index: int
    name: str
    memory_mib: int


def detect_gpus(nvidia_smi: str | None = None) -> list[GPU]:
    """NVIDIA GPUs listed by ``nvidia-smi`` (empty when it is absent or fails: run on the CPU)."""
    exe = nvidia_smi or shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(out)


def parse_nvidia_smi(text: str) -> list[GPU]:
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0].isdigit():
            memory = int(float(parts[2])) if parts[2].replace(".", "", 1).isdigit() else 0
            gpus.append(GPU(int(parts[0]), parts[1], memory))
    return gpus


def job_environment(gpus: list[int] | tuple[int, ...] = (), base: dict | None = None) -> dict[str, str]:
    """The environment of a job: only the chosen GPUs visible (none = CPU), memory growth on."""
    env = dict(os.environ if base is None else base)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(int(g)) for g in gpus) if gpus else "-1"
    env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"  # the log file shows progress as it happens
    return env


# ---------------------------------------------------------------------------------------------
# Records


@dataclass
class Job:
    id: int
    kind: str
    name: str
    argv: list[str]
    workdir: str
    log_path: str
    state: str
    gpus: list[int] = field(default_factory=list)
    pid: int | None = None
    pid_start: str | None = None
    exit_code: int | None = None
    message: str = ""
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    attempts: int = 0
    cancel_requested: bool = False
    backend: str = LOCAL

    @property
    def exit_file(self) -> Path:
        return Path(self.workdir) / ".job_exit"

    @property
    def base_model(self) -> str | None:
        return option_value(self.argv, "--init-from")

    @property
    def dataset(self) -> str | None:
        return option_value(self.argv, "--dataset")

    @property
    def is_active(self) -> bool:
        return self.state in (QUEUED, RUNNING)


@dataclass
class Progress:
    state: str | None  # the trainer's own state from status.json, if any
    step: int
    total_steps: int | None
    phase: str | None = None  # what it does before the first step ("building the model", ...), then "training"
    updated: float | None = None  # when status.json was written (epoch seconds)

    @property
    def fraction(self) -> float | None:
        if not self.total_steps:
            return None
        return max(0.0, min(1.0, self.step / self.total_steps))


@dataclass
class ModelRecord:
    id: int
    name: str
    path: str
    job_id: int | None
    base_model: str | None
    dataset: str | None
    created_at: float


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL, name TEXT NOT NULL, argv TEXT NOT NULL,
    workdir TEXT NOT NULL, log_path TEXT NOT NULL, state TEXT NOT NULL,
    gpus TEXT NOT NULL DEFAULT '[]', pid INTEGER, pid_start TEXT, exit_code INTEGER,
    message TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, started_at REAL, ended_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,
    backend TEXT NOT NULL DEFAULT 'local'
);
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL, path TEXT NOT NULL UNIQUE, job_id INTEGER,
    base_model TEXT, dataset TEXT, created_at REAL NOT NULL
);
"""

# Popen handles of the jobs this process started: polling them reaps the child (no zombie that
# would look alive) and gives the exit status directly.
_CHILDREN: dict[tuple[str, int], subprocess.Popen] = {}


class JobStore(SqliteStore):
    """Job and model records in ``<root>/jobs.sqlite``; job workdirs default to ``<root>/jobs/<id>``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "jobs.sqlite"
        with self._connect() as db:
            db.executescript(_SCHEMA)
            if "backend" not in {r["name"] for r in db.execute("PRAGMA table_info(jobs)")}:
                db.execute("ALTER TABLE jobs ADD COLUMN backend TEXT NOT NULL DEFAULT 'local'")  # older stores

    # -- launching --------------------------------------------------------------------------

    def submit(
        self,
        argv: list[str],
        *,
        name: str | None = None,
        gpus: list[int] | tuple[int, ...] = (),
        workdir: str | os.PathLike | None = None,
    ) -> Job:
        """Validate ``argv`` (a ``pdl`` argument list), record the job and start its process.

        For ``train`` the workdir is the ``--workdir`` of the command; other jobs get
        ``<root>/jobs/<id>``.
        """
        validate_command(argv)
        gpus = [int(g) for g in gpus]
        kind = argv[0]
        given = option_value(argv, "--workdir")
        now = time.time()
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO jobs (kind, name, argv, workdir, log_path, state, gpus, created_at)"
                " VALUES (?, ?, ?, '', '', ?, ?, ?)",
                (kind, name or kind, json.dumps(argv), QUEUED, json.dumps(gpus), now),
            )
            job_id = cur.lastrowid
            wd = Path(given or workdir or self.root / "jobs" / str(job_id)).expanduser().resolve()
            log = wd / "job.log"
            db.execute("UPDATE jobs SET workdir=?, log_path=? WHERE id=?", (str(wd), str(log), job_id))
        return self._start(self.get(job_id))

    def _start(self, job: Job) -> Job:
        workdir = Path(job.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        job.exit_file.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "panoptic_deeplab.jobs", "--exit-file", str(job.exit_file), "--", *job.argv]
        with open(job.log_path, "ab") as log:
            log.write(f"# job {job.id} attempt {job.attempts + 1}: pdl {' '.join(job.argv)}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, env=job_environment(job.gpus), cwd=workdir,
                )
            except OSError as err:
                self._update(job.id, state=FAILED, message=f"could not start: {err}", ended_at=time.time())
                return self.get(job.id)
        _CHILDREN[(str(self.db_path), job.id)] = proc
        self._update(
            job.id, state=RUNNING, pid=proc.pid, pid_start=_process_start(proc.pid), started_at=time.time(),
            ended_at=None, exit_code=None, message="", attempts=job.attempts + 1, cancel_requested=0,
        )
        return self.get(job.id)

    # -- reading ----------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id=?", (int(job_id),)).fetchone()
        if row is None:
            raise JobError(f"no job with id {job_id} in {self.db_path}")
        return _row_to_job(row)

    def list(self, kind: str | None = None) -> list[Job]:
        """All jobs, newest first, with their state reconciled against the live processes."""
        with self._connect() as db:
            if kind:
                rows = db.execute("SELECT id FROM jobs WHERE kind=? ORDER BY id DESC", (kind,)).fetchall()
            else:
                rows = db.execute("SELECT id FROM jobs ORDER BY id DESC").fetchall()
        return [self.refresh(r["id"]) for r in rows]

    def refresh(self, job_id: int) -> Job:
        """Reconcile a running job with its process: finished, failed (died) or still running."""
        job = self.get(job_id)
        if job.backend == SLURM:
            return _slurm().refresh(self, job)
        if job.state != RUNNING:
            return job
        proc = _CHILDREN.get((str(self.db_path), job.id))
        code = proc.poll() if proc is not None and proc.pid == job.pid else None
        if code is None and _alive(job.pid, job.pid_start):
            return job
        if code is None:
            code = _read_exit_file(job.exit_file)
        _CHILDREN.pop((str(self.db_path), job.id), None)
        if job.cancel_requested:
            state, message = CANCELLED, "cancelled"
        elif code == 0:
            state, message = SUCCEEDED, ""
        elif code is None:
            state, message = FAILED, "the process ended without reporting (killed, or the machine restarted)"
        else:
            state, message = FAILED, failure_message(self.read_log(job, 20000), code)
        self._update(job.id, state=state, exit_code=code, message=message, ended_at=time.time())
        job = self.get(job.id)
        if job.state == SUCCEEDED and job.kind == "train":
            self._register_job_model(job)
        return job

    def progress(self, job: Job) -> Progress:
        """Step and total from ``<workdir>/status.json`` (written by ``pdl train``), if present. Before
        a (re)started run writes it, the phase comes from the run's last ``phase: ...`` log line."""
        data = _read_json(Path(job.workdir) / "status.json") or {}
        progress = self._status_progress(data)
        stale = progress.updated is not None and job.started_at is not None and progress.updated < job.started_at - 1
        if progress.state is None or (stale and job.state == RUNNING):
            from .training.run_files import PHASE_PREFIX

            attempt = self.read_log(job, 8000).rsplit(f"# job {job.id} attempt", 1)[-1]  # this attempt's lines
            phases = [line[len(PHASE_PREFIX):].strip() for line in attempt.splitlines() if line.startswith(PHASE_PREFIX)]
            return Progress(state="starting" if phases else None, step=0, total_steps=progress.total_steps,
                            phase=phases[-1] if phases else None, updated=None)
        return progress

    @staticmethod
    def _status_progress(data: dict) -> Progress:
        try:
            step = int(data.get("step") or 0)
            total = data.get("total_steps")
            total = int(total) if total else None
        except (TypeError, ValueError):
            step, total = 0, None
        try:
            import calendar

            updated = float(calendar.timegm(time.strptime(str(data["updated"]), "%Y-%m-%dT%H:%M:%SZ")))
        except (KeyError, ValueError):
            updated = None
        return Progress(state=data.get("state"), step=step, total_steps=total, phase=data.get("phase"),
                        updated=updated)

    def metrics(self, job: Job):
        """``<workdir>/metrics.csv`` as a DataFrame (empty when nothing was logged yet)."""
        import pandas as pd

        path = Path(job.workdir) / "metrics.csv"
        if not path.is_file() or path.stat().st_size == 0:
            return pd.DataFrame()
        try:
            return pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError):
            # Being written right now: the last line may be partial. Read what is complete.
            lines = path.read_text().splitlines()[:-1]
            if len(lines) < 2:
                return pd.DataFrame()
            from io import StringIO

            return pd.read_csv(StringIO("\n".join(lines)))

    def read_log(self, job: Job, max_bytes: int = 20000) -> str:
        """The last ``max_bytes`` of the job's log."""
        path = Path(job.log_path)
        if not path.is_file():
            return ""
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - max_bytes))
            return f.read().decode("utf-8", errors="replace")

    # -- changing ---------------------------------------------------------------------------

    def cancel(self, job_id: int, grace_s: float = 5.0) -> Job:
        """SIGTERM the job's process group, then SIGKILL it if it is still there after ``grace_s``."""
        job = self.refresh(job_id)
        if job.backend == SLURM:
            return _slurm().cancel(self, job, grace_s)
        if job.state != RUNNING:
            return job
        self._update(job.id, cancel_requested=1)
        _signal_group(job.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if self.refresh(job.id).state != RUNNING:
                break
            time.sleep(0.1)
        else:
            _signal_group(job.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while self.refresh(job.id).state == RUNNING and time.monotonic() < deadline:
                time.sleep(0.05)
        return self.refresh(job.id)

    def resume(self, job_id: int) -> Job:
        """Start a finished, failed or cancelled job again with the same arguments and workdir
        (``pdl train`` continues from the checkpoint it finds there)."""
        job = self.refresh(job_id)
        if job.is_active:
            raise JobError(f"job {job.id} is still {job.state}; cancel it before resuming")
        return _slurm().resume(self, job) if job.backend == SLURM else self._start(job)

    def delete(self, job_id: int) -> None:
        """Forget a finished job (its workdir stays on disk)."""
        job = self.refresh(job_id)
        if job.is_active:
            raise JobError(f"job {job.id} is still {job.state}; cancel it first")
        with self._connect() as db:
            db.execute("DELETE FROM jobs WHERE id=?", (job.id,))

    def _update(self, job_id: int, **values) -> None:
        cols = ", ".join(f"{k}=?" for k in values)
        with self._connect() as db:
            db.execute(f"UPDATE jobs SET {cols} WHERE id=?", (*values.values(), int(job_id)))

    # -- models -----------------------------------------------------------------------------

    def register_model(
        self,
        path: str | os.PathLike,
        name: str | None = None,
        *,
        job_id: int | None = None,
        base_model: str | None = None,
        dataset: str | None = None,
    ) -> ModelRecord:
        """Record a model bundle directory (idempotent on its resolved path)."""
        p = Path(path).expanduser().resolve()
        if not p.exists():
            raise JobError(f"{p}: model bundle not found")
        with self._connect() as db:
            db.execute(
                "INSERT INTO models (name, path, job_id, base_model, dataset, created_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(path) DO UPDATE SET name=excluded.name, job_id=excluded.job_id,"
                " base_model=excluded.base_model, dataset=excluded.dataset",
                (name or p.name, str(p), job_id, base_model, dataset, time.time()),
            )
            row = db.execute("SELECT * FROM models WHERE path=?", (str(p),)).fetchone()
        return _row_to_model(row)

    def models(self) -> list[ModelRecord]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM models ORDER BY id DESC").fetchall()
        return [_row_to_model(r) for r in rows]

    def _register_job_model(self, job: Job) -> None:
        bundle = Path(job.workdir) / "model"
        if bundle.exists():
            self.register_model(bundle, name=job.name, job_id=job.id, base_model=job.base_model, dataset=job.dataset)


def _slurm():
    from . import jobs_slurm  # imported on use: local jobs never need it

    return jobs_slurm


def _row_to_job(row: sqlite3.Row) -> Job:
    d = dict(row)
    d["argv"] = json.loads(d["argv"])
    d["gpus"] = json.loads(d["gpus"])
    d["cancel_requested"] = bool(d["cancel_requested"])
    return Job(**d)


def _row_to_model(row: sqlite3.Row) -> ModelRecord:
    return ModelRecord(**dict(row))


# ---------------------------------------------------------------------------------------------
# Processes


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell our process from a later one reusing its id."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime


def _alive(pid: int | None, start: str | None) -> bool:
    if not pid:
        return False
    if Path("/proc").is_dir():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):  # zombie: it has exited, only its exit status remains
            return False
        return start is None or fields[19] == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pid: int | None, sig: int) -> None:
    if not pid:
        return
    try:
        os.killpg(pid, sig)  # start_new_session made the job the leader of its own group
    except (ProcessLookupError, PermissionError):
        pass


def failure_message(log_tail: str, code: int) -> str:
    """What a failed job said about its failure: the last ``error: ...`` report of ``pdl`` (a
    UserError, which names the file and the fix; it may span lines), else the last line of a Python
    traceback, else only the exit status."""
    lines = log_tail.rstrip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("error: "):
            text = "\n".join([lines[i][len("error: "):], *lines[i + 1:]]).strip()
            return f"{text}\n(exited with status {code})"
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("Traceback (most recent call last)"):
            last = next((line for line in reversed(lines[i:]) if line and not line.startswith(" ")), "")
            if last:
                return f"{last.strip()}\n(exited with status {code}; the log has the traceback)"
    return f"exited with status {code}; see the log"


def _read_exit_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _run_recorded(exit_file: str, argv: list[str]) -> int:
    """Run ``pdl argv`` in this process and write its exit status to ``exit_file``."""
    from .cli import main

    def _terminate(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    code = 1
    try:
        validate_command(argv)
        code = int(main(argv) or 0)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except JobError as err:
        print(f"error: {err}", file=sys.stderr)
        code = 2
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        tmp = Path(exit_file + ".tmp")
        tmp.write_text(str(code))
        os.replace(tmp, exit_file)
    return code


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) < 3 or args[0] != "--exit-file" or args[2] != "--":
        print("usage: python -m panoptic_deeplab.jobs --exit-file FILE -- PDL_ARGS...", file=sys.stderr)
        sys.exit(2)
    sys.exit(_run_recorded(args[1], args[3:]))
