"""How far a job is (issue 28, items 11 and 12): its stage moves forward only within one start of
its process, the ETA comes from steps actually timed (never from the first, which traces), and the
text says what the job does without repeating its name. Also the work directory's model registry
(item 2): models whose folder is gone are reported as missing and never offered."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from panoptic_deeplab import jobs
from panoptic_deeplab.jobs import JobStore
from panoptic_deeplab.jobs.progress import PHASE_PREFIX, stage_of


def _running(store: JobStore, root: Path, kind: str, name: str) -> jobs.Job:
    """A running job's record (its process is not needed: progress reads files only)."""
    workdir = root / "runs" / name
    workdir.mkdir(parents=True)
    with store._connect() as db:
        job_id = db.execute(
            "INSERT INTO jobs (kind, name, argv, workdir, log_path, state, created_at, started_at,"
            " attempts) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, 1)",
            (
                kind,
                name,
                json.dumps([kind, "--workdir", str(workdir)]),
                str(workdir),
                str(workdir / "job.log"),
                time.time(),
                time.time() - 10,
            ),
        ).lastrowid
    job = store.get(job_id)
    Path(job.log_path).write_text(f"# job {job.id} attempt 1: pdl {kind}\n")
    return job


def _log(job: jobs.Job, text: str) -> None:
    with open(job.log_path, "a") as f:
        f.write(text)


def _status(job: jobs.Job, state: str, step: int, phase: str | None = None, **extra) -> None:
    data = {"state": state, "step": step, "total_steps": 30, "phase": phase, **extra}
    data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (Path(job.workdir) / "status.json").write_text(json.dumps(data))


def _seen(store: JobStore, job_id: int) -> jobs.Progress:
    return store.progress(store.get(job_id))


def test_an_evaluation_moves_forward_only_and_never_names_itself(tmp_path):
    store = JobStore(tmp_path)
    job = _running(store, tmp_path, "evaluate", "evaluate demo on synthetic/val")
    first = _seen(store, job.id)
    assert (first.stage, first.text) == ("starting", "starting")
    # tqdm's bar as `pdl evaluate` writes it to the log ("\r" between updates).
    _log(job, "\revaluate:   0%|          | 0/8 [00:00<?, ?img/s]")
    _log(job, "\revaluate:  12%|#2        | 1/8 [00:05<00:35,  5.00s/img]")
    _log(job, "\revaluate:  38%|###7      | 3/8 [00:07<00:09,  1.80s/img]")
    p = _seen(store, job.id)
    assert (p.stage, p.step, p.total_steps, p.unit) == ("evaluating", 3, 8, "images")
    assert p.seconds_per_step == 1.0 and p.eta_s == 5.0  # images 2-3 took 2 s; the 1st traced
    assert p.text == "evaluating: 3/8 images, about 5s left"
    _log(job, "\revaluate: 100%|##########| 8/8 [00:12<00:00,  1.00s/img]\n")
    p = _seen(store, job.id)
    assert (p.stage, p.step, p.text) == (
        "saving",
        8,
        "computing the metrics and writing the results",
    )
    _log(job, "PQ per class ...\n" * 2000)  # the report pushes the bar out of the log's tail
    p = _seen(store, job.id)
    assert (p.stage, p.step, p.total_steps) == ("saving", 8, 8)  # not "starting" again
    assert "evaluate" not in p.text.lower()
    store.update(job.id, state=jobs.SUCCEEDED)
    done = _seen(store, job.id)
    assert done.stage == "done" and done.eta_s is None


def test_a_training_goes_through_its_phases_with_an_eta_from_timed_steps(tmp_path):
    store = JobStore(tmp_path)
    job = _running(store, tmp_path, "train", "tune")
    _log(job, f"{PHASE_PREFIX}checking the data set\n{PHASE_PREFIX}building the model\n")
    p = _seen(store, job.id)
    assert (p.stage, p.phase, p.state) == ("loading", "building the model", "starting")
    _status(job, "starting", 0, "tracing the training step")
    assert _seen(store, job.id).stage == "tracing"
    metrics = Path(job.workdir) / "metrics.csv"
    metrics.write_text("step,loss,elapsed_s\n1,2.0,150.0\n")  # step 1: 150 s, mostly tracing
    _status(job, "running", 1, "training")
    p = _seen(store, job.id)
    assert (p.stage, p.step) == ("training", 1)
    assert p.eta_s is None and p.text == "training: step 1/30"  # never from the first step
    with open(metrics, "a") as f:
        f.write("2,1.9,151.5\n3,1.8,152.0\n,,\n")  # steps 2-3: 1 s each; an evaluation row
    _status(job, "running", 3, "training")
    p = _seen(store, job.id)
    assert p.seconds_per_step == 1.0 and p.eta_s == 27.0
    assert p.text == "training: step 3/30, about 27s left"
    (Path(job.workdir) / "status.json").unlink()  # being replaced at this moment
    p = _seen(store, job.id)
    assert (p.stage, p.step) == ("training", 3)  # forward only
    _status(job, "running", 4, "training", seconds_per_step=2.0)  # the trainer's own timing
    assert _seen(store, job.id).eta_s == 52.0
    _status(job, "finished", 30, "finished")
    assert _seen(store, job.id).stage == "saving"


