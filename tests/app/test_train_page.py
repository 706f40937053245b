"""AppTest suite for the Train page: start a real `pdl train` job from the form and cancel it, bad
input reported without starting anything, progress / loss curves / log from the run's own files
(written with the trainer's RunFiles), and registered models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from panoptic_deeplab import jobs
from panoptic_deeplab.jobs import process
from panoptic_deeplab.training.run_files import RunFiles
from tests.app import apptest_utils as u

PAGE = str(u.APP_DIR / "pages" / "train.py")


@pytest.fixture
def env(monkeypatch, tmp_path):
    data = tmp_path / "data"
    (data / "annotations").mkdir(parents=True)  # a folder is all the form checks; the job reads it
    u.set_app_env(monkeypatch, tmp_path, data=data)
    return tmp_path / "work", data


ROOT_DIR = Path(__file__).resolve().parents[2]


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def _start(at: AppTest, steps: int = 2, overrides: str = "") -> AppTest:
    at.selectbox(key="base_model").set_value("none: train from scratch")  # tiny config, no base
    at.selectbox(key="config").set_value("synthetic/tiny")
    at.number_input(key="steps").set_value(steps)
    at.text_area(key="overrides").set_value(overrides)
    at.text_input(key="job_name").set_value("my tune")
    next(b for b in at.button if b.label == "Start fine-tune").click()
    return _run(at)


def test_the_empty_page_offers_the_form_and_the_detected_devices(env):
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    assert "No fine-tune yet" in " ".join(c.value for c in at.caption)
    base = at.selectbox(key="base_model")
    assert "none: train from scratch" in base.options
    shipped = sorted((ROOT_DIR / "assets" / "models").glob("*/bundle.json"))
    # The shipped demo model is the default base when one exists; else training starts from scratch.
    expected = shipped[0].parent.name if shipped else "none: train from scratch"
    assert base.value.startswith(expected)
    assert "synthetic/tiny" in at.selectbox(key="config").options
    if jobs.detect_gpus():
        assert at.multiselect(key="gpus").value
    else:
        assert "No GPU detected" in at.info[0].value


def test_review_exports_are_offered_but_never_a_half_written_one(env):
    from panoptic_deeplab.review import EXPORT_MARKER

    exports = env[0] / "exports"
    for name in ("fixed", ".fixed.tmp-999999999"):  # the second: what a killed export leaves
        (exports / name / "annotations").mkdir(parents=True)
    (exports / "fixed" / EXPORT_MARKER).write_text("{}")
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    options = at.selectbox(key="dataset_choice").options
    assert "fixed  (review export)" in options
    assert not [o for o in options if "tmp-" in o]


def test_a_bad_override_is_reported_and_starts_nothing(env):
    workdir, _ = env
    at = _start(
        _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT)), overrides="train.batch_sise=2"
    )
    assert "batch_sise" in at.error[0].value
    assert jobs.JobStore(workdir).list() == []
    at = _start(at, overrides="train.batch_size=2; rm -rf ~")
    assert "shell metacharacters" in at.error[0].value
    assert jobs.JobStore(workdir).list() == []


def test_start_a_fine_tune_then_cancel_it(env):
    workdir, data = env
    at = _start(
        _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT)), overrides="train.batch_size=2"
    )
    (job,) = jobs.JobStore(workdir).list()
    assert job.state == jobs.RUNNING and job.name == "my-tune"
    assert job.argv[:6] == [
        "train",
        "--config",
        "synthetic/tiny",
        "--dataset",
        str(data),
        "--workdir",
    ]
    assert job.argv[7:] == ["--steps", "2", "--set", "train.batch_size=2"]
    assert Path(job.workdir).parent == (workdir / "runs").resolve()
    at.button(key=f"cancel-{job.id}").click()
    at = _run(at)
    job = jobs.JobStore(workdir).get(job.id)
    assert job.state == jobs.CANCELLED and not process._alive(job.pid, job.pid_start)
    assert at.button(key=f"resume-{job.id}")  # a cancelled job can be resumed


def test_progress_loss_curves_log_and_models(env):
    workdir, data = env
    store = jobs.JobStore(workdir)
    job = store.cancel(
        store.submit(
            [
                "train",
                "--config",
                "synthetic/tiny",
                "--dataset",
                str(data),
                "--workdir",
                str(workdir / "runs" / "r1"),
            ],
            name="r1",
        ).id
    )
    files = RunFiles(job.workdir, total_steps=40)  # what `pdl train` writes while it runs
    files.start_metrics(0)
    for step, loss in ((10, 2.0), (20, 1.5)):
        files.append_metrics(
            {
                "step": step,
                "loss": loss,
                "semantic_loss": loss / 2,
                "center_loss": 0.1,
                "offset_loss": 0.3,
                "learning_rate": 0.003,
            }
        )
    files.append_metrics({"step": 20, "pq": 0.25, "miou": 0.5})
    files.status("running", 20)
    bundle = workdir / "runs" / "r1" / "model"
    bundle.mkdir()
    store.register_model(bundle, "r1", job_id=job.id, base_model="/models/base", dataset=str(data))

    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    assert at.expander[0].label.endswith("step 20/40")
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [t["name"] for t in fig["data"]] == [
        "total",
        "semantic × 1",
        "center × 200",
        "offset × 0.01",
    ]
    assert list(u.plotly_array(fig["data"][0]["y"])) == [2.0, 1.5]
    assert at.get("progress")[0].proto.value == 50
    assert {m.label: m.value for m in at.metric}["loss"] == "1.5"
    evals = at.dataframe[0].value
    assert list(evals["pq"]) == ["0.250"] and list(evals["sq"]) == ["–"]  # never "None"
    models = at.dataframe[-1].value
    assert list(models["name"]) == ["r1 (job 1)"] and list(models["base"]) == ["base"]
    assert "r1 (job 1)" in at.selectbox(key="base_model").options  # ready to fine-tune further

    at.toggle(key=f"log-{job.id}").set_value(True)
    at = _run(at)
    assert "# job 1 attempt 1: pdl train" in at.code[0].value
    assert at.get("download_button")[0].proto.label == "Download the whole log"


def test_a_fine_tuned_model_is_compared_with_its_base_per_class(env):
    """Results in the Evaluate page's cache (made here with the library's own evaluators) give
    per-class deltas; a missing one offers to evaluate, as a job."""
    import numpy as np

    from panoptic_deeplab.app.components import eval_results as er
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.evaluation.coco_io import pq_from_label_maps
    from panoptic_deeplab.evaluation.semantic import mean_iou

    workdir, data = env
    (data / "annotations" / "panoptic_val.json").write_text("{}")
    spec = get_dataset_spec("synthetic")
    car = spec.class_names.index("car")
    gt = np.zeros((20, 20), np.int64)  # road ...
    gt[5:10, 5:10] = car * spec.label_divisor + 1  # ... and a 25-pixel car
    missed = np.zeros_like(gt)  # the fine-tuned model paints the car as road

    def result(pred):
        sem = lambda m: m // spec.label_divisor  # noqa: E731
        return {
            "panoptic": pq_from_label_maps([gt], [pred], spec),
            "semantic": mean_iou([sem(gt)], [sem(pred)], spec.num_classes, spec.ignore_label),
        }

    base, tuned = _bundle(workdir / "base-model"), _bundle(workdir / "tuned-model")
    store = jobs.JobStore(workdir)
    store.register_model(tuned, "tuned", base_model=str(base), dataset=str(data))

    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    button = at.button(key="evaluate-1")
    assert button.label == "Evaluate base and fine-tuned on data/val"
    button.click()
    at = _run(at)
    launched = store.list(kind="evaluate")
    try:
        assert sorted(j.argv[2] for j in launched) == sorted([str(base), str(tuned)])
        assert all(j.argv[3:7] == ["--dataset", str(data), "--split", "val"] for j in launched)
        # The jobs fail within a second here (empty model folders; `pdl evaluate` checks the
        # classes before TensorFlow starts): while one still runs the page says so, and no rerun
        # launches more.
        if any(store.refresh(j.id).state == jobs.RUNNING for j in launched):
            assert "Evaluating" in " ".join(c.value for c in at.caption)
        at = _run(at)
        assert len(store.list(kind="evaluate")) == 2
    finally:
        for j in launched:
            store.cancel(j.id, grace_s=10)

    results_dir = workdir / "results"
    results_dir.mkdir(exist_ok=True)  # the launch above made it
    er.result_path(results_dir, base, data, "val", 0).write_text(json.dumps(result(gt)))
    er.result_path(results_dir, tuned, data, "val", 0).write_text(json.dumps(result(missed)))
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    table = at.dataframe[-1].value.set_index("class")
    assert table.loc["car", "Δ PQ"] == -100.0  # TP -> FN
    assert table.loc["road", "Δ PQ"] == pytest.approx(
        100 * 375 / 400 - 100, abs=0.01
    )  # IoU 1 -> 375/400
    fig = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert fig["layout"]["title"]["text"] == "Δ PQ per class"


def test_an_imported_deeplab2_model_is_offered_as_a_base(env):
    """`pdl import deeplab2` lists its bundle in the app's work directory, so the form offers it."""
    from panoptic_deeplab.deeplab2.importer import import_deeplab2

    workdir, _ = env
    fixtures = ROOT_DIR / "tests" / "fixtures" / "deeplab2"
    bundle = workdir / "imported" / "authors_mnv3s"
    import_deeplab2(
        fixtures / "ckpt_mnv3s_os16",
        str(fixtures / "mnv3s_os16.textproto"),
        bundle,
        app_root=workdir,  # registered in this work directory only when it is named
        log=lambda _: None,
    )
    at = _run(AppTest.from_file(PAGE, default_timeout=60))
    assert "authors_mnv3s" in at.selectbox(key="base_model").options


