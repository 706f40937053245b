"""The SQLite store of job and model records, and the launcher of local jobs: ``JobStore``.

A job whose ``backend`` is ``slurm`` is refreshed, cancelled and resumed by ``.slurm``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from ..sqlite_store import SqliteStore
from .arguments import option_value, validate_command
from .errors import JobError
from .gpus import job_environment
from .process import (
    _alive,
    _process_start,
    _read_exit_file,
    _read_json,
    _signal_group,
    failure_message,
)
from .records import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SLURM,
    SUCCEEDED,
    Job,
    ModelRecord,
    Progress,
)
from .slurm import cancel as slurm_cancel
from .slurm import refresh as slurm_refresh
from .slurm import resume as slurm_resume


def default_root() -> Path:
    """Where the app and ``pdl jobs`` keep job records: the work directory (``settings.workdir``)."""
    from ..settings import workdir

    return workdir()


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
                db.execute(
                    "ALTER TABLE jobs ADD COLUMN backend TEXT NOT NULL DEFAULT 'local'"
                )  # older stores

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
            db.execute(
                "UPDATE jobs SET workdir=?, log_path=? WHERE id=?", (str(wd), str(log), job_id)
            )
        return self._start(self.get(job_id))

    def _start(self, job: Job) -> Job:
        workdir = Path(job.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        job.exit_file.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "panoptic_deeplab.jobs",
            "--exit-file",
            str(job.exit_file),
            "--",
            *job.argv,
        ]
        with open(job.log_path, "ab") as log:
            log.write(
                f"# job {job.id} attempt {job.attempts + 1}: pdl {' '.join(job.argv)}\n".encode()
            )
            log.flush()
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=job_environment(job.gpus),
                    cwd=workdir,
                )
            except OSError as err:
                self._update(
                    job.id, state=FAILED, message=f"could not start: {err}", ended_at=time.time()
                )
                return self.get(job.id)
        _CHILDREN[(str(self.db_path), job.id)] = proc
        self._update(
            job.id,
            state=RUNNING,
            pid=proc.pid,
            pid_start=_process_start(proc.pid),
            started_at=time.time(),
            ended_at=None,
            exit_code=None,
            message="",
            attempts=job.attempts + 1,
            cancel_requested=0,
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
                rows = db.execute(
                    "SELECT id FROM jobs WHERE kind=? ORDER BY id DESC", (kind,)
                ).fetchall()
            else:
                rows = db.execute("SELECT id FROM jobs ORDER BY id DESC").fetchall()
        return [self.refresh(r["id"]) for r in rows]

    def refresh(self, job_id: int) -> Job:
        """Reconcile a running job with its process: finished, failed (died) or still running."""
        job = self.get(job_id)
        if job.backend == SLURM:
            return slurm_refresh(self, job)
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
            state, message = (
                FAILED,
                "the process ended without reporting (killed, or the machine restarted)",
            )
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
        stale = (
            progress.updated is not None
            and job.started_at is not None
            and progress.updated < job.started_at - 1
        )
        if progress.state is None or (stale and job.state == RUNNING):
            from ..training.run_files import PHASE_PREFIX

            attempt = self.read_log(job, 8000).rsplit(f"# job {job.id} attempt", 1)[
                -1
            ]  # this attempt's lines
            phases = [
                line[len(PHASE_PREFIX) :].strip()
                for line in attempt.splitlines()
                if line.startswith(PHASE_PREFIX)
            ]
            return Progress(
                state="starting" if phases else None,
                step=0,
                total_steps=progress.total_steps,
                phase=phases[-1] if phases else None,
                updated=None,
            )
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

            updated = float(
                calendar.timegm(time.strptime(str(data["updated"]), "%Y-%m-%dT%H:%M:%SZ"))
            )
        except (KeyError, ValueError):
            updated = None
        return Progress(
            state=data.get("state"),
            step=step,
            total_steps=total,
            phase=data.get("phase"),
            updated=updated,
        )

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
            return slurm_cancel(self, job, grace_s)
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
        return slurm_resume(self, job) if job.backend == SLURM else self._start(job)

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

    def models(self, *, include_missing: bool = False) -> list[ModelRecord]:
        """The registered models, newest first: those whose folder is there, which may be offered
        for a job; with ``include_missing``, also those whose folder is gone (``record.missing``),
        to be shown as missing and forgotten (``forget_model``)."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM models ORDER BY id DESC").fetchall()
        records = [_row_to_model(r) for r in rows]
        return records if include_missing else [r for r in records if not r.missing]

    def forget_model(self, model: ModelRecord | int | str | os.PathLike) -> bool:
        """Remove a model from the registry (its folder, if any, is not touched); by record, id or
        path. True when there was such a record."""
        with self._connect() as db:
            if isinstance(model, ModelRecord) or isinstance(model, int):
                model_id = model.id if isinstance(model, ModelRecord) else model
                cur = db.execute("DELETE FROM models WHERE id=?", (int(model_id),))
            else:
                resolved = str(Path(model).expanduser().resolve())
                cur = db.execute("DELETE FROM models WHERE path=?", (resolved,))
        return cur.rowcount > 0

    def _register_job_model(self, job: Job) -> None:
        bundle = Path(job.workdir) / "model"
        if bundle.exists():
            self.register_model(
                bundle, name=job.name, job_id=job.id, base_model=job.base_model, dataset=job.dataset
            )


def _row_to_job(row: sqlite3.Row) -> Job:
    d = dict(row)
    d["argv"] = json.loads(d["argv"])
    d["gpus"] = json.loads(d["gpus"])
    d["cancel_requested"] = bool(d["cancel_requested"])
    return Job(**d)


def _row_to_model(row: sqlite3.Row) -> ModelRecord:
    return ModelRecord(**dict(row))
