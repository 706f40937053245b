"""AppTest suite for the Inspect page: uploads, the five views, knobs, the pixel inspector, bad files.

The model is a stand-in with hand-made head outputs (tests/app/fakes.py); the real post-processing,
visualisation and image loading run on them, so the numbers asserted here are computed by hand.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

import apptest_utils as u
from fakes import CAR, SCORES, FakePredictor, car_boxes, car_centers


@pytest.fixture
def app(monkeypatch, tmp_path):
    from components import model_io

    model_dir = tmp_path / "fake-model"
    model_dir.mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=model_dir)
    fake = FakePredictor()
    monkeypatch.setattr(model_io, "load_predictor", lambda path: fake)
    st.cache_data.clear()
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT)
    at.run()
    assert not at.exception
    return at, fake


def upload(at, data: bytes, name: str = "street.png", mime: str = "image/png"):
    at.file_uploader[0].set_value((name, data, mime)).run()
    assert not at.exception, at.exception
    return at


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def chart(at, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def grid_trace(fig: dict) -> dict:
    return next(t for t in fig["data"] if t.get("name") == "pixels")


def grid_index(grid: dict, box) -> int:
    """Index of the first hover-grid point inside the box (y0, y1, x0, x1)."""
    y0, y1, x0, x1 = box
    xs, ys = u.plotly_array(grid["x"]), u.plotly_array(grid["y"])
    return int(np.flatnonzero((ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1))[0])


def pixel_table(at) -> dict:
    frame = next(t.value for t in at.table if "value" in t.value.columns)
    return frame["value"].to_dict()


def test_without_a_model_the_page_says_how_to_get_one(monkeypatch, tmp_path):
    import state as app_state  # app/ is on sys.path (apptest_utils)

    u.set_app_env(monkeypatch, tmp_path, model=None)
    monkeypatch.setattr(app_state, "SHIPPED_MODELS", tmp_path / "no-shipped-models")  # a fresh checkout without assets
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT).run()
    assert not at.exception
    assert "No model yet" in at.warning[0].value and "pdl app --model" in at.warning[0].value


def test_upload_runs_the_model_once_and_shows_every_view(app):
    at, fake = app
    upload(at, u.encode(u.street_image()))
    assert metrics(at) == {**metrics(at), "Image": "97×65", "Centers": "2", "Instances": "2"}
    expected_hover = {
        "Input": "RGB", "Semantic": "probability", "Centers": "center heatmap",
        "Offsets": "offset (dy, dx)", "Panoptic": "instance id",
    }
    for stage, words in expected_hover.items():
        at.radio(key="stage").set_value(stage).run()
        assert not at.exception
        fig = chart(at)
        assert fig["data"][0]["type"] == "image"
        assert words in grid_trace(fig)["hovertemplate"]
    assert fake.calls == 1  # switching views never re-runs the network


def test_centers_view_marks_each_detected_center_with_its_score(app):
    at, _ = app
    upload(at, u.encode(u.street_image()))
    at.radio(key="stage").set_value("Centers").run()
    centers = next(t for t in chart(at)["data"] if t.get("name") == "center")
    ys, xs = u.plotly_array(centers["y"]), u.plotly_array(centers["x"])
    assert sorted(zip(ys.tolist(), xs.tolist())) == sorted(car_centers(65, 97))
    assert sorted(centers["text"]) == sorted(f"{s:.2f}" for s in SCORES)


def test_semantic_hover_gives_class_and_softmax_probability(app):
    at, _ = app
    upload(at, u.encode(u.street_image()))
    at.radio(key="stage").set_value("Semantic").run()
    grid = grid_trace(chart(at))
    k = grid_index(grid, car_boxes(65, 97)[0])
    name, prob = u.plotly_array(grid["customdata"])[k]
    # car logit 5, road 3, six other classes 0
    expected = math.exp(5) / (math.exp(5) + math.exp(3) + 6)
    assert name == "car" and prob == pytest.approx(expected, abs=1e-3)


def test_panoptic_hover_gives_instance_area_and_score(app):
    at, _ = app
    upload(at, u.encode(u.street_image()))
    at.radio(key="stage").set_value("Panoptic").run()
    grid = grid_trace(chart(at))
    y0, y1, x0, x1 = car_boxes(65, 97)[1]
    k = grid_index(grid, (y0, y1, x0, x1))
    name, instance, area, score, segment = u.plotly_array(grid["customdata"])[k]
    assert name == "car" and segment == CAR * 1000 + instance
    assert area == (y1 - y0) * (x1 - x0)
    # AP score = mean class probability over the mask x the center's heatmap value
    prob = math.exp(5) / (math.exp(5) + math.exp(3) + 6)
    assert float(score) == pytest.approx(prob * SCORES[1], abs=2e-3)


def test_knobs_rerun_only_the_post_processing(app):
    at, fake = app
    upload(at, u.encode(u.street_image()))
    at.slider(key="pp_threshold").set_value(0.7).run()  # only the 0.9 peak survives
    assert (metrics(at)["Centers"], metrics(at)["Instances"]) == ("1", "1")
    at.slider(key="pp_threshold").set_value(0.95).run()  # no center: all thing pixels form one instance
    assert (metrics(at)["Centers"], metrics(at)["Instances"]) == ("0", "1")
    at.slider(key="pp_threshold").set_value(0.1).run()
    at.number_input(key="pp_topk").set_value(1).run()
    assert (metrics(at)["Centers"], metrics(at)["Instances"]) == ("1", "1")
    at.button[0].click().run()  # reset to the model's settings
    assert (metrics(at)["Centers"], metrics(at)["Instances"]) == ("2", "2")
    assert fake.calls == 1


def test_pixel_inspector_explains_the_vote(app):
    at, _ = app
    upload(at, u.encode(u.street_image()))
    (cy0, cx0), (cy1, cx1) = car_centers(65, 97)
    y0, _, x0, _ = car_boxes(65, 97)[0]
    at.number_input(key="pixel_y").set_value(y0).run()
    at.number_input(key="pixel_x").set_value(x0).run()
    table = pixel_table(at)
    assert table["class"] == "car (thing)"
    assert table["offset (dy, dx)"] == f"({cy0 - y0:.2f}, {cx0 - x0:.2f})"
    assert table["votes for (y, x)"] == f"({cy0:.1f}, {cx0:.1f})"
    assert table["joined center"].startswith(f"#0 at ({cy0}, {cx0}), score 0.90, distance 0.0")
    runner = math.hypot(cy1 - cy0, cx1 - cx0)
    assert f"distance {runner:.1f}" in table["runner-up center"]
    # the vote is drawn: an arrow from the pixel to where it voted
    vote = next(t for t in chart(at)["data"] if t.get("name") == "vote")
    assert u.plotly_array(vote["x"])[:2].tolist() == [x0, cx0]
    assert u.plotly_array(vote["y"])[:2].tolist() == [y0, cy0]


def test_side_by_side_shows_input_and_output(app):
    at, _ = app
    upload(at, u.encode(u.street_image()))
    at.radio(key="stage").set_value("Offsets").run()
    at.radio(key="layout").set_value("Side by side").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2


@pytest.mark.parametrize("name, data, words", [
    ("empty.png", b"", "empty"),
    ("notes.txt", b"this is not an image at all", "not an image"),
    ("broken.png", u.encode(u.street_image())[:200], "corrupt"),
])
def test_bad_uploads_give_a_message_and_the_app_keeps_working(app, name, data, words):
    at, _ = app
    upload(at, data, name=name)
    assert at.error and words in at.error[0].value.lower()
    upload(at, u.encode(u.street_image()))
    assert not at.error and metrics(at)["Instances"] == "2"


@pytest.mark.parametrize("kind", ["rgba", "gray", "gray16", "exif"])
def test_unusual_images_load(app, kind):
    """RGBA, grayscale, 16-bit and EXIF-rotated files become RGB of the size a viewer shows."""
    at, _ = app
    rgb = u.street_image(65, 97)
    if kind == "rgba":
        data = u.encode(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]))
    elif kind == "gray":
        data = u.encode(rgb[..., 0])
    elif kind == "gray16":
        data = u.encode(rgb[..., 0].astype(np.uint16) * 257)
    else:  # orientation 6: the viewer rotates 90 degrees clockwise, so 97x65 shows as 65x97
        exif = Image.Exif()
        exif[0x0112] = 6
        data = u.encode(rgb, "JPEG", exif=exif.tobytes())
    upload(at, data, name=f"{kind}.png")
    assert not at.error
    assert metrics(at)["Image"] == ("65×97" if kind == "exif" else "97×65")


def test_huge_images_are_downscaled_with_a_notice(app):
    at, _ = app
    upload(at, u.encode(u.street_image(300, 1200)))
    assert any("downscaled" in i.value for i in at.info)
    assert metrics(at)["Image"] == "1025×256"


def test_downloads_are_offered(app):
    at, _ = app
    upload(at, u.encode(u.street_image()))
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Panoptic PNG", "Segments JSON", "Input overlay PNG"]


@pytest.mark.slow
def test_a_real_bundle_runs_end_to_end(monkeypatch, tmp_path):
    """The page with a real (tiny, random-weight) model bundle and the real Predictor."""
    import keras

    from panoptic_deeplab.bundle import save_bundle
    from panoptic_deeplab.config import load_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.model.builder import build_model

    keras.utils.set_random_seed(0)
    spec = get_dataset_spec("synthetic")
    config = load_config("synthetic/tiny")
    bundle = save_bundle(tmp_path / "model", build_model(config, num_classes=spec.num_classes), config, spec)
    u.set_app_env(monkeypatch, tmp_path, model=bundle)
    st.cache_data.clear()
    at = AppTest.from_file(u.ENTRY, default_timeout=240).run()
    upload(at, u.encode(u.street_image()))
    assert metrics(at)["Image"] == "97×65"
    for stage in ("Semantic", "Centers", "Offsets", "Panoptic"):
        at.radio(key="stage").set_value(stage).run()
        assert not at.exception and chart(at)["data"][0]["type"] == "image"
    # the sidebar knobs start at the bundle's own post-processing settings
    assert at.number_input(key="pp_topk").value == config.postprocess.keep_k_centers
    assert at.number_input(key="pp_stuff").value == config.postprocess.stuff_area_limit


def test_a_sample_from_the_data_set_can_be_picked(monkeypatch, tmp_path):
    from components import model_io
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    data = make_synthetic_dataset(tmp_path / "data", num_train=1, num_val=2, height=33, width=65, workers=1)
    model_dir = tmp_path / "fake-model"
    model_dir.mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=model_dir, data=data)
    monkeypatch.setattr(model_io, "load_predictor", lambda path: FakePredictor())
    st.cache_data.clear()
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT).run()
    options = at.selectbox(key="sample").options
    assert options == ["—", "val/val_000000.jpg", "val/val_000001.jpg"]
    # A new user sees output at once: the first sample is picked and run.
    assert at.selectbox(key="sample").value == "val/val_000000.jpg"
    assert not at.exception and metrics(at)["Image"] == "65×33" and at.get("plotly_chart")
    at.selectbox(key="sample").set_value("val/val_000001.jpg").run()
    assert not at.exception and metrics(at)["Image"] == "65×33"