# -- curves, phases, job lists and logs that read right (issue 15) -------------------------------

TF_STARTUP = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796157602.145986   13558 port.cc:153] oneDNN custom operations are on. "
    "You may see slightly different numerical results due to floating-point round-off errors. "
    "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n"
    "I0000 00:00:1796157602.146281   13558 cudart_stub.cc:31] Could not find cuda drivers on your "
    "machine, GPU will not be used.\n"
    "E0000 00:00:1796157614.774138   13558 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)\n"
)


def _record(
    store, name: str, kind: str, state: str, workdir: Path, pid=None, pid_start=None
) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    with store._connect() as db:
        cur = db.execute(
            "INSERT INTO jobs"
            " (kind, name, argv, workdir, log_path, state, pid, pid_start, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (
                kind,
                name,
                json.dumps([kind]),
                str(workdir),
                str(workdir / "job.log"),
                state,
                pid,
                pid_start,
            ),
        )
        return cur.lastrowid


def test_finished_jobs_offer_no_resume_and_evaluations_are_listed_apart(env):
    workdir, _ = env
    store = jobs.JobStore(workdir)
    done = _record(store, "done", "train", jobs.SUCCEEDED, workdir / "runs" / "done")
    failed = _record(store, "broke", "train", jobs.FAILED, workdir / "runs" / "broke")
    _record(store, "evaluate demo", "evaluate", jobs.SUCCEEDED, workdir / "jobs" / "3")
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    headers = [h.value for h in at.subheader]
    assert headers.index("Fine-tunes") < headers.index("Evaluations and other jobs")
    assert not [b for b in at.button if b.key == f"resume-{done}"]
    assert [b for b in at.button if b.key == f"resume-{failed}"]
    labels = [e.label for e in at.expander]
    assert labels.index(f"#{failed} broke · failed") < labels.index("#3 evaluate demo · succeeded")


