"""``JobStore``: the records of jobs and registered models in ``<root>/jobs.sqlite``, and the one
entry point for running jobs. Where a job runs is its backend's business (``.backends``: ``local``,
``slurm``, chosen by name); the store records, reconciles and reports.

Backends use only the public methods below (``update``, ``remove``, ``outcome_of_exit``,
``finish``, ``attempt_log``, ``refresh``); nothing else writes to the tables.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from ..sqlite_store import DamagedStoreError, SqliteStore, set_aside
from .arguments import option_value, validate_command
from .backends import Backend, Outcome, get_backend
from .backends.local import _CHILDREN  # noqa: F401 - the name tests of app restarts reach for
from .errors import JobError
from .process import failure_message
from .progress import read_progress
from .records import (
    ATTEMPT_PREFIX,
    CANCELLED,
    FAILED,
    FINAL_STATES,
    LOCAL,
    QUEUED,
    STAGE_RANK,
    SUCCEEDED,
    Job,
    ModelRecord,
    Progress,
)


def default_root() -> Path:
    """Where the app and ``pdl jobs`` keep job records: the work directory
    (``settings.workdir``)."""
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
    backend TEXT NOT NULL DEFAULT 'local', backend_data TEXT NOT NULL DEFAULT '{}',
    progress TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL, path TEXT NOT NULL UNIQUE, job_id INTEGER,
    base_model TEXT, dataset TEXT, created_at REAL NOT NULL
);
"""
# Columns later versions added, for stores written before them.
_ADDED_COLUMNS = {
    "backend": "TEXT NOT NULL DEFAULT 'local'",
    "backend_data": "TEXT NOT NULL DEFAULT '{}'",
    "progress": "TEXT NOT NULL DEFAULT '{}'",
}
_JSON_COLUMNS = ("argv", "gpus", "backend_data", "progress")
REPAIR_HINT = (
    "To keep it aside (renamed with the time) and start an empty job list, run `pdl jobs --repair` "
    "(or `JobStore(root, repair=True)` from Python). Job folders, logs and models on disk are not "
    "touched."
)


