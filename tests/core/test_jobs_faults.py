"""Faults of the job store and its jobs (issue 24): a damaged jobs.sqlite (cut in half, header
overwritten, emptied to 0 bytes) is named with the fix and kept, and set aside only on request;
listing, showing and cancelling jobs import no TensorFlow; a job whose process is gone is never
shown running; job logs hold no TensorFlow start-up lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from panoptic_deeplab import jobs
from panoptic_deeplab.jobs import JobStore, process
from panoptic_deeplab.sqlite_store import DamagedStoreError, SqliteStore, marker_path

PDL = [sys.executable, "-m", "panoptic_deeplab"]


def _record(store: JobStore, root: Path, state: str = jobs.SUCCEEDED, **values) -> jobs.Job:
    """A job record as a finished `pdl train` job leaves it (no process started)."""
    workdir = root / "runs" / "r"
    workdir.mkdir(parents=True, exist_ok=True)
    with store._connect() as db:
        job_id = db.execute(
            "INSERT INTO jobs (kind, name, argv, workdir, log_path, state, created_at, attempts)"
            " VALUES ('train', 'tune', ?, ?, ?, ?, ?, 1)",
            (
                json.dumps(["train", "--workdir", str(workdir)]),
                str(workdir),
                str(workdir / "job.log"),
                state,
                time.time(),
            ),
        ).lastrowid
    return store.update(job_id, **values) if values else store.get(job_id)


def _pdl_jobs(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PDL, "jobs", "--root", str(root), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


# -- damaged stores -----------------------------------------------------------------------------


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_header(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(os.urandom(100) + data[100:])


def _emptied(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    "damage, reason",
    [
        (_cut_in_half, "database disk image is malformed"),
        (_random_header, "file is not a database"),
        (_emptied, "empty (0 bytes) although it held this store's records"),
    ],
)
def test_a_damaged_job_store_is_named_kept_and_set_aside_only_on_request(tmp_path, damage, reason):
    root = tmp_path / "work"
    store = JobStore(root)
    _record(store, root)
    store.register_model(tmp_path, "kept")
    db = root / "jobs.sqlite"
    damage(db)
    damaged = db.read_bytes()

    with pytest.raises(DamagedStoreError) as err:
        JobStore(root)  # the library, as the app opens it
    assert err.value.path == db and reason in str(err.value)
    assert "pdl jobs --repair" in str(err.value)

    done = _pdl_jobs(root, "list")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"error: {db} is damaged: ") and reason in done.stderr
    assert "pdl jobs --repair" in done.stderr and done.stdout == ""
    assert db.read_bytes() == damaged  # nothing written, nothing lost
    assert not list(root.glob("jobs.sqlite.damaged-*"))

    repaired = _pdl_jobs(root, "--repair", "list")
    assert repaired.returncode == 0, repaired.stderr
    (aside,) = root.glob("jobs.sqlite.damaged-*")
    assert aside.read_bytes() == damaged  # kept for whoever wants to recover it
    assert f"{db} was damaged: kept as {aside}" in repaired.stderr and repaired.stdout == ""
    fresh = JobStore(root)
    assert fresh.list() == [] and fresh.models() == []
    assert marker_path(db).is_file()  # the fresh store is watched the same way


def test_a_store_emptied_before_its_first_write_is_simply_new(tmp_path):
    """0 bytes is also what SQLite leaves before the schema is written: without the marker of an
    earlier schema, it is a new store, not a damaged one."""
    (tmp_path / "jobs.sqlite").write_bytes(b"")
    assert JobStore(tmp_path).list() == []
    assert marker_path(tmp_path / "jobs.sqlite").is_file()


def test_the_library_sets_a_damaged_store_aside_when_asked(tmp_path):
    store = JobStore(tmp_path)
    _record(store, tmp_path)
    _cut_in_half(tmp_path / "jobs.sqlite")
    fresh = JobStore(tmp_path, repair=True)  # what a "start an empty job list" button calls
    assert fresh.set_aside_as is not None and fresh.set_aside_as.is_file()
    assert fresh.set_aside_as.name.startswith("jobs.sqlite.damaged-")
    assert fresh.list() == [] and JobStore(tmp_path).set_aside_as is None


def test_damage_found_after_opening_is_the_same_clear_error(tmp_path):
    """A store damaged while an app holds it open: the next operation says so, no sqlite3 error."""
    store = JobStore(tmp_path)
    job = _record(store, tmp_path)
    _random_header(tmp_path / "jobs.sqlite")
    with pytest.raises(DamagedStoreError, match="file is not a database"):
        store.get(job.id)


def test_pdl_jobs_asks_before_setting_a_damaged_store_aside(tmp_path, monkeypatch, capsys):
    from panoptic_deeplab.cli import main

    store = JobStore(tmp_path)
    _record(store, tmp_path)
    _emptied(tmp_path / "jobs.sqlite")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    with pytest.raises(SystemExit):
        main(["jobs", "--root", str(tmp_path), "list"])  # "n": nothing changes
    assert not list(tmp_path.glob("jobs.sqlite.damaged-*"))
    assert main(["jobs", "--root", str(tmp_path), "list"]) == 0  # "y"
    assert len(list(tmp_path.glob("jobs.sqlite.damaged-*"))) == 1
    assert "was damaged: kept as" in capsys.readouterr().err


def test_every_store_on_the_shared_base_detects_damage(tmp_path):
    """The review store is built on the same base: its decisions file is guarded the same way."""
    from panoptic_deeplab.review import ReviewStore

    data = tmp_path / "data"
    (data / "annotations").mkdir(parents=True)
    coco = {"images": [], "annotations": [], "categories": []}
    (data / "annotations" / "panoptic_val.json").write_text(json.dumps(coco))
    assert isinstance(ReviewStore(data, "val", tmp_path / "work"), SqliteStore)
    (tmp_path / "work" / "review.sqlite").write_bytes(b"")
    with pytest.raises(DamagedStoreError, match="review.sqlite is damaged: it is empty"):
        ReviewStore(data, "val", tmp_path / "work")


# -- no TensorFlow for listing, showing and cancelling -------------------------------------------


def test_listing_showing_and_cancelling_jobs_import_no_tensorflow(tmp_path):
    root = tmp_path / "work"
    store = JobStore(root)
    done = _record(store, root)
    run = Path(done.workdir)
    (run / "status.json").write_text(
        json.dumps({"state": "finished", "step": 2, "total_steps": 2, "phase": "finished"})
    )
    (run / "metrics.csv").write_text("step,loss,elapsed_s\n1,2.0,30\n2,1.5,31\n")
    (run / "job.log").write_text(f"# job {done.id} attempt 1: pdl train\nstep 2/2 loss 1.5\n")
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        running = _record(
            store,
            root,
            jobs.RUNNING,
            pid=sleeper.pid,
            pid_start=process.process_start(sleeper.pid),
            started_at=time.time(),
        )
        script = textwrap.dedent(
            f"""
            import sys, time
            from panoptic_deeplab.cli import main
            started = time.perf_counter()
            for args in (["list"], ["show", "{done.id}"], ["cancel", "{running.id}"]):
                assert main(["jobs", "--root", {str(root)!r}, *args]) == 0
            print("seconds", time.perf_counter() - started)
            print("tensorflow", "tensorflow" in sys.modules)
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
        )
    finally:
        sleeper.kill()
        sleeper.wait()
    assert out.returncode == 0, out.stderr
    assert "tensorflow False" in out.stdout, out.stdout
    seconds = float(out.stdout.split("seconds ")[1].split()[0])
    print(f"pdl jobs list + show + cancel in one process: {seconds:.2f} s")
    assert seconds < 5  # with TensorFlow imported it took 8-22 s
    assert f"job {running.id}: cancelled" in out.stdout
    assert "absl" not in out.stderr and "cuda" not in out.stderr.lower()