def test_a_short_job_draws_a_curve_on_axes_from_its_data(env):
    workdir, _ = env
    store = jobs.JobStore(workdir)
    job = store.get(_record(store, "short", "train", jobs.SUCCEEDED, workdir / "runs" / "short"))
    files = RunFiles(job.workdir, total_steps=6)
    files.start_metrics(0)
    for step, loss in ((2, 1.30), (4, 1.10), (6, 1.05)):
        files.append_metrics(
            {
                "step": step,
                "loss": loss,
                "semantic_loss": loss - 0.5,
                "center_loss": 0.002,  # x 200 = 0.4
                "offset_loss": 30.0,  # x 0.01 = 0.3
            }
        )
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert (
        fig["layout"]["yaxis"]["type"] == "linear"
    )  # 0.3 .. 1.3: no decade to spread on a log axis
    lo, hi = fig["layout"]["xaxis"]["range"]
    assert 1 <= lo < 2 and 6 < hi <= 7
    assert len(u.plotly_array(fig["data"][0]["y"])) == 3


def test_a_running_job_shows_its_phase_before_the_first_step(env):
    import subprocess

    workdir, _ = env
    store = jobs.JobStore(workdir)
    sleeper = subprocess.Popen(["sleep", "60"])  # stands in for the job's live process
    try:
        run = workdir / "runs" / "warming"
        job_id = _record(
            store,
            "warming",
            "train",
            jobs.RUNNING,
            run,
            sleeper.pid,
            process._process_start(sleeper.pid),
        )
        at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
        assert (
            at.expander[0].label == f"#{job_id} warming · running · starting (loading TensorFlow)"
        )
        (run / "job.log").write_text(
            f"# job {job_id} attempt 1: pdl train\nphase: checking the data set\n"
            "phase: building the model\n"
        )  # what `pdl train` prints first
        at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
        assert at.expander[0].label == f"#{job_id} warming · running · building the model"
        RunFiles(run, total_steps=60).status("starting", 0, phase="tracing the training step")
        at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
        assert at.expander[0].label == f"#{job_id} warming · running · tracing the training step"
        assert "Tracing the training step… (step 0 / 60)" in at.get("progress")[0].proto.text
        RunFiles(run, total_steps=60).status("running", 1, phase="training")
        at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
        assert at.expander[0].label == f"#{job_id} warming · running · training: step 1/60"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_log_hides_tensorflow_start_up_noise_and_wraps(env):
    workdir, _ = env
    store = jobs.JobStore(workdir)
    job = store.get(_record(store, "noisy", "train", jobs.FAILED, workdir / "runs" / "noisy"))
    long_line = "error: " + "x" * 400
    Path(job.log_path).write_text(
        f"# job {job.id} attempt 1: pdl train\n{TF_STARTUP}step 1/2 loss 1.0\n{long_line}\n"
    )
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    at.toggle(key=f"log-{job.id}").set_value(True)
    at = _run(at)
    shown = at.code[0]
    assert "cuInit" not in shown.value and "oneDNN" not in shown.value and "absl" not in shown.value
    assert "step 1/2 loss 1.0" in shown.value and long_line in shown.value
    assert shown.proto.wrap_lines
    assert any("4 TensorFlow start-up line(s) hidden" in c.value for c in at.caption)
    at.toggle(key=f"log-all-{job.id}").set_value(True)
    at = _run(at)
    assert "cuInit" in at.code[0].value  # all of it, on request


