"""AppTest suite for the Evaluate page.

The results file is made by the library's own evaluation (``evaluation.evaluate_split.Evaluation``,
what `pdl evaluate --out` writes) on a tiny synthetic data set, with the stand-in model of
fakes.py as the predictor; the page must show exactly those numbers. A slow test launches a real
`pdl evaluate` job from the page with a tiny real bundle.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.app import apptest_utils as u
from tests.app.fakes import FakePredictor


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(
        tmp_path_factory.mktemp("eval") / "data",
        num_train=1,
        num_val=3,
        height=65,
        width=97,
        workers=1,
    )


def evaluate_with_fake(data: Path, model_dir: Path) -> dict:
    """What `pdl evaluate --out` writes, computed by the library for the fake model's
    predictions."""
    from panoptic_deeplab.datasets.readers import open_dataset
    from panoptic_deeplab.evaluation.evaluate_split import Evaluation

    fake = FakePredictor()
    reader = open_dataset(data, "val")
    evaluation = Evaluation(fake.spec, ap="coco")
    for i, example in enumerate(reader):
        out = fake(reader.load_image(i))
        segments = [
            SimpleNamespace(id=int(v), score=0.8, isthing=fake.spec.is_thing(int(v) // 1000))
            for v in np.unique(out.panoptic)
        ]
        evaluation.add(
            example.image_id,
            Path(example.image_path).name,
            reader.load_panoptic(i),
            out_with(out, segments),
        )
    result = evaluation.result()
    result.model, result.dataset, result.split = str(model_dir), str(data), "val"
    return result.to_json()


def out_with(out, segments):
    return SimpleNamespace(panoptic=out.panoptic, semantic=out.semantic, segments=segments)


@pytest.fixture
def app(monkeypatch, tmp_path, dataset):
    from panoptic_deeplab.app.components import eval_results as er
    from panoptic_deeplab.app.components import model_io

    model_dir = tmp_path / "fake-model"
    model_dir.mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=model_dir, data=dataset)
    monkeypatch.setattr(model_io, "load_predictor", lambda path: FakePredictor())
    st.cache_data.clear()
    result = evaluate_with_fake(dataset, model_dir)
    path = er.result_path(tmp_path / "work" / "results", model_dir, dataset, "val", 0)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(result))
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT)
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception, at.exception
    return at, result, path


def test_without_results_the_page_offers_to_run_one(monkeypatch, tmp_path, dataset):
    u.set_app_env(monkeypatch, tmp_path, model=None, data=dataset)
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT)
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception
    assert any("No evaluation yet" in i.value for i in at.info)


def test_summary_and_per_class_table_show_the_results(app):
    at, result, _ = app
    metrics = {m.label: m.value for m in at.metric}
    pq = result["panoptic"]["All"]["pq"]
    assert metrics["PQ"] == f"{100 * pq:.1f}"
    assert metrics["mIoU"] == f"{100 * result['semantic']['miou']:.1f}"
    table = at.dataframe[0].value
    per_class = result["panoptic"]["per_class"]
    assert list(table["class"]) == [per_class[str(i)]["name"] for i in range(8)]
    assert list(table["kind"]) == ["stuff"] * 5 + ["thing"] * 3
    car = table.set_index("class").loc["car"]
    assert (car["TP"], car["FP"], car["FN"]) == tuple(per_class["6"][k] for k in ("tp", "fp", "fn"))
    ious = result["semantic"]["per_class_iou"]
    assert np.allclose(
        table["IoU"].astype(float),
        [np.nan if v is None else 100 * v for v in ious],
        atol=0.01,
        equal_nan=True,
    )
    # No "None" anywhere (issue 28 item 16): stuff classes have no AP, shown as a dash.
    assert list(table["AP"].iloc[:5]) == ["–"] * 5
    assert all(v == "–" or float(v) >= 0 for v in table["AP"])
    assert all(len(m.label) <= 9 and m.value not in ("None", "nan") for m in at.metric)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert [c["data"][0]["type"] for c in charts[:3]] == ["bar", "bar", "heatmap"]
    confusion = u.plotly_array(charts[2]["data"][0]["customdata"])
    assert np.array_equal(confusion.reshape(8, 8), np.asarray(result["semantic"]["confusion"]))


def test_drill_down_lists_worst_images_and_segment_errors(app):
    at, result, _ = app
    at.selectbox(key="drill_class").set_value("car").run()
    assert not at.exception
    worst = next(d.value for d in at.dataframe if "errors" in d.value.columns)
    # count the car errors per image straight from the results file
    expected = {}
    for image in result["per_image"]:
        fn = sum(s["status"] == "missed" for s in image["gt_segments"] if s["category_id"] == 6)
        fp = sum(
            s["status"] == "false_positive" for s in image["pred_segments"] if s["category_id"] == 6
        )
        if any(s["category_id"] == 6 for s in image["gt_segments"] + image["pred_segments"]):
            expected[image["file_name"]] = fn + fp
    assert dict(zip(worst["image"], worst["errors"])) == expected
    assert list(worst["errors"]) == sorted(worst["errors"], reverse=True)
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [f["layout"]["title"]["text"] for f in figs if f["layout"].get("title")]
    assert "Ground truth" in titles and "Prediction" in titles
    segments = next(d.value for d in at.dataframe if "error type" in d.value.columns)
    first = result["per_image"][
        [i["file_name"] for i in result["per_image"]].index(worst["image"].iloc[0])
    ]
    cars = [s for s in first["gt_segments"] + first["pred_segments"] if s["category_id"] == 6]
    assert len(segments) == len(cars)
    assert set(segments["result"]) <= {"TP", "FN", "FP", "ignored (void/crowd)", "crowd"}


def test_compare_two_models_shows_per_class_deltas(app):
    at, result, path = app
    better = json.loads(path.read_text())
    better["model"] = str(Path(better["model"]).with_name("finetuned"))
    Path(better["model"]).mkdir()
    better["panoptic"]["per_class"]["6"]["pq"] = (
        result["panoptic"]["per_class"]["6"]["pq"] or 0
    ) + 0.25
    path.with_name("finetuned.json").write_text(json.dumps(better))
    at.run()
    at.selectbox(key="cmp_a").set_value(str(path)).run()
    at.selectbox(key="cmp_b").set_value(str(path.with_name("finetuned.json"))).run()
    assert not at.exception
    deltas = next(d.value for d in at.dataframe if "Δ PQ" in d.value.columns).set_index("class")
    assert deltas.loc["car", "Δ PQ"] == pytest.approx(25.0, abs=0.01)
    assert deltas.drop(index="car")["Δ PQ"].fillna(0).abs().max() == 0


def test_a_broken_results_file_gives_a_message(app):
    at, _, path = app
    path.with_name("zz-broken.json").write_text("{not json")
    at.run()
    assert not at.exception
    assert any("cannot read these results" in e.value for e in at.error)


@pytest.mark.slow
def test_evaluate_job_runs_pdl_evaluate_and_shows_results(monkeypatch, tmp_path, dataset):
    import keras

    from panoptic_deeplab.bundle import save_bundle
    from panoptic_deeplab.config import load_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.model.builder import build_model

    keras.utils.set_random_seed(0)
    spec = get_dataset_spec("synthetic")
    config = load_config("synthetic/tiny")
    bundle = save_bundle(
        tmp_path / "tiny", build_model(config, num_classes=spec.num_classes), config, spec
    )
    u.set_app_env(monkeypatch, tmp_path, model=bundle, data=dataset)
    st.cache_data.clear()
    at = AppTest.from_file(u.ENTRY, default_timeout=240)
    at.switch_page("pages/evaluate.py").run()
    at.button(key="eval_start").click().run()
    assert not at.exception and not at.error
    deadline = time.monotonic() + 240
    while not at.metric and time.monotonic() < deadline:
        time.sleep(3)
        at.run()
        assert not at.error, [e.value for e in at.error]
    assert {m.label for m in at.metric} >= {"PQ", "SQ", "RQ", "mIoU", "AP", "AP50 (CS)"}
    results = list((tmp_path / "work" / "results").glob("*.json"))
    assert len(results) == 1 and json.loads(results[0].read_text())["num_images"] == 3


@pytest.mark.slow
def test_a_running_evaluation_can_be_cancelled(monkeypatch, tmp_path, dataset):
    from panoptic_deeplab import jobs

    # The shipped demo model: the page checks its classes against the data set before it starts the
    # job, which then spends seconds loading TensorFlow; we cancel it first.
    u.set_app_env(monkeypatch, tmp_path, model=SHIPPED, data=dataset)
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT)
    at.switch_page("pages/evaluate.py").run()
    at.button(key="eval_start").click().run()
    job_id = at.session_state["eval_job"]
    store = jobs.JobStore(tmp_path / "work")
    assert store.get(job_id).state == jobs.RUNNING and store.get(job_id).argv[0] == "evaluate"
    at.button(key="eval_cancel").click().run()
    assert store.refresh(job_id).state == jobs.CANCELLED
    assert any("cancelled" in i.value for i in at.info)
    assert not at.exception


# -- failures shown, causes named, comparisons the right way round (issue 15) ---------------------

SHIPPED = u.ROOT / "assets" / "models" / "synthetic_demo"


def _evaluate(at, model: str, root, split: str = "val") -> AppTest:
    at.selectbox(key="eval_model").set_value(model)
    at.text_input(key="eval_data").set_value(str(root)).run()
    at.button(key="eval_start").click().run()
    assert not at.exception, at.exception
    return at


def _warnings(at) -> str:
    return " ".join(w.value for w in at.warning)


def test_a_folder_that_is_no_data_set_is_named_and_the_old_result_marked(app, tmp_path):
    at, _, _ = app
    (tmp_path / "photos").mkdir()
    _evaluate(at, "fake-model", tmp_path / "photos")
    text = " ".join(e.value for e in at.error)
    assert "no data set layout found" in text and "panoptic_val.json" in text
    assert "the result shown is an earlier one" in _warnings(at)
    assert "eval_job" not in at.session_state  # nothing was started


def test_mismatched_classes_are_named_before_anything_runs(app, dataset, tmp_path):

    at, _, _ = app
    data = _shifted(dataset, tmp_path / "shifted")
    _evaluate(at, "synthetic_demo", data)
    text = " ".join(e.value for e in at.error)
    assert (
        "category ids only in the data set: 100 'road'" in text
        and "trained on these classes" in text
    )
    assert "is not in 'categories'" not in text and "eval_job" not in at.session_state


def _shifted(root: Path, out: Path) -> Path:
    """The data set with every category id moved by 100 (consistent: it passes check-dataset)."""
    import shutil

    shutil.copytree(root, out)
    path = out / "annotations" / "panoptic_val.json"
    coco = json.loads(path.read_text())
    for c in coco["categories"]:
        c["id"] += 100
    for ann in coco["annotations"]:
        for s in ann["segments_info"]:
            s["category_id"] += 100
    path.write_text(json.dumps(coco))
    return out


@pytest.mark.slow
def test_a_failed_job_shows_its_own_message_on_the_page(app, dataset, tmp_path):
    """A problem only `pdl evaluate` finds (a missing label PNG): the job's own words, on this
    page."""
    import shutil

    at, _, _ = app
    data = tmp_path / "broken"
    shutil.copytree(dataset, data)
    next((data / "annotations" / "panoptic_val").iterdir()).unlink()
    _evaluate(at, "synthetic_demo", data)
    deadline = time.monotonic() + 120
    while not at.error and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    text = " ".join(e.value for e in at.error)
    assert (
        "Evaluation failed" in text
        and "problem(s) in the data set" in text
        and "exited with status 2" in text
    )
    assert "failed: the result shown is an earlier one" in _warnings(at)


def _result_for(tmp_path, dataset, model_dir: Path, label: str, when: float) -> Path:
    from panoptic_deeplab.app.components import eval_results as er

    model_dir.mkdir(parents=True, exist_ok=True)
    path = er.result_path(tmp_path / "work" / "results", model_dir, dataset, "val", 0, label=label)
    # (where the page names results after the model's label; the page finds a result by its key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(evaluate_with_fake(dataset, model_dir)))
    import os

    os.utime(path, (when, when))
    return path


def _succeeded_job(workdir: Path, name: str) -> int:
    from panoptic_deeplab import jobs

    store = jobs.JobStore(workdir)
    with store._connect() as db:  # a finished `pdl evaluate` job, as the page would have started it
        cur = db.execute(
            "INSERT INTO jobs (kind, name, argv, workdir, log_path, state, exit_code, created_at)"
            " VALUES ('evaluate', ?, '[\"evaluate\"]', ?, ?, 'succeeded', 0, 0)",
            (name, str(workdir), str(workdir / "job.log")),
        )
        return cur.lastrowid


def test_a_new_evaluation_selects_itself_and_compares_base_to_new(app, dataset, tmp_path):
    from panoptic_deeplab import jobs

    at, _, base_path = app  # the fake model's result: shown now
    tuned = tmp_path / "work" / "runs" / "tune-1" / "model"
    tuned.mkdir(parents=True)
    jobs.JobStore(tmp_path / "work").register_model(
        tuned, "tune", job_id=7, base_model=str(tmp_path / "fake-model")
    )
    tuned_path = _result_for(tmp_path, dataset, tuned, "tune (job 7)", time.time() + 10)
    assert tuned_path.name.startswith("tune-job-7__")  # named after the job, not "model"
    at.session_state["eval_job"] = _succeeded_job(tmp_path / "work", "evaluate tune")
    at.session_state["eval_out"] = str(tuned_path)
    at.run()
    assert not at.exception
    assert at.selectbox(key="eval_result").value == str(
        tuned_path
    )  # the new result is the one shown
    assert at.selectbox(key="cmp_a").value == str(
        base_path
    )  # A: the base the fine-tune started from
    assert at.selectbox(key="cmp_b").value == str(tuned_path)  # B: its result
    captions = " ".join(c.value for c in at.caption)
    assert "B − A**: tune (job 7) minus fake-model" in captions
    assert any(
        m.label == "PQ of B (tune (job 7))" and "vs A (fake-model)" in str(m.proto.delta)
        for m in at.metric
    )


def _drawn(at: AppTest, key: str) -> str:
    """The option a browser draws for a picker it mounts after this run (one in a tab opened
    later): the value sent with this run, else the option at the default index. A value sent
    with an earlier run reached no picker that was not drawn then."""
    proto = at.selectbox(key=key).proto
    return proto.raw_value if proto.set_value else list(proto.options)[proto.default]


def test_compare_pickers_draw_the_pair_in_use_after_later_runs(app, dataset, tmp_path):
    """Issue 28, item 1: the fine-tune evaluated before the base (the base's result is newest,
    first in the list); choosing the fine-tune's result sets A = base, B = fine-tune while the
    Compare tab is closed. After any later run, opening the tab showed the base in both."""
    from panoptic_deeplab import jobs

    at, _, base_path = app
    tuned = tmp_path / "work" / "runs" / "tune-1" / "model"
    tuned.mkdir(parents=True)
    jobs.JobStore(tmp_path / "work").register_model(
        tuned, "tune", job_id=7, base_model=str(tmp_path / "fake-model")
    )
    tuned_path = _result_for(tmp_path, dataset, tuned, "tune (job 7)", time.time() - 100)
    at.run()
    assert at.selectbox(key="eval_result").value == str(base_path)  # the newest is shown first
    at.selectbox(key="eval_result").set_value(str(tuned_path)).run()
    labels = dict(zip(map(str, (base_path, tuned_path)), ("fake-model on ", "tune (job 7) on ")))
    for _ in range(3):  # the run that sets the pair, then runs from other clicks
        assert not at.exception
        assert at.selectbox(key="cmp_a").value == str(base_path)
        assert at.selectbox(key="cmp_b").value == str(tuned_path)
        for key in ("cmp_a", "cmp_b", "eval_result"):
            assert _drawn(at, key).startswith(labels[at.selectbox(key=key).value]), key
        assert any("tune (job 7) minus fake-model" in c.value for c in at.caption)
        at.run()


def test_results_of_two_fine_tunes_are_told_apart(app, dataset, tmp_path):
    from panoptic_deeplab import jobs

    at, _, _ = app
    store = jobs.JobStore(tmp_path / "work")
    for job_id in (3, 4):
        bundle = tmp_path / "work" / "runs" / f"finetune-{job_id}" / "model"
        bundle.mkdir(parents=True)
        store.register_model(bundle, "finetune", job_id=job_id)
        _result_for(tmp_path, dataset, bundle, f"finetune (job {job_id})", time.time() + job_id)
    at.run()
    options = at.selectbox(key="eval_result").options
    assert sum(o.startswith("finetune (job 3) on ") for o in options) == 1
    assert sum(o.startswith("finetune (job 4) on ") for o in options) == 1
    assert not any(o.startswith("model on ") for o in options)
    assert {"finetune (job 3)", "finetune (job 4)"} <= set(at.selectbox(key="eval_model").options)


def test_a_cached_result_for_new_settings_is_really_selected(app, dataset, tmp_path):
    at, _, base_path = app
    other = _result_for(
        tmp_path, dataset, tmp_path / "other-model", "other-model", time.time() + 10
    )
    from panoptic_deeplab import jobs

    jobs.JobStore(tmp_path / "work").register_model(tmp_path / "other-model", "other-model")
    at.checkbox(key="eval_oracles").set_value(
        False
    ).run()  # the results here were made without oracles
    for model, expected in (("other-model", other), ("fake-model", base_path)):
        at.selectbox(key="eval_model").set_value(model).run()
        assert any("it is selected below" in s.value for s in at.success)
        assert at.selectbox(key="eval_result").value == str(expected)  # what the message says


# -- prediction sets (issue 23) and the job's phases (issue 28, item 11) --------------------------


def _ground_truth_as_predictions(dataset, folder: Path) -> Path:
    """The split's ground truth written as another tool's predictions: PQ 100."""
    import shutil

    shutil.copytree(dataset / "annotations" / "panoptic_val", folder / "masks")
    json_path = folder / "masks.json"
    shutil.copy(dataset / "annotations" / "panoptic_val.json", json_path)
    return json_path


def test_a_prediction_set_is_evaluated_named_remembered_and_drilled_into(app, dataset, tmp_path):
    from panoptic_deeplab.app.components import eval_results as er

    at, _, model_result = app
    json_path = _ground_truth_as_predictions(dataset, tmp_path / "mask2former-run")
    at.radio(key="eval_what").set_value("a prediction set").run()
    at.text_input(key="eval_pred_json").set_value(str(json_path))
    at.text_input(key="eval_data").set_value(str(dataset)).run()
    assert at.text_input(key="eval_pred_name").placeholder == "mask2former-run"
    at.text_input(key="eval_pred_name").set_value("m2f").run()
    at.button(key="eval_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    deadline = time.monotonic() + 120
    while "m2f" not in str(at.selectbox(key="eval_result").value) and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
        assert not at.error, [e.value for e in at.error]
    result_path = Path(at.selectbox(key="eval_result").value)
    labels = at.selectbox(key="eval_result")
    assert labels.format_func(str(result_path)).startswith("m2f on data/val (3 images")
    assert {m.label: m.value for m in at.metric}["PQ"] == "100.0"
    assert er.known_prediction_sets(tmp_path / "work") == {
        "m2f": {"json": str(json_path), "folder": str(json_path.with_suffix(""))}
    }
    # The drill-down draws the set's own prediction; Compare names the set and the model.
    assert not at.exception and not any("cannot" in e.value for e in at.error)
    assert at.selectbox(key="cmp_b").value == str(result_path)
    assert at.selectbox(key="cmp_a").value == str(model_result)
    assert any("m2f minus fake-model" in c.value for c in at.caption)
    # Remembered: a new session picks it by name and finds its cached result.
    again = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT)
    again.switch_page("pages/evaluate.py").run()
    again.radio(key="eval_what").set_value("a prediction set").run()
    assert again.selectbox(key="eval_pred_pick").value == "m2f"
    assert again.text_input(key="eval_pred_json").value == str(json_path)
    assert any("it is selected below" in s.value for s in again.success)


def test_a_broken_prediction_set_is_named_before_a_job_starts(app, dataset, tmp_path):
    at, _, _ = app
    at.radio(key="eval_what").set_value("a prediction set").run()
    at.text_input(key="eval_pred_json").set_value(str(tmp_path / "nowhere.json"))
    at.text_input(key="eval_data").set_value(str(dataset)).run()
    at.button(key="eval_start").click().run()
    text = " ".join(e.value for e in at.error)
    assert "nowhere.json: predictions JSON not found" in text
    assert "eval_job" not in at.session_state and not at.exception


def test_the_job_progress_shows_the_phase_forward_only():
    from panoptic_deeplab.app.components import eval_results as er

    log = "phase: checking the data set\nphase: predicting\nimages:  50%| 4/8 [00:01<00:01]"
    assert er.job_progress(log) == ("predicting", 0.5, "Predicting: 4/8 images…")
    later = log + "\nphase: computing AP and the error breakdown\n"
    assert er.job_progress(later)[::2] == (
        "computing AP and the error breakdown",
        "Computing AP and the error breakdown…",
    )
    # A tail that no longer holds the phase line (oracles' output pushed it out) stays put.
    earlier = er.job_progress(later)[0]
    phase, fraction, _ = er.job_progress("images: 8/8 [00:02<00:00]", earlier=earlier)
    assert (phase, fraction) == ("computing AP and the error breakdown", 1.0)
    assert er.job_progress("")[0] == "starting"
