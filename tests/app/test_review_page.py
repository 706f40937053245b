"""AppTest suite for the Review page: scoring as a background job, every decision and edit, undo
returning to the undone item, two reviewers on one store, and the export. Each click's server time
is printed (run with -s to see it); it is not asserted (the machine is shared).

The model is the hand-made stand-in of tests/app/fakes.py (road everywhere, cars in two boxes, the
real post-processing on top). The data set annotates the second car box as a *person*: the model's
confident "car" there must put that segment first, with "car" suggested.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from panoptic_deeplab import settings as product_settings
from panoptic_deeplab.datasets.coco_panoptic import id_to_rgb, read_segment_ids
from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.datasets.synthetic import coco_categories
from panoptic_deeplab.review import (
    CallableSource,
    ReviewStore,
    category_mapping,
    default_review_dir,
    model_source_key,
    prediction_from_model,
)
from tests.app import apptest_utils as u
from tests.app.fakes import FakePredictor, car_boxes

PAGE = str(u.APP_DIR / "pages" / "review.py")
H, W = 65, 97
ROAD, PERSON, CAR = 0, 5, 6  # synthetic category ids (= train ids)


@pytest.fixture
def data(tmp_path) -> Path:
    return _make_data(tmp_path / "data", second_car="person")


@pytest.fixture
def data_missing(tmp_path) -> Path:
    return _make_data(tmp_path / "data", second_car=None)


def _make_data(root: Path, second_car: str | None) -> Path:
    (root / "annotations" / "panoptic_val").mkdir(parents=True)
    (root / "val").mkdir()
    ids = np.ones((H, W), np.int64)
    (y0, y1, x0, x1), (v0, v1, w0, w1) = car_boxes(H, W)
    ids[y0:y1, x0:x1] = 2  # correctly a car
    segs = [{"id": 1, "category_id": ROAD}, {"id": 2, "category_id": CAR}]
    if second_car == "person":  # the model's second car, annotated as a person
        ids[v0:v1, w0:w1] = 3
        segs.append({"id": 3, "category_id": PERSON})
    for s in segs:
        ys, xs = np.nonzero(ids == s["id"])
        s.update(
            iscrowd=0,
            area=int(len(ys)),
            bbox=[int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)],
        )
    cv2.imwrite(str(root / "annotations" / "panoptic_val" / "s.png"), id_to_rgb(ids)[..., ::-1])
    image = (90 + u.street_image(H, W) // 16).astype(np.uint8)  # a grey road, a little noise
    image[y0:y1, x0:x1] = (200, 30, 30)  # the first car: red, for the smart region
    cv2.imwrite(str(root / "val" / "s.png"), image[..., ::-1])
    coco = {
        "images": [{"id": 1, "file_name": "s.png", "height": H, "width": W}],
        "annotations": [{"image_id": 1, "file_name": "s.png", "segments_info": segs}],
        "categories": coco_categories(get_dataset_spec("synthetic")),
    }
    (root / "annotations" / "panoptic_val.json").write_text(json.dumps(coco))
    return root


def _fake_prediction(image, _image_id):
    spec = get_dataset_spec("synthetic")
    mapping = category_mapping(spec, coco_categories(spec))
    return prediction_from_model(FakePredictor()(image), spec, mapping)


def _store(data, tmp_path, reviewer="tester") -> ReviewStore:
    return ReviewStore(
        data, "val", default_review_dir(data, "val", tmp_path / "work"), reviewer=reviewer
    )


def _score(data, tmp_path) -> None:
    """What the scoring job does (`pdl review score`), with the hand-made model."""
    key = model_source_key(tmp_path / "fake-model")
    _store(data, tmp_path).score(CallableSource(key, _fake_prediction))


@pytest.fixture
def page(monkeypatch, tmp_path):
    from panoptic_deeplab.app.components import model_io

    model_dir = tmp_path / "fake-model"
    model_dir.mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=model_dir, data=tmp_path / "data")
    fake = FakePredictor()
    monkeypatch.setattr(model_io, "load_predictor", lambda path: fake)
    st.cache_data.clear()

    def start(reviewer: str = "tester") -> AppTest:
        at = AppTest.from_file(PAGE, default_timeout=u.TIMEOUT)
        at.session_state["review_reviewer"] = reviewer
        at.run()
        assert not at.exception, at.exception
        return at

    return start


def _click(at, key: str, what: str = "") -> AppTest:
    """Click a button and print the page's server time for it."""
    started = time.perf_counter()
    at.button(key=key).click().run()
    took = time.perf_counter() - started
    assert not at.exception, at.exception
    server = {k: 0.0 for k in ("review_change_s", "review_server_s")}
    server.update({k: at.session_state[k] for k in server if k in at.session_state})
    change, panel = server["review_change_s"] * 1000, server["review_server_s"] * 1000
    print(
        f"click {what or key}: store change {change:.0f} ms + item fragment {panel:.0f} ms "
        f"(whole script under AppTest {took * 1000:.0f} ms)"
    )
    at.session_state["review_change_s"] = 0.0
    return at