# -- issue 28: charts and tables that say what they show ------------------------------------------


def test_the_loss_chart_plots_the_weighted_terms_that_add_up_to_the_total(env):
    from panoptic_deeplab.config import load_config, save_config

    workdir, _ = env
    store = jobs.JobStore(workdir)
    job = store.get(_record(store, "w", "train", jobs.SUCCEEDED, workdir / "runs" / "w"))
    config = load_config("synthetic/tiny", ["loss.center_weight=100"])
    save_config(config, Path(job.workdir) / "config.yaml")
    files = RunFiles(job.workdir, total_steps=4)
    files.start_metrics(0)
    for step, (sem, center, offset) in ((2, (1.0, 0.01, 20.0)), (4, (0.5, 0.004, 10.0))):
        total = sem + 100 * center + 0.01 * offset
        files.append_metrics(
            {
                "step": step,
                "loss": total,
                "semantic_loss": sem,
                "center_loss": center,
                "offset_loss": offset,
            }
        )
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert fig["layout"]["title"]["text"] == "Losses: the total is the sum of the weighted terms"
    traces = {t["name"]: u.plotly_array(t["y"]).astype(float) for t in fig["data"]}
    assert set(traces) == {"total", "semantic × 1", "center × 100", "offset × 0.01"}
    parts = traces["semantic × 1"] + traces["center × 100"] + traces["offset × 0.01"]
    assert parts == pytest.approx(traces["total"])


def test_a_model_without_a_job_shows_no_none_in_the_table(env):
    workdir, _ = env
    bundle = workdir / "imported" / "m"
    bundle.mkdir(parents=True)
    jobs.JobStore(workdir).register_model(bundle, "m")
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    table = at.dataframe[-1].value
    assert list(table["job"]) == ["–"]
    assert not table.isna().any().any() and "None" not in table.astype(str).values


# -- issue 28: a registry, a resume, a progress and a warning a user can trust -------------------


def _bundle(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "bundle.json").write_text("{}")
    return path


def test_a_model_whose_folder_is_gone_is_shown_missing_offered_for_nothing_and_forgotten(env):
    import shutil

    workdir, data = env
    store = jobs.JobStore(workdir)
    gone = _bundle(workdir / "imported" / "gone")
    store.register_model(gone, "gone", base_model=str(_bundle(workdir / "base")), dataset=str(data))
    shutil.rmtree(gone)
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    table = at.dataframe[-1].value
    assert list(table["folder"]) == ["missing"]
    assert not any("gone" in o for o in at.selectbox(key="base_model").options)
    assert not [b for b in at.button if b.key and b.key.startswith("evaluate-")]
    assert any("gone** is missing" in w.value for w in at.warning)
    at.button(key="forget-1").click()
    at = _run(at)
    assert store.models(include_missing=True) == []
    assert "A model appears here" in " ".join(c.value for c in at.caption)