# -- a job whose process is gone ----------------------------------------------------------------


def test_a_job_whose_pid_now_belongs_to_a_later_process_is_failed(tmp_path):
    """A record without the process's start time (an older store, or a start time that could not be
    read) and a pid that a process started later has taken: not the job's, so the job is gone."""
    store = JobStore(tmp_path)
    later = subprocess.Popen(["sleep", "60"])
    try:
        job = _record(store, tmp_path, jobs.RUNNING, pid=later.pid, started_at=time.time() - 3600)
        assert store.refresh(job.id).state == jobs.FAILED
        assert "without reporting" in store.get(job.id).message
    finally:
        later.kill()
        later.wait()


def test_a_killed_training_is_never_shown_running(tmp_path):
    """`pdl train` killed (SIGKILL): its status.json still says "running" with its dead pid. The
    job, its progress and `pdl jobs show` say it failed."""
    store = JobStore(tmp_path)
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    job = _record(
        store,
        tmp_path,
        jobs.RUNNING,
        pid=victim.pid,
        pid_start=process.process_start(victim.pid),
        started_at=time.time() - 5,
    )
    status = {"state": "running", "step": 3, "total_steps": 10, "phase": "training"}
    status |= {"pid": victim.pid, "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (Path(job.workdir) / "status.json").write_text(json.dumps(status))
    assert store.refresh(job.id).state == jobs.RUNNING
    assert store.progress(store.get(job.id)).stage == "training"
    victim.kill()
    victim.wait()
    job = store.refresh(job.id)
    progress = store.progress(job)
    assert job.state == jobs.FAILED and progress.state == "failed" and progress.stage == "done"
    shown = _pdl_jobs(tmp_path, "show", str(job.id))
    assert shown.returncode == 0 and f"job {job.id} tune: failed" in shown.stdout
    assert "running" not in shown.stdout


# -- quiet job logs -------------------------------------------------------------------------------


def test_a_job_log_has_no_tensorflow_start_up_lines(tmp_path, monkeypatch):
    """The app runs with TF_CPP_MIN_LOG_LEVEL=3 (pdl sets it): its jobs still hide the lines
    TensorFlow prints before it reads that level (absl, CUDA, oneDNN)."""
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    store = JobStore(tmp_path)
    argv = ["train", "--config", "synthetic/tiny", "--dataset", str(tmp_path / "nowhere")]
    job = store.submit([*argv, "--workdir", str(tmp_path / "run")])
    deadline = time.monotonic() + 120
    while store.refresh(job.id).is_active and time.monotonic() < deadline:
        time.sleep(0.2)
    log = store.read_log(store.get(job.id))
    assert "data set folder not found" in log  # it ran, imported TensorFlow, and failed
    for noise in ("absl::InitializeLog", "cuda", "oneDNN", "I0000"):
        assert noise not in log, log
    assert jobs.job_environment(base={"TF_CPP_MIN_LOG_LEVEL": "0"})["TF_CPP_MIN_LOG_LEVEL"] == "0"