def _texts(at) -> str:
    return " ".join(
        str(e.value)
        for kind in ("success", "warning", "error", "info", "caption")
        for e in getattr(at, kind)
    )


def _digest(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _cursor(at) -> tuple:
    return tuple(at.session_state["review_cursor"])


def _draw(at, cursor, shape: dict) -> None:
    """What the page keeps from a lasso, box or click on the annotation chart (AppTest cannot
    drag on a Plotly chart; tests/app/test_review_view.py checks the event's conversion)."""
    at.session_state["review_shape"] = {"on": list(cursor), "shape": shape}


def test_without_a_data_set_the_page_says_what_to_give(monkeypatch, tmp_path):
    u.set_app_env(monkeypatch, tmp_path, data=tmp_path / "nothing-here")
    at = AppTest.from_file(PAGE, default_timeout=u.TIMEOUT).run()
    assert not at.exception
    assert "No COCO-panoptic data set" in at.warning[0].value


def test_scoring_runs_as_a_job_and_the_caption_counts_at_once(page, monkeypatch, data, tmp_path):
    from panoptic_deeplab.jobs.records import Job
    from panoptic_deeplab.jobs.store import JobStore

    submitted = []

    def submit(self, argv, *, name=None, **_):  # the job's work, done at once
        submitted.append(argv)
        _score(data, tmp_path)
        return Job(1, "review", name, argv, "", "", "succeeded")

    monkeypatch.setattr(JobStore, "submit", submit)
    at = page()
    assert "0 of 1 images scored" in _texts(at)
    assert list(at.dataframe[0].value["ref_id"]) == [1, 2, 3]  # file order before scoring
    _click(at, "score")
    store = _store(data, tmp_path)
    assert submitted == [
        ["review", "score", "--dataset", str(data), "--split", "val"]
        + ["--model", str(tmp_path / "fake-model"), "--store", str(store.workdir)]
    ]
    assert "1 of 1 images scored" in _texts(at)
    first = at.dataframe[0].value.iloc[0]
    assert (first["ref_id"], first["category"], first["model_category"]) == (3, "person", "car")
    assert at.selectbox(key="relabel_1_3").value == "car (6)"  # the model's class, preselected
    assert at.button(key="score").disabled  # all scored


def test_a_running_scoring_job_shows_its_progress_and_then_its_ranking(
    page, monkeypatch, data, tmp_path
):
    from panoptic_deeplab.jobs.records import FAILED, RUNNING, SUCCEEDED, Job
    from panoptic_deeplab.jobs.store import JobStore

    store = _store(data, tmp_path)
    argv = ["review", "score", "--dataset", str(data), "--store", str(store.workdir)]
    jobs = [Job(7, "review", "score", argv, "", "/w/job.log", RUNNING)]
    monkeypatch.setattr(JobStore, "list", lambda self, kind=None: list(jobs))
    at = page()
    bar = at.get("progress")
    assert len(bar) == 1 and "Scoring in job 7" in bar[0].proto.text
    assert at.button(key="score").disabled  # one scoring at a time
    _score(data, tmp_path)  # the job does its work and ends
    jobs[0] = Job(7, "review", "score", argv, "", "/w/job.log", SUCCEEDED)
    at.run()
    assert not at.get("progress") and "1 of 1 images scored" in _texts(at)
    assert at.dataframe[0].value.iloc[0]["model_category"] == "car"
    jobs[0] = Job(7, "review", "score", argv, "", "/w/job.log", FAILED, message="out of memory")
    at.run()
    assert "Scoring job 7 failed: out of memory" in at.error[0].value


def test_each_decision_is_saved_moves_on_and_undo_returns_to_it(page, data, tmp_path):
    _score(data, tmp_path)
    at = page("alice")
    store = _store(data, tmp_path)
    assert _cursor(at) == ("1", "gt_segment", 3)  # the most suspicious first
    _click(at, "do_relabel", "relabel")
    seg = store.segment(1, 3)
    assert (seg.category_id, seg.action, seg.decided_by) == (CAR, "relabel", "alice")
    assert _cursor(at) == ("1", "gt_segment", 1)
    assert "Relabelled segment 3 → car" in _texts(at)
    _click(at, "do_accept", "accept")
    assert store.segment(1, 1).action == "accept" and _cursor(at) == ("1", "gt_segment", 2)
    _click(at, "do_crowd", "crowd")
    assert store.segment(1, 2).iscrowd == 1
    assert _cursor(at) == ("1", "gt_segment", 2)  # the last item: it stays
    _click(at, "do_reject", "reject")
    assert store.segment(1, 2).excluded == "reject"
    _click(at, "prev")
    _click(at, "do_ignore", "ignore")
    assert store.segment(1, 1).excluded == "ignore"
    _click(at, "prev")
    _click(at, "prev")
    assert _cursor(at) == ("1", "gt_segment", 3)
    _click(at, "undo", "undo")  # undoes "ignore" on segment 1 and goes there
    assert store.segment(1, 1).action == "accept" and _cursor(at) == ("1", "gt_segment", 1)
    _click(at, "undo", "undo")  # the reject of segment 2
    assert store.segment(1, 2).excluded == "" and _cursor(at) == ("1", "gt_segment", 2)
    for _ in range(3):
        _click(at, "undo", "undo")
    assert store.segment(1, 3).category_id == PERSON and _cursor(at) == ("1", "gt_segment", 3)
    assert at.button(key="undo").disabled
    # the app restarts: the store and the ranking are read from disk, nothing is run again
    at = page("alice")
    assert "1 of 1 images scored" in _texts(at) and _cursor(at) == ("1", "gt_segment", 3)


def test_mask_edits_paint_take_the_model_merge_split_and_smart_region(page, data, tmp_path):
    _score(data, tmp_path)
    at = page()
    store = _store(data, tmp_path)
    here = ("1", "gt_segment", 3)
    assert _cursor(at) == here
    model_car = store.prediction(model_source_key(tmp_path / "fake-model"), 1).panoptic
    model_car = model_car == model_car[40, 60]
    before = np.array(store.gt_ids(1))

    # polygon: the road pixels inside become segment 3, and the page says who lost them
    _draw(at, here, {"kind": "lasso", "points": [[40, 50], [47, 50], [47, 55], [40, 55]]})
    _click(at, "paint_add", "paint polygon")
    ids = store.gt_ids(1)
    assert (ids[50:56, 40:48] == 3).all()
    assert "taken from segment 1 (48 px)" in _texts(at)
    assert np.array_equal(ids[before != ids], np.full(48, 3))

    # take the model's segment: exactly its mask again, the extra pixels back to the road
    _click(at, "take_model", "take model")
    ids = store.gt_ids(1)
    assert np.array_equal(ids == 3, model_car) and (ids[50:56, 40:48] == 1).all()

    # eraser: a click with the brush makes the segment's pixels there VOID
    at.number_input(key="review_brush").set_value(2).run()
    _draw(at, here, {"kind": "click", "points": [[60, 40]]})
    _click(at, "paint_remove", "erase")
    erased = (store.gt_ids(1) == 0) & (ids == 3)
    assert erased.sum() == 13 and erased[40, 60]  # a disk of radius 2

    # merge the car (2) into segment 3, then split it again along a vertical line
    at.selectbox(key="merge_1_3").set_value("2 · car").run()
    _click(at, "merge", "merge")
    assert store.segment(1, 2).removed and not (store.gt_ids(1) == 2).any()
    merged = store.gt_ids(1) == 3
    _draw(at, here, {"kind": "click", "points": [[40, 0], [40, 64]]})
    _click(at, "split_line", "split")
    ids = store.gt_ids(1)
    new = [s for s in store.image_state(1).active() if s not in (1, 3)]
    assert len(new) == 1
    left, right = ids == 3, ids == new[0]
    assert np.array_equal(left | right, merged)
    assert left[:, :40].sum() == 0 or right[:, :40].sum() == 0  # one side each
    _click(at, "undo", "undo split")
    assert np.array_equal(store.gt_ids(1) == 3, merged) and _cursor(at) == here

    # smart region from a box, subtracted: GrabCut finds the red car; its pixels leave segment 3
    ids = np.array(store.gt_ids(1))
    _draw(at, here, {"kind": "box", "box": [10, 14, 26, 22]})
    _click(at, "region_remove", "smart region")
    changed = store.gt_ids(1) != ids
    assert (ids[changed] == 3).all() and (store.gt_ids(1)[changed] == 0).all()
    assert not changed[:14].any() and not changed[:, 36:].any()
    assert changed.sum() > 0.8 * (before == 2).sum()


def test_a_missed_object_is_added_with_the_models_mask_and_undone(page, data_missing, tmp_path):
    _score(data_missing, tmp_path)
    at = page()
    store = _store(data_missing, tmp_path)
    at.radio(key="review_show").set_value("Missing objects").run()
    image_id, kind, pid = _cursor(at)
    assert kind == "missing" and "possible **missing object**" in _texts(at)
    proposal, _ = store.missing_proposal(1, pid, source=model_source_key(tmp_path / "fake-model"))
    assert at.selectbox(key=f"missing_class_1_{pid}").value == "car (6)"
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert chart["layout"]["xaxis"]["range"][1] < W - 1  # zoomed to the object
    assert len(at.get("image")) == 1  # side by side: the model's view beside it
    at.toggle(key="review_whole").set_value(True).run()
    at.radio(key="review_mode").set_value("One overlay").run()
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert not at.exception and chart["layout"]["xaxis"]["range"][1] == W - 0.5
    assert len(at.get("image")) == 0  # one overlay: no separate model image
    _click(at, "add_missed", "add missed")
    added = [s for s in store.image_state(1).active().values() if s.origin == "model"]
    assert len(added) == 1 and added[0].category_id == CAR
    assert np.array_equal(store.gt_ids(1) == added[0].id, proposal)
    _click(at, "undo", "undo add")
    assert not (store.gt_ids(1) == added[0].id).any() and _cursor(at) == (image_id, kind, pid)
    _click(at, "dismiss", "dismiss")
    assert at.dataframe[0].value.iloc[0]["status"] == "dismissed"


def test_two_reviewers_on_one_store_lose_nothing(page, data, tmp_path):
    _score(data, tmp_path)
    alice, bob = page("alice"), page("bob")  # both show segment 3, unchanged
    _click(alice, "do_relabel", "alice relabels")
    _click(bob, "do_accept", "bob accepts the stale view")
    warning = " ".join(w.value for w in bob.warning)
    assert "changed by alice" in warning and "Nothing was saved" in warning
    store = _store(data, tmp_path)
    assert (store.segment(1, 3).action, store.segment(1, 3).category_id) == ("relabel", CAR)
    assert _cursor(bob) == ("1", "gt_segment", 3)  # reloaded, now showing alice's change
    assert bob.dataframe[0].value.iloc[0]["reviewer"] == "alice"
    _click(bob, "do_accept", "bob accepts after seeing it")
    assert store.segment(1, 3).action == "accept" and store.segment(1, 3).decided_by == "bob"


def test_export_writes_the_corrected_set_with_its_report(page, data, tmp_path):
    _score(data, tmp_path)
    before = _digest(data)
    at = page("alice")
    _click(at, "do_relabel")
    at.text_input(key="export_dir").set_value(str(data)).run()
    _click(at, "export")
    assert "outside the source" in at.error[0].value
    out = tmp_path / "corrected"
    at.text_input(key="export_dir").set_value(str(out)).run()
    _click(at, "export")
    assert "1 images changed" in at.success[-1].value and "1 relabelled" in at.success[-1].value
    assert _digest(data) == before
    coco = json.loads((out / "annotations" / "panoptic_val.json").read_text())
    segs = coco["annotations"][0]["segments_info"]
    ids = read_segment_ids(out / "annotations" / "panoptic_val" / s_png(coco))
    by_id = {s["id"]: s for s in segs}
    person_box = read_segment_ids(data / "annotations" / "panoptic_val" / "s.png") == 3
    (exported,) = np.unique(ids[person_box])
    assert by_id[int(exported)]["category_id"] == CAR
    assert by_id[int(exported)]["area"] == int(person_box.sum())
    report = (out / "review_report.csv").read_text()
    assert "alice" in report and "relabel" in report
    assert at.get("download_button")[0].proto.label.startswith("Download the review report")


def s_png(coco) -> str:
    return coco["annotations"][0]["file_name"]


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


def test_without_a_model_segments_are_listed_in_file_order_and_decided(monkeypatch, tmp_path, data):
    monkeypatch.setattr(product_settings, "shipped_models", lambda: [])
    u.set_app_env(monkeypatch, tmp_path, model=None, data=data)
    at = AppTest.from_file(PAGE, default_timeout=u.TIMEOUT)
    at.session_state["review_reviewer"] = "carol"
    at.run()
    assert not at.exception and "No model" in at.info[0].value
    assert list(at.dataframe[0].value["ref_id"]) == [1, 2, 3]
    assert at.button(key="take_model").disabled
    _click(at, "do_accept")
    assert _store(data, tmp_path).segment(1, 1).decided_by == "carol"
    assert _cursor(at) == ("1", "gt_segment", 2)
