"""AppTest suite for the Review page: ranking with a model, decisions that persist across an app
restart, undo, and the export.

The model is the hand-made stand-in of tests/app/fakes.py (road everywhere, cars in two boxes, the
real post-processing on top). The data set annotates the second car box as a *person*: the model's
confident "car" there must put that segment first, with "car" suggested.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import apptest_utils as u
import cv2
import numpy as np
import pytest
import streamlit as st
from fakes import FakePredictor, car_boxes
from streamlit.testing.v1 import AppTest

from panoptic_deeplab.datasets.coco_panoptic import id_to_rgb, read_segment_ids
from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.datasets.synthetic import coco_categories
from panoptic_deeplab.review import ReviewStore, default_review_dir

PAGE = str(u.APP_DIR / "pages" / "review.py")
H, W = 65, 97
ROAD, PERSON, CAR = 0, 5, 6  # synthetic category ids (= train ids)


@pytest.fixture
def data(tmp_path) -> Path:
    root = tmp_path / "data"
    (root / "annotations" / "panoptic_val").mkdir(parents=True)
    (root / "val").mkdir()
    ids = np.ones((H, W), np.int64)
    (y0, y1, x0, x1), (v0, v1, w0, w1) = car_boxes(H, W)
    ids[y0:y1, x0:x1] = 2  # correctly a car
    ids[v0:v1, w0:w1] = 3  # the model's second car, annotated as a person
    segs = [
        {"id": 1, "category_id": ROAD},
        {"id": 2, "category_id": CAR},
        {"id": 3, "category_id": PERSON},
    ]
    for s in segs:
        ys, xs = np.nonzero(ids == s["id"])
        s.update(
            iscrowd=0,
            area=int(len(ys)),
            bbox=[int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)],
        )
    cv2.imwrite(str(root / "annotations" / "panoptic_val" / "s.png"), id_to_rgb(ids)[..., ::-1])
    cv2.imwrite(str(root / "val" / "s.png"), u.street_image(H, W)[..., ::-1])
    coco = {
        "images": [{"id": 1, "file_name": "s.png", "height": H, "width": W}],
        "annotations": [{"image_id": 1, "file_name": "s.png", "segments_info": segs}],
        "categories": coco_categories(get_dataset_spec("synthetic")),
    }
    (root / "annotations" / "panoptic_val.json").write_text(json.dumps(coco))
    return root


@pytest.fixture
def page(monkeypatch, tmp_path, data):
    from panoptic_deeplab.app.components import model_io

    model_dir = tmp_path / "fake-model"
    model_dir.mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=model_dir, data=data)
    fake = FakePredictor()
    monkeypatch.setattr(model_io, "load_predictor", lambda path: fake)
    st.cache_data.clear()

    def start() -> AppTest:
        at = AppTest.from_file(PAGE, default_timeout=u.TIMEOUT).run()
        assert not at.exception, at.exception
        return at

    return start


def _metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def _click(at, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def _digest(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_without_a_data_set_the_page_says_what_to_give(monkeypatch, tmp_path):
    u.set_app_env(monkeypatch, tmp_path, data=tmp_path / "nothing-here")
    at = AppTest.from_file(PAGE, default_timeout=u.TIMEOUT).run()
    assert not at.exception
    assert "No COCO-panoptic data set" in at.warning[0].value


def test_scoring_ranks_the_mislabelled_segment_first_with_the_model_beside_it(page):
    at = page()
    assert _metrics(at)["Disagreement"] == "–"  # not scored yet: file order
    _click(at, "score")
    table = at.dataframe[0].value
    assert (table.iloc[0]["category"], table.iloc[0]["suggested"]) == ("person", "car")
    # the fake gives car logit 5, road 3, six others 0 in its boxes: p(car) = e^5 / (e^5 + e^3 + 6)
    p_car = np.exp(5) / (np.exp(5) + np.exp(3) + 6)
    assert table.iloc[0]["disagreement"] == pytest.approx(p_car, abs=1e-4)
    assert list(table["disagreement"][1:]) == [0.0, 0.0]
    assert _metrics(at)["Model says"] == "car" and _metrics(at)["Class"] == "person"
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert titles == ["Annotation · s.png", "Model prediction"]
    assert at.selectbox(key="relabel_1_3").value == "car (6)"  # the suggestion is preselected


def test_decisions_persist_across_a_restart_and_undo(page, data, tmp_path):
    at = page()
    _click(at, "score")
    _click(at, "do_relabel")  # person -> car (the suggestion)
    store = ReviewStore(data, "val", default_review_dir(data, "val", tmp_path / "work"))
    assert (store.decision(1, 3).action, store.decision(1, 3).category_id) == ("relabel", CAR)
    assert at.session_state["review_rank"] == 2  # moved on to the next segment

    at = (
        page()
    )  # the app restarts: the decision is still there, and review resumes where it stopped
    assert "1 of 3 segments decided" in at.caption[-1].value
    assert at.session_state["review_rank"] == 2  # the first undecided segment
    _click(at, "prev")
    assert any(c.value.startswith("Current decision: **relabel → car**") for c in at.caption)
    _click(at, "next")  # the road, ranked second
    at.text_input(key="comment_1_1").set_value("ok").run()
    _click(at, "do_comment")
    assert store.decision(1, 1).comment == "ok" and store.decision(1, 1).action is None
    _click(at, "undo")
    assert store.decision(1, 1) is None
    _click(at, "undo")
    assert store.decision(1, 3) is None and at.button(key="undo").disabled


def test_export_writes_a_corrected_copy_and_refuses_the_source(page, data, tmp_path):
    before = _digest(data)
    at = page()
    _click(at, "score")
    _click(at, "do_relabel")
    at.text_input(key="export_dir").set_value(str(data)).run()
    _click(at, "export")
    assert "outside the source" in at.error[0].value
    out = tmp_path / "corrected"
    at.text_input(key="export_dir").set_value(str(out)).run()
    _click(at, "export")
    assert "1 images changed" in at.success[0].value and "1 relabelled" in at.success[0].value
    assert _digest(data) == before
    coco = json.loads((out / "annotations" / "panoptic_val.json").read_text())
    assert {s["id"]: s["category_id"] for s in coco["annotations"][0]["segments_info"]} == {
        1: ROAD,
        2: CAR,
        3: CAR,
    }
    assert np.array_equal(
        read_segment_ids(out / "annotations" / "panoptic_val" / "s.png"),
        read_segment_ids(data / "annotations" / "panoptic_val" / "s.png"),
    )
    assert at.get("download_button")[0].proto.label.startswith("Download the review report")


# -- decisions are never replaced silently; any data set can be picked (issue 15) ------------------


def test_a_decision_made_elsewhere_is_shown_and_replaced_only_when_confirmed(page, data, tmp_path):
    at = page()  # this tab shows segment #1 undecided
    store = ReviewStore(data, "val", default_review_dir(data, "val", tmp_path / "work"))
    first = at.dataframe[0].value.iloc[0]
    image_id, segment_id = str(first["image_id"]), int(first["segment_id"])
    store.decide(image_id, segment_id, "reject")  # another tab rejects it meanwhile
    _click(at, "do_accept")
    assert store.decision(image_id, segment_id).action == "reject"  # not overwritten
    warning = " ".join(w.value for w in at.warning)
    assert "already decided: 'reject'" in warning and "Replace it?" in warning
    assert any(c.value.startswith("Current decision: **reject**") for c in at.caption)
    _click(at, "conflict_keep")
    assert store.decision(image_id, segment_id).action == "reject" and not at.warning
    _click(at, "do_accept")
    _click(at, "conflict_replace")
    assert store.decision(image_id, segment_id).action == "accept"


def test_review_can_pick_another_data_set(monkeypatch, tmp_path, data):
    from panoptic_deeplab.app.components import model_io

    (tmp_path / "m").mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=tmp_path / "m", data=None)
    monkeypatch.setattr(model_io, "load_predictor", lambda path: FakePredictor())
    st.cache_data.clear()
    at = AppTest.from_file(PAGE, default_timeout=u.TIMEOUT).run()
    assert "No COCO-panoptic data set" in at.warning[0].value
    at.selectbox(key="review_dataset").set_value("other folder…").run()
    at.text_input(key="review_data_other").set_value(str(data)).run()
    assert not at.exception and not at.warning
    assert f"Data set `{data}`" in " ".join(c.value for c in at.caption)