def test_a_new_start_of_the_process_starts_its_stages_again(tmp_path):
    """A resume is a new attempt; a requeued Slurm job writes a new header within its attempt."""
    store = JobStore(tmp_path)
    job = _running(store, tmp_path, "train", "tune")
    _status(job, "running", 7, "training")
    assert _seen(store, job.id).stage == "training"
    _log(job, f"# job {job.id} attempt 1: pdl train (Slurm job 5, restart 1, on node1)\n")
    _status(job, "starting", 7, "tracing the training step")
    assert _seen(store, job.id).stage == "tracing"
    store.update(job.id, attempts=2, started_at=time.time() + 5)  # resumed; status.json is older
    _log(job, f"# job {job.id} attempt 2: pdl train\n")
    p = _seen(store, job.id)
    assert (p.stage, p.state) == ("starting", None)


def test_phase_words_map_to_stages_and_unknown_ones_say_nothing():
    assert [stage_of(w) for w in ("checking the data set", "tracing the training step")] == [
        "loading",
        "tracing",
    ]
    assert stage_of("saving the model bundle") == "saving" and stage_of("training") == "training"
    assert stage_of("thinking") is None and stage_of(None) is None


def test_the_phase_prefix_is_the_trainers():
    """The same words as training.run_files, which the jobs read without TensorFlow (the training
    package loads its heavy parts on first use)."""
    import subprocess
    import sys

    code = (
        "import sys; from panoptic_deeplab.training.run_files import PHASE_PREFIX; "
        "print(PHASE_PREFIX); print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    prefix, tensorflow = out.stdout.splitlines()
    assert PHASE_PREFIX == prefix and tensorflow == "False"


# -- the registry of a work directory -------------------------------------------------------------


def test_models_whose_folder_is_gone_are_reported_missing_and_can_be_forgotten(tmp_path):
    store = JobStore(tmp_path / "work")
    kept, gone = tmp_path / "kept", tmp_path / "gone"
    kept.mkdir()
    gone.mkdir()
    store.register_model(kept, "kept")
    store.register_model(gone, "gone", base_model="deeplab2 checkpoint")
    gone.rmdir()
    assert [m.name for m in store.models()] == ["kept"]  # what may be offered for a job
    everything = store.models(include_missing=True)
    assert [(m.name, m.missing) for m in everything] == [("gone", True), ("kept", False)]
    listed = subprocess.run(
        [sys.executable, "-m", "panoptic_deeplab", "jobs", "--root", str(tmp_path / "work")]
        + ["models"],
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    assert f"gone  {gone}  MISSING: its folder is gone" in listed.stdout
    assert store.forget_model(gone) and not store.forget_model(gone)
    assert [m.name for m in store.models(include_missing=True)] == ["kept"]
    assert store.forget_model(store.model_at(kept).id) and store.models() == []
    assert JobStore(tmp_path / "other").models() == []  # a registry belongs to its work directory


def test_a_base_that_is_not_a_bundle_is_not_offered_for_evaluation(tmp_path):
    store = JobStore(tmp_path / "work")
    base = tmp_path / "base"
    base.mkdir()
    (tmp_path / "tuned").mkdir()
    imported = store.register_model(tmp_path / "tuned", base_model="deeplab2 checkpoint")
    assert not imported.base_is_bundle
    tuned = store.register_model(tmp_path / "tuned", base_model=str(base))
    assert not tuned.base_is_bundle  # a folder, but no bundle in it
    (base / "bundle.json").write_text("{}")
    assert tuned.base_is_bundle


def test_an_import_without_a_work_directory_registers_nowhere(tmp_path, monkeypatch):
    from panoptic_deeplab.deeplab2.importer import _register

    monkeypatch.setenv("PDL_WORKDIR", str(tmp_path / "default"))
    (tmp_path / "bundle").mkdir()
    assert _register(tmp_path / "bundle", None, print) is None
    assert JobStore(tmp_path / "default").models() == []
    assert _register(tmp_path / "bundle", tmp_path / "work", print) == tmp_path / "work"
    (record,) = JobStore(tmp_path / "work").models()
    assert record.base_model == "deeplab2 checkpoint" and not record.base_is_bundle
