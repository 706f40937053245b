"""AppTest suite for the Train page: start a real `pdl train` job from the form and cancel it, bad
input reported without starting anything, progress / loss curves / log from the run's own files
(written with the trainer's RunFiles), and registered models."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import apptest_utils as u
from panoptic_deeplab import jobs
from panoptic_deeplab.training.run_files import RunFiles

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


def test_a_bad_override_is_reported_and_starts_nothing(env):
    workdir, _ = env
    at = _start(_run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT)), overrides="train.batch_sise=2")
    assert "batch_sise" in at.error[0].value
    assert jobs.JobStore(workdir).list() == []
    at = _start(at, overrides="train.batch_size=2; rm -rf ~")
    assert "shell metacharacters" in at.error[0].value
    assert jobs.JobStore(workdir).list() == []


def test_start_a_fine_tune_then_cancel_it(env):
    workdir, data = env
    at = _start(_run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT)), overrides="train.batch_size=2")
    (job,) = jobs.JobStore(workdir).list()
    assert job.state == jobs.RUNNING and job.name == "my-tune"
    assert job.argv[:6] == ["train", "--config", "synthetic/tiny", "--dataset", str(data), "--workdir"]
    assert job.argv[7:] == ["--steps", "2", "--set", "train.batch_size=2"]
    assert Path(job.workdir).parent == (workdir / "runs").resolve()
    at.button(key=f"cancel-{job.id}").click()
    at = _run(at)
    job = jobs.JobStore(workdir).get(job.id)
    assert job.state == jobs.CANCELLED and not jobs._alive(job.pid, job.pid_start)
    assert at.button(key=f"resume-{job.id}")  # a cancelled job can be resumed


def test_progress_loss_curves_log_and_models(env):
    workdir, data = env
    store = jobs.JobStore(workdir)
    job = store.cancel(store.submit(["train", "--config", "synthetic/tiny", "--dataset", str(data),
                                     "--workdir", str(workdir / "runs" / "r1")], name="r1").id)
    files = RunFiles(job.workdir, total_steps=40)  # what `pdl train` writes while it runs
    files.start_metrics(0)
    for step, loss in ((10, 2.0), (20, 1.5)):
        files.append_metrics({"step": step, "loss": loss, "semantic_loss": loss / 2, "center_loss": 0.1,
                              "offset_loss": 0.3, "learning_rate": 0.003})
    files.append_metrics({"step": 20, "pq": 0.25, "miou": 0.5})
    files.status("running", 20)
    bundle = workdir / "runs" / "r1" / "model"
    bundle.mkdir()
    store.register_model(bundle, "r1", job_id=job.id, base_model="/models/base", dataset=str(data))

    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    assert at.expander[0].label.endswith("step 20/40")
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [t["name"] for t in fig["data"]] == ["loss", "semantic_loss", "center_loss", "offset_loss"]
    assert list(u.plotly_array(fig["data"][0]["y"])) == [2.0, 1.5]
    assert at.get("progress")[0].proto.value == 50
    assert {m.label: m.value for m in at.metric}["loss"] == "1.5"
    evals = at.dataframe[0].value
    assert list(evals["pq"]) == [0.25]
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

    from components import eval_results as er
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.evaluation.coco_io import pq_from_label_maps
    from panoptic_deeplab.evaluation.semantic import mean_iou

    workdir, data = env
    (data / "annotations" / "panoptic_val.json").write_text("{}")
    spec = get_dataset_spec("synthetic")
    road, car = 0, spec.class_names.index("car")
    gt = np.zeros((20, 20), np.int64)  # road ...
    gt[5:10, 5:10] = car * spec.label_divisor + 1  # ... and a 25-pixel car
    missed = np.zeros_like(gt)  # the fine-tuned model paints the car as road

    def result(pred):
        sem = lambda m: m // spec.label_divisor  # noqa: E731
        return {"panoptic": pq_from_label_maps([gt], [pred], spec),
                "semantic": mean_iou([sem(gt)], [sem(pred)], spec.num_classes, spec.ignore_label)}

    base, tuned = workdir / "base-model", workdir / "tuned-model"
    base.mkdir(parents=True)
    tuned.mkdir()
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
        assert "Evaluating" in " ".join(c.value for c in at.caption)  # no second launch while they run
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
    assert table.loc["road", "Δ PQ"] == pytest.approx(100 * 375 / 400 - 100, abs=0.01)  # IoU 1 -> 375/400
    fig = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert fig["layout"]["title"]["text"] == "Δ PQ per class"


def test_an_imported_deeplab2_model_is_offered_as_a_base(env):
    """`pdl import deeplab2` lists its bundle in the app's work directory, so the form offers it."""
    from panoptic_deeplab.deeplab2.importer import import_deeplab2

    workdir, _ = env
    fixtures = ROOT_DIR / "tests" / "fixtures" / "deeplab2"
    bundle = workdir / "imported" / "authors_mnv3s"
    import_deeplab2(fixtures / "ckpt_mnv3s_os16", str(fixtures / "mnv3s_os16.textproto"), bundle, log=lambda _: None)
    at = _run(AppTest.from_file(PAGE, default_timeout=60))
    assert "authors_mnv3s" in at.selectbox(key="base_model").options
