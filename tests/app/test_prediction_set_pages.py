"""AppTest suite for prediction sets on the Inspect and Review pages (issue 23): a set written by
`pdl predict` and one written like another tool (random 24-bit ids, shuffled segments, PIL PNGs:
the evaluation tests' own writer) are opened from the page and shown from their files, with no
model and no TensorFlow; deeplab2's raw PNGs show the maps they hold; a broken JSON is named and
the page keeps running; Review ranks a split against another tool's files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.app import apptest_utils as u
from tests.core.evaluation.synth import write_pil_png  # the imitation of another tool's writer
from tests.core.evaluation.test_prediction_sets import (
    ground_truth,
    random_ids,
    write_raw,
    write_set,
)

SHIPPED = u.ROOT / "assets" / "models" / "synthetic_demo"
REVIEW = str(u.APP_DIR / "pages" / "review.py")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(
        tmp_path_factory.mktemp("sets") / "data",
        num_train=0,
        num_val=2,
        height=33,
        width=49,
        seed=0,
        workers=1,
    )


@pytest.fixture(scope="module")
def other_tool(dataset, tmp_path_factory) -> Path:
    """The ground truth with one segment dropped, written as another tool would: its JSON."""
    images = ground_truth(dataset)
    dropped = images[0]["segments"].pop()
    images[0]["ids"][images[0]["ids"] == dropped["id"]] = 0
    out = tmp_path_factory.mktemp("sets") / "mask2former-run"
    return write_set(images, out, writer=write_pil_png, renumber=random_ids(3), shuffle=5)


@pytest.fixture(scope="module")
def predicted(dataset, tmp_path_factory) -> Path:
    """`pdl predict` with the shipped demo model: its panoptic.json."""
    out = tmp_path_factory.mktemp("sets") / "demo-run"
    argv = [sys.executable, "-m", "panoptic_deeplab", "predict", "--model", str(SHIPPED)]
    argv += ["--dataset", str(dataset), "--split", "val", "--out", str(out)]
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    return out / "panoptic.json"


@pytest.fixture
def no_tensorflow(monkeypatch):
    """``import tensorflow`` / ``import keras`` fail, and loading a model is an error."""
    from panoptic_deeplab.app.components import model_io

    for name in ("tensorflow", "keras"):
        monkeypatch.setitem(sys.modules, name, None)

    def refuse(path):
        raise AssertionError("a prediction set must not load a model")

    monkeypatch.setattr(model_io, "load_predictor", refuse)


def inspect(monkeypatch, tmp_path, dataset) -> AppTest:
    u.set_app_env(monkeypatch, tmp_path, model=None, data=dataset)
    st.cache_data.clear()
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT)
    at.session_state["inspect_what"] = "a prediction set"  # the shipped model is never loaded
    at.switch_page("pages/inspect.py").run()
    assert not at.exception, at.exception
    return at


def pixel_table(at) -> dict:
    frame = next(t.value for t in at.table if "value" in t.value.columns)
    return frame["value"].to_dict()


def file_segment(json_path: Path, image_id, y: int, x: int) -> tuple[int, int]:
    """(id, category id) of the file's segment at (y, x), read straight from the PNG."""
    ann = next(
        a for a in json.loads(json_path.read_text())["annotations"] if a["image_id"] == image_id
    )
    rgb = np.asarray(Image.open(json_path.with_suffix("") / ann["file_name"]), np.int64)
    seg_id = int(rgb[y, x, 0] + 256 * rgb[y, x, 1] + 65536 * rgb[y, x, 2])
    category = next((s["category_id"] for s in ann["segments_info"] if s["id"] == seg_id), None)
    return seg_id, category