def test_a_base_that_is_not_a_bundle_is_not_offered_for_evaluation(env):
    workdir, data = env
    (data / "annotations" / "panoptic_val.json").write_text("{}")
    checkpoint = workdir / "deeplab2-ckpt"
    checkpoint.mkdir(parents=True)
    store = jobs.JobStore(workdir)
    store.register_model(_bundle(workdir / "tuned"), "tuned", base_model=str(checkpoint))
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    assert not [b for b in at.button if b.key and b.key.startswith("evaluate-")]
    assert any("is not a model bundle here" in c.value for c in at.caption)


def test_the_card_says_what_resume_will_do(env):
    workdir, _ = env
    store = jobs.JobStore(workdir)
    early = _record(store, "early", "train", jobs.CANCELLED, workdir / "runs" / "early")
    RunFiles(workdir / "runs" / "early", total_steps=30).status("stopped", 3)
    late = _record(store, "late", "train", jobs.FAILED, workdir / "runs" / "late")
    RunFiles(workdir / "runs" / "late", total_steps=30).status("failed", 14)
    ckpt = workdir / "runs" / "late" / "checkpoints"
    ckpt.mkdir()
    (ckpt / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-12"\nall_model_checkpoint_paths: "ckpt-6"\n'
        'all_model_checkpoint_paths: "ckpt-12"\n'
    )
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    captions = [c.value for c in at.caption]
    assert at.button(key=f"resume-{early}") and at.button(key=f"resume-{late}")
    assert (
        "Resume starts over at step 1: this run wrote no checkpoint (it stopped at step 3 of 30)."
        in captions
    )
    assert "Resume continues from step 12 of 30, the run's last checkpoint." in captions


def test_a_training_job_shows_an_eta_from_the_steps_actually_timed(env):
    import subprocess

    workdir, _ = env
    store = jobs.JobStore(workdir)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        run = workdir / "runs" / "timed"
        job_id = _record(
            store, "timed", "train", jobs.RUNNING, run, sleeper.pid,
            process._process_start(sleeper.pid),
        )  # fmt: skip
        files = RunFiles(run, total_steps=60)
        files.start_metrics(0)
        # The first logged step took 150 s (tracing); then 10 steps in 20 s: 2 s a step.
        for step, elapsed in ((10, 150.0), (20, 170.0)):
            files.append_metrics({"step": step, "loss": 1.0, "elapsed_s": elapsed})
        files.status("running", 20, phase="training")
        at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
        label = f"#{job_id} timed · running · training: step 20/60, about 1m20s left"
        assert at.expander[0].label == label
        assert at.get("progress")[0].proto.text == "training: step 20/60, about 1m20s left"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_base_result_made_on_the_evaluate_page_is_reused(env):
    from panoptic_deeplab.app.components import eval_results as er
    from panoptic_deeplab.app.components.error_analysis import ORACLES

    workdir, data = env
    (data / "annotations" / "panoptic_val.json").write_text("{}")
    base, tuned = _bundle(workdir / "base-model"), _bundle(workdir / "tuned-model")
    store = jobs.JobStore(workdir)
    store.register_model(tuned, "tuned", base_model=str(base), dataset=str(data))
    results = workdir / "results"
    results.mkdir()
    # The Evaluate page evaluated the base with oracles: the same scores, under another name.
    import numpy as np

    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.evaluation.coco_io import pq_from_label_maps
    from panoptic_deeplab.evaluation.semantic import mean_iou

    spec = get_dataset_spec("synthetic")
    gt = np.zeros((8, 8), np.int64)
    result = {  # made with the library's own evaluators
        "panoptic": pq_from_label_maps([gt], [gt], spec),
        "semantic": mean_iou([gt], [gt], spec.num_classes, spec.ignore_label),
    }
    er.result_path(results, base, data, "val", 0, ORACLES).write_text(json.dumps(result))
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    assert at.button(key="evaluate-1").label == "Evaluate fine-tuned on data/val"


def test_a_fine_tune_on_two_images_is_warned_about_before_it_starts(env, tmp_path):
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    workdir, _ = env
    small = make_synthetic_dataset(
        tmp_path / "tiny-set", num_train=2, num_val=3, height=33, width=65, workers=1
    )
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    at.selectbox(key="dataset_choice").set_value("other…")
    at.text_input(key="dataset_other").set_value(str(small))
    at = _start(at)
    warning = next(w.value for w in at.warning if "training image" in w.value)
    assert "**tiny-set has only 2 training images** (3 val)" in warning
    assert "fewer than 20 images" in warning
    assert jobs.JobStore(workdir).list() == []  # nothing started yet
    at.button(key="start_anyway").click()
    at = _run(at)
    (job,) = jobs.JobStore(workdir).list()
    try:
        assert job.dataset == str(small)
    finally:
        jobs.JobStore(workdir).cancel(job.id, grace_s=5)