class JobStore(SqliteStore):
    """Job and model records in ``<root>/jobs.sqlite``; job workdirs default to
    ``<root>/jobs/<id>``.

    A damaged ``jobs.sqlite`` raises ``DamagedStoreError`` (a UserError naming the file and the
    fix); ``JobStore(root, repair=True)`` then renames it aside (``set_aside_as``) and starts empty.
    """

    repair_hint = REPAIR_HINT

    def __init__(self, root: str | os.PathLike, *, repair: bool = False):
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "jobs.sqlite"
        self.set_aside_as: Path | None = None  # where repair=True moved a damaged store
        try:
            self._create_schema()
        except DamagedStoreError:
            if not repair:
                raise
            self.set_aside_as = set_aside(self.db_path)
            self._checked = None
            self._create_schema()

    def _create_schema(self) -> None:
        with self._connect() as db:
            db.executescript(_SCHEMA)
            columns = {r["name"] for r in db.execute("PRAGMA table_info(jobs)")}
            for column, declaration in _ADDED_COLUMNS.items():
                if column not in columns:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {declaration}")
            _adopt_backend_tables(db)

    # -- launching --------------------------------------------------------------------------

    def submit(
        self,
        argv: list[str],
        *,
        name: str | None = None,
        gpus: list[int] | tuple[int, ...] = (),
        workdir: str | os.PathLike | None = None,
        backend: str = LOCAL,
        options: Any = None,
    ) -> Job:
        """Validate ``argv`` (a ``pdl`` argument list), record the job and start it on ``backend``
        (``options``: that backend's, e.g. ``SlurmOptions``). When the backend refuses it, the
        record is removed again and its error raised.

        For ``train`` the workdir is the ``--workdir`` of the command; other jobs get ``workdir`` or
        ``<root>/jobs/<id>``.
        """
        validate_command(argv)
        runner = get_backend(backend)
        argv = runner.prepare(list(argv), options)
        gpus = [int(g) for g in gpus]
        given = option_value(argv, "--workdir")
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO jobs (kind, name, argv, workdir, log_path, state, gpus, created_at,"
                " backend, backend_data) VALUES (?, ?, ?, '', '', ?, ?, ?, ?, ?)",
                (
                    argv[0],
                    name or argv[0],
                    json.dumps(argv),
                    QUEUED,
                    json.dumps(gpus),
                    time.time(),
                    runner.name,
                    json.dumps(runner.initial_data(options)),
                ),
            )
            job_id = cur.lastrowid
            wd = runner.workdir(
                Path(given or workdir or self.root / "jobs" / str(job_id)).expanduser()
            )
            db.execute(
                "UPDATE jobs SET workdir=?, log_path=? WHERE id=?",
                (str(wd), str(wd / "job.log"), job_id),
            )
        try:
            return self._start(self.get(job_id))
        except BaseException:
            self.remove(job_id)
            raise

    def _start(self, job: Job) -> Job:
        return self.backend_of(job).submit(self, job)

    def backend_of(self, job: Job) -> Backend:
        return get_backend(job.backend)

    # -- reading ----------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id=?", (int(job_id),)).fetchone()
        if row is None:
            raise JobError(f"no job with id {job_id} in {self.db_path}")
        return _row_to_job(row)

    def list(self, kind: str | None = None) -> list[Job]:
        """All jobs, newest first, with their state reconciled with where they run."""
        with self._connect() as db:
            if kind:
                rows = db.execute(
                    "SELECT id FROM jobs WHERE kind=? ORDER BY id DESC", (kind,)
                ).fetchall()
            else:
                rows = db.execute("SELECT id FROM jobs ORDER BY id DESC").fetchall()
        return [self.refresh(r["id"]) for r in rows]

    def refresh(self, job_id: int) -> Job:
        """Reconcile an active job with its backend: still queued or running, or how it ended."""
        job = self.get(job_id)
        if job.state in FINAL_STATES:
            return job
        outcome = self.backend_of(job).poll(self, job)
        if outcome is None or (outcome.state, outcome.message) == (job.state, job.message):
            return job
        if outcome.state in FINAL_STATES:
            return self.finish(job, outcome)
        return self.update(job.id, state=outcome.state, message=outcome.message)

    def describe(self, job: Job) -> str:
        """Where the job runs, in a few words ("CPU", "GPUs [0, 1]", "Slurm job 12 on ...")."""
        return self.backend_of(job).describe(self, job)

    def progress(self, job: Job) -> Progress:
        """How far the job is: its ``stage`` (``STAGES``) never goes back within one start of its
        process, nor does its step; the ETA comes from steps actually timed."""
        offset, log = self._attempt(job, 20000)
        progress = read_progress(job, log)
        if not job.is_active:
            return progress
        # One start of the process: the attempt, and where its header is in the log (a requeued
        # Slurm job starts again within its attempt). A header out of reach is the one seen before.
        key = [job.attempts, offset]
        if offset is None and job.progress.get("key", [None])[0] == job.attempts:
            key = job.progress["key"]
        seen = job.progress if job.progress.get("key") == key else {}
        if seen and (
            STAGE_RANK.get(seen.get("stage"), -1) > STAGE_RANK.get(progress.stage, -1)
            or (seen.get("stage") == progress.stage and seen.get("step", 0) > progress.step)
        ):
            progress.stage, progress.phase = seen["stage"], seen.get("phase")
            progress.step = max(progress.step, seen.get("step", 0))
            progress.total_steps = progress.total_steps or seen.get("total_steps")
            progress.unit = seen.get("unit", progress.unit)
            if progress.seconds_per_step is not None and progress.total_steps:
                left = max(0, progress.total_steps - progress.step)
                progress.eta_s = progress.seconds_per_step * left
        furthest = {
            "key": key,
            "stage": progress.stage,
            "phase": progress.phase,
            "step": progress.step,
            "total_steps": progress.total_steps,
            "unit": progress.unit,
        }
        if furthest != job.progress:
            self.update(job.id, progress=furthest)
            job.progress = furthest
        return progress

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

    def attempt_log(self, job: Job, max_bytes: int = 20000) -> str:
        """What the latest start of the job wrote to its log (within its last ``max_bytes``)."""
        return self._attempt(job, max_bytes)[1]

    def _attempt(self, job: Job, max_bytes: int) -> tuple[int | None, str]:
        """(offset of the latest start's header in the log, or None when out of reach; its text)."""
        path = Path(job.log_path)
        if not path.is_file():
            return None, ""
        with open(path, "rb") as f:
            start = max(0, f.seek(0, os.SEEK_END) - max_bytes)
            f.seek(start)
            tail = f.read()
        at = tail.rfind(ATTEMPT_PREFIX.format(id=job.id).encode())
        if at < 0:
            return None, tail.decode("utf-8", errors="replace")
        return start + at, tail[at:].decode("utf-8", errors="replace")

    # -- changing ---------------------------------------------------------------------------

    def cancel(self, job_id: int, grace_s: float = 5.0) -> Job:
        """Stop the job (local: SIGTERM to its process group, SIGKILL after ``grace_s``; Slurm:
        scancel) and wait up to ``grace_s`` for it to end."""
        job = self.refresh(job_id)
        if not job.is_active:
            return job
        return self.backend_of(job).cancel(self, job, grace_s)

    def resume(self, job_id: int) -> Job:
        """Start a finished, failed or cancelled job again with the same arguments and workdir
        (``pdl train`` continues from the checkpoint it finds there)."""
        job = self.refresh(job_id)
        if job.is_active:
            raise JobError(f"job {job.id} is still {job.state}; cancel it before resuming")
        return self.backend_of(job).resume(self, job)

    def delete(self, job_id: int) -> None:
        """Forget a finished job (its workdir stays on disk)."""
        job = self.refresh(job_id)
        if job.is_active:
            raise JobError(f"job {job.id} is still {job.state}; cancel it first")
        self.remove(job.id)

    # -- for backends -----------------------------------------------------------------------

    def update(self, job_id: int, **values) -> Job:
        """Set columns of a job's record (lists and dicts as JSON); the job as it is now."""
        for column in _JSON_COLUMNS:
            if column in values:
                values[column] = json.dumps(values[column])
        cols = ", ".join(f"{k}=?" for k in values)
        with self._connect() as db:
            db.execute(f"UPDATE jobs SET {cols} WHERE id=?", (*values.values(), int(job_id)))
        return self.get(job_id)

    def remove(self, job_id: int) -> None:
        """Delete a job's record, whatever its state (a submission that did not go through)."""
        with self._connect() as db:
            db.execute("DELETE FROM jobs WHERE id=?", (int(job_id),))

    def outcome_of_exit(
        self,
        job: Job,
        code: int | None,
        unknown: str = "the process ended without reporting (killed, or the machine restarted)",
    ) -> Outcome:
        """How a job whose process ended went, from its exit status (None: it wrote none)."""
        if job.cancel_requested:
            return Outcome(CANCELLED, "cancelled", code)
        if code == 0:
            return Outcome(SUCCEEDED, "", 0)
        if code is None:
            return Outcome(FAILED, unknown, None)
        return Outcome(FAILED, failure_message(self.attempt_log(job), code), code)

    def finish(self, job: Job, outcome: Outcome) -> Job:
        """Record how a job ended; a training job that succeeded registers its model."""
        job = self.update(
            job.id,
            state=outcome.state,
            message=outcome.message,
            exit_code=outcome.exit_code,
            ended_at=time.time(),
        )
        bundle = Path(job.workdir) / "model"
        if job.state == SUCCEEDED and job.kind == "train" and bundle.exists():
            self.register_model(
                bundle, name=job.name, job_id=job.id, base_model=job.base_model, dataset=job.dataset
            )
        return job

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
                "INSERT INTO models (name, path, job_id, base_model, dataset, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET name=excluded.name,"
                " job_id=excluded.job_id, base_model=excluded.base_model, dataset=excluded.dataset",
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

    def model_at(self, path: str | os.PathLike) -> ModelRecord | None:
        """The record of the model bundle at ``path``, if registered."""
        resolved = str(Path(path).expanduser().resolve())
        with self._connect() as db:
            row = db.execute("SELECT * FROM models WHERE path=?", (resolved,)).fetchone()
        return _row_to_model(row) if row is not None else None

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


def _adopt_backend_tables(db: sqlite3.Connection) -> None:
    """Stores written before ``jobs.backend_data`` kept a backend's fields in a table
    ``<backend>_jobs`` (job_id plus the fields): copy them into the job's backend_data once."""
    tables = [
        r["name"]
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name GLOB '?*_jobs'"
        )
    ]
    for table in tables:
        backend = table[: -len("_jobs")]
        for row in db.execute(f'SELECT * FROM "{table}"').fetchall():
            data = {k: row[k] for k in row.keys() if k != "job_id"}
            db.execute(
                "UPDATE jobs SET backend_data=? WHERE id=? AND backend=? AND backend_data='{}'",
                (json.dumps(data), row["job_id"], backend),
            )


def _row_to_job(row: sqlite3.Row) -> Job:
    d = dict(row)
    for column in _JSON_COLUMNS:
        d[column] = json.loads(d[column])
    d["cancel_requested"] = bool(d["cancel_requested"])
    return Job(**d)


def _row_to_model(row: sqlite3.Row) -> ModelRecord:
    return ModelRecord(**dict(row))