def gt_class(dataset, y: int, x: int) -> str:
    from panoptic_deeplab.datasets.readers import open_dataset

    reader = open_dataset(dataset, "val")
    return reader.spec.class_names[int(reader.load_panoptic(0)[y, x]) // reader.spec.label_divisor]


# `pdl predict` (TensorFlow, the demo model) takes 15-25 s on a loaded 2-core machine: slow tier.
@pytest.mark.parametrize("which", [pytest.param("predicted", marks=pytest.mark.slow), "other_tool"])
def test_inspect_shows_a_prediction_set_from_its_files_without_a_model(
    request, monkeypatch, tmp_path, dataset, no_tensorflow, which
):
    from panoptic_deeplab.datasets.specs import get_dataset_spec

    json_path = request.getfixturevalue(which)
    at = inspect(monkeypatch, tmp_path, dataset)
    at.text_input(key="inspect_set_json").set_value(str(json_path)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    names = [Path(p).name for p in sorted((dataset / "val").iterdir())]
    assert at.selectbox(key="inspect_set_image").options == names  # the split's, both predicted
    stages = at.radio(key="inspect_set_stage").options
    assert stages == ["Input", "Panoptic (from files)"]  # no heads: no heatmap, no offsets
    assert any("read from files" in c.value for c in at.caption)
    # The pixel inspector reads the file's own segment (its id and class) at the pixel.
    at.number_input(key="inspect_set_y").set_value(20)
    at.number_input(key="inspect_set_x").set_value(30).run()
    seg_id, category = file_segment(json_path, 0, 20, 30)
    names = get_dataset_spec("synthetic").class_names
    rows = pixel_table(at)
    if seg_id == 0:
        assert rows["predicted segment"] == "void (no segment in the file)"
    else:
        assert rows["predicted class (from files)"] == names[category]  # synthetic: id = train id
        assert f"(id {seg_id} in " in rows["predicted segment"]
    assert rows["ground-truth class"] == gt_class(dataset, 20, 30)
    listed = json.loads(json_path.read_text())["annotations"]
    first = next(a for a in listed if a["image_id"] == 0)
    table = at.dataframe[0].value
    assert sorted(table["id in the file"]) == sorted(s["id"] for s in first["segments_info"])
    # Remembered: the Evaluate page and a new session list it by name.
    assert at.selectbox(key="inspect_set_pick").options[0] == json_path.parent.name


def test_inspect_shows_what_deeplab2_raw_pngs_hold(monkeypatch, tmp_path, dataset, no_tensorflow):
    from panoptic_deeplab.datasets.readers import open_dataset

    reader = open_dataset(dataset, "val")
    write_raw(reader, tmp_path / "kmax" / "raw_panoptic", channels=2)
    at = inspect(monkeypatch, tmp_path, dataset)
    at.radio(key="inspect_set_format").set_value("two_channel_png").run()
    at.text_input(key="inspect_set_folder").set_value(str(tmp_path / "kmax" / "raw_panoptic"))
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.radio(key="inspect_set_stage").options == [
        "Input",
        "Panoptic (from files)",
        "Semantic (from the raw PNGs)",
        "Instances (from the raw PNGs)",
    ]
    at.radio(key="inspect_set_stage").set_value("Instances (from the raw PNGs)").run()
    assert not at.exception
    at.number_input(key="inspect_set_y").set_value(20)
    at.number_input(key="inspect_set_x").set_value(30).run()
    rows = pixel_table(at)
    assert rows["predicted class (from files)"] == rows["ground-truth class"]  # GT written raw
    assert rows["predicted segment"].split()[0] == rows["ground-truth segment"]


def test_a_broken_json_is_named_and_the_page_keeps_running(
    monkeypatch, tmp_path, dataset, other_tool, no_tensorflow
):
    broken = tmp_path / "broken.json"
    broken.write_text('{"annotations": [')
    at = inspect(monkeypatch, tmp_path, dataset)
    at.text_input(key="inspect_set_folder").set_value(str(other_tool.with_suffix("")))
    at.text_input(key="inspect_set_json").set_value(str(broken)).run()
    assert not at.exception
    text = " ".join(e.value for e in at.error)
    assert "cannot be used" in text and "broken.json: not valid JSON" in text
    assert "regenerate or repair the file" in text
    # The page still works: a good file is shown at once.
    at.text_input(key="inspect_set_json").set_value(str(other_tool)).run()
    assert not at.exception and not at.error
    assert at.radio(key="inspect_set_stage").value == "Panoptic (from files)"


def test_review_ranks_a_split_against_another_tools_files(
    monkeypatch, tmp_path, dataset, other_tool
):
    from panoptic_deeplab.cli import main
    from panoptic_deeplab.jobs.records import Job
    from panoptic_deeplab.jobs.store import JobStore

    submitted = []

    def submit(self, argv, *, name=None, **_):  # the job's work (`pdl review score`), done at once
        submitted.append(argv)
        assert main(list(argv)) == 0
        return Job(1, "review", name, argv, "", "", "succeeded")

    monkeypatch.setattr(JobStore, "submit", submit)
    u.set_app_env(monkeypatch, tmp_path, model=None, data=dataset)
    at = AppTest.from_file(REVIEW, default_timeout=u.TIMEOUT)
    at.session_state["review_reviewer"] = "tester"
    at.run()
    at.radio(key="review_source").set_value("a prediction set").run()
    assert any("No prediction set yet" in i.value for i in at.info)
    at.text_input(key="review_set_json").set_value(str(other_tool)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    texts = " ".join(c.value for c in at.caption)
    assert "Prediction set `mask2former-run` (from files): 0 of 2 images scored" in texts
    at.button(key="score").click().run()
    assert submitted[0][:2] == ["review", "score"]
    assert submitted[0][submitted[0].index("--predictions") + 1] == str(other_tool.resolve())
    assert not at.exception and not at.error, [e.value for e in at.error]
    texts = " ".join(c.value for c in at.caption)
    assert "2 of 2 images scored" in texts
    names = [Path(p).name for p in sorted((dataset / "val").iterdir())]
    # The dropped segment comes first: the files predict nothing there.
    first = at.dataframe[0].value.iloc[0]
    dropped = ground_truth(dataset)[0]["segments"][-1]
    assert (first["file_name"], int(first["ref_id"])) == (names[0], dropped["id"])
    assert "Prediction set mask2former-run (from files) says" in [m.label for m in at.metric]


def test_review_names_a_broken_prediction_set_and_keeps_running(monkeypatch, tmp_path, dataset):
    broken = tmp_path / "broken.json"
    broken.write_text("not json")
    (tmp_path / "broken").mkdir()  # its PNG folder is there: the JSON itself is what is wrong
    u.set_app_env(monkeypatch, tmp_path, model=None, data=dataset)
    at = AppTest.from_file(REVIEW, default_timeout=u.TIMEOUT)
    at.session_state["review_reviewer"] = "tester"
    at.run()
    at.radio(key="review_source").set_value("a prediction set").run()
    at.text_input(key="review_set_json").set_value(str(broken)).run()
    assert not at.exception
    assert "broken.json: not valid JSON" in " ".join(e.value for e in at.error)
    assert len(at.dataframe) == 1  # the segments are still listed (file order) and decidable


@pytest.mark.slow  # `pdl predict` with the demo model (the fixture, shared with Inspect's test)
def test_review_ranks_a_split_against_pdl_predicts_files(monkeypatch, tmp_path, dataset, predicted):
    from panoptic_deeplab.cli import main
    from panoptic_deeplab.jobs.records import Job
    from panoptic_deeplab.jobs.store import JobStore

    def submit(self, argv, *, name=None, **_):  # `pdl review score --predictions`, done at once
        assert "--predictions" in argv and "--model" not in argv
        assert main(list(argv)) == 0
        return Job(1, "review", name, argv, "", "", "succeeded")

    monkeypatch.setattr(JobStore, "submit", submit)
    u.set_app_env(monkeypatch, tmp_path, model=None, data=dataset)
    at = AppTest.from_file(REVIEW, default_timeout=u.TIMEOUT)
    at.session_state["review_reviewer"] = "tester"
    at.session_state["review_source"] = "a prediction set"
    at.run()
    at.text_input(key="review_set_json").set_value(str(predicted)).run()
    at.button(key="score").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    texts = " ".join(c.value for c in at.caption)
    assert "Prediction set `demo-run` (from files): 2 of 2 images scored" in texts
    assert len(at.dataframe[0].value) > 0 and at.dataframe[0].value["score"].notna().all()
