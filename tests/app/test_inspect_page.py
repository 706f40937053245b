"""AppTest suite for the Inspect page: uploads, the five views, knobs, the pixel inspector, bad
files.

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

from tests.app import apptest_utils as u
from tests.app.fakes import CAR, SCORES, FakePredictor, car_boxes, car_centers


@pytest.fixture
def app(monkeypatch, tmp_path):
    from panoptic_deeplab.app.components import model_io

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
    from panoptic_deeplab import settings

    u.set_app_env(monkeypatch, tmp_path, model=None)
    monkeypatch.setattr(
        settings, "shipped_models", lambda: []
    )  # an installation without the demo model
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT).run()
    assert not at.exception
    assert "No model yet" in at.warning[0].value and "pdl app --model" in at.warning[0].value


def test_upload_runs_the_model_once_and_shows_every_view(app):
    at, fake = app
    upload(at, u.encode(u.street_image()))
    assert metrics(at) == {**metrics(at), "Image": "97×65", "Centers": "2", "Instances": "2"}
    assert "Network: tf, precision fp32 (as requested)" in [
        c.value for c in at.caption
    ]  # what runs the model
    expected_hover = {
        "Input": "RGB",
        "Semantic": "probability",
        "Centers": "center heatmap",
        "Offsets": "offset (dy, dx)",
        "Panoptic": "instance id",
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
    at.slider(key="pp_threshold").set_value(
        0.95
    ).run()  # no center: all thing pixels form one instance
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


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("empty.png", b"", "empty"),
        ("notes.txt", b"this is not an image at all", "not an image"),
        ("broken.png", u.encode(u.street_image())[:200], "corrupt"),
    ],
)
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
    bundle = save_bundle(
        tmp_path / "model", build_model(config, num_classes=spec.num_classes), config, spec
    )
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
    from panoptic_deeplab.app.components import model_io
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    data = make_synthetic_dataset(
        tmp_path / "data", num_train=1, num_val=2, height=33, width=65, workers=1
    )
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


# -- pictures and controls that say what is applied (issue 15) ------------------------------------


def _traces(at) -> set:
    return {t.get("name") for t in chart(at)["data"]}


def test_a_stuff_pixel_draws_its_vote_but_joins_no_center(app):
    at, _ = app
    upload(at, u.encode(u.street_image()))
    at.radio(key="stage").set_value("Panoptic").run()
    at.number_input(key="pixel_y").set_value(2).run()  # road
    at.number_input(key="pixel_x").set_value(2).run()
    assert pixel_table(at)["grouping"].startswith("stuff pixel: not grouped")
    assert "vote" in _traces(at) and not {"joined center", "runner-up"} & _traces(at)
    assert "joined center" not in pixel_table(at)
    y0, _, x0, _ = car_boxes(65, 97)[0]  # a car pixel joins its center
    at.number_input(key="pixel_y").set_value(y0).run()
    at.number_input(key="pixel_x").set_value(x0).run()
    assert {"vote", "joined center", "runner-up"} <= _traces(at)


class TinyNegativeOffsets(FakePredictor):
    """Offsets of -1e-5 on the road: they must print as 0.00, not -0.00."""

    def __call__(self, image, *, return_raw=True):
        out = super().__call__(image, return_raw=return_raw)
        road = out.semantic == 0
        out.offsets[road] = -1e-5
        out.center_heatmap[road] = -1e-6
        return out


def test_the_pixel_panel_wraps_its_values_and_never_prints_minus_zero(monkeypatch, tmp_path):
    from panoptic_deeplab.app.components import model_io

    (tmp_path / "m").mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=tmp_path / "m")
    monkeypatch.setattr(model_io, "load_predictor", lambda path: TinyNegativeOffsets())
    st.cache_data.clear()
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT).run()
    upload(at, u.encode(u.street_image()))
    at.number_input(key="pixel_y").set_value(2).run()
    at.number_input(key="pixel_x").set_value(2).run()
    table = pixel_table(at)  # a static table (at.table): long values wrap, none is cut off
    assert table["offset (dy, dx)"] == "(0.00, 0.00)" and table["heatmap here"] == "0.000"
    assert not any("-0.0" in v for v in table.values())
    assert not [d for d in at.dataframe if "value" in d.value.columns]  # no clipping data grid


def _card(model_dir, domain=None, reference=None):
    info = {"format_version": 1, **({"domain": domain} if domain else {})}
    (model_dir / "bundle.json").write_text(json.dumps(info))
    (model_dir / "metrics.json").write_text(
        json.dumps({"scene_confidence": reference} if reference else {})
    )
    (model_dir / "dataset_spec.json").write_text(
        json.dumps({"name": "synthetic", "class_names": ["road", "car"]})
    )


@pytest.mark.parametrize("low, warned", [(0.95, True), (0.5, False)])
def test_the_model_card_domain_is_shown_and_a_far_input_warned_about(app, tmp_path, low, warned):
    at, _ = app
    _card(
        tmp_path / "fake-model",
        "synthetic street scenes",
        {"mean": low + 0.02, "low": low, "images": 60},
    )
    at.run()
    upload(at, u.encode(u.street_image()))
    assert "**Trained on:** synthetic street scenes" in [c.value for c in at.caption]
    # the fake's probabilities: road e^3/(e^3+7) on most pixels, car e^5/(e^5+e^3+6) in the boxes
    score = float(metrics(at)["Scene confidence"])
    assert 0.7 < score < 0.8
    assert (
        any("looks unlike what the model was trained on" in w.value for w in at.warning) == warned
    )


def test_an_old_bundle_without_a_card_says_so(app, tmp_path):
    at, _ = app
    _card(tmp_path / "fake-model")
    at.run()
    upload(at, u.encode(u.street_image()))
    assert any(c.value.startswith("**Trained on:** no domain recorded") for c in at.caption)
    assert not any("looks unlike" in w.value for w in at.warning)


def test_after_an_upload_the_sample_picker_says_the_upload_is_shown(monkeypatch, tmp_path):
    from panoptic_deeplab.app.components import model_io
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    data = make_synthetic_dataset(
        tmp_path / "data", num_train=1, num_val=1, height=33, width=65, workers=1
    )
    (tmp_path / "m").mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=tmp_path / "m", data=data)
    monkeypatch.setattr(model_io, "load_predictor", lambda path: FakePredictor())
    st.cache_data.clear()
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT).run()
    assert at.selectbox(key="sample").value == "val/val_000000.jpg"
    upload(at, u.encode(u.street_image()), name="mine.png")
    assert at.selectbox(key="sample").value == "—" and metrics(at)["Image"] == "97×65"
    assert any("Showing **mine.png** (upload)" in c.value for c in at.caption)
    at.selectbox(key="sample").set_value("val/val_000000.jpg").run()  # a sample replaces the upload
    assert not at.exception and metrics(at)["Image"] == "65×33"
    assert at.file_uploader[0].value is None or not at.file_uploader[0].value


@pytest.fixture
def served_files(monkeypatch) -> dict:
    """{file name: bytes} of every file the page hands to Streamlit's media storage (downloads)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    seen = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        if filename:
            seen[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return seen


def test_every_download_has_its_own_file_name(app, served_files):
    at, _ = app
    upload(at, u.encode(u.street_image()), name="street.png")
    at.radio(key="stage").set_value("Panoptic").run()
    assert [b.proto.label for b in at.get("download_button")] == [
        "Panoptic PNG",
        "Segments JSON",
        "Panoptic overlay PNG",
    ]
    assert {"street_panoptic.png", "street_panoptic.json", "street_panoptic_overlay.png"} <= set(
        served_files
    )


def test_the_downloads_are_coco_panoptic_with_road_kept(app, served_files):
    """The page's PNG and JSON follow COCO panoptic as `pdl predict` writes it: road (class 0) is
    segment 1, not VOID 0, and every PNG id has its segments_info entry."""
    import io

    at, _ = app
    upload(at, u.encode(u.street_image()), name="street.png")
    ids = np.asarray(
        Image.open(io.BytesIO(served_files["street_panoptic.png"])).convert("RGB"), np.int64
    )
    ids = ids[..., 0] + 256 * ids[..., 1] + 65536 * ids[..., 2]
    coco = json.loads(served_files["street_panoptic.json"])
    (annotation,) = coco["annotations"]
    assert (
        annotation["file_name"] == "street_panoptic.png"
        and coco["images"][0]["id"] == annotation["image_id"]
    )
    by_id = {s["id"]: s for s in annotation["segments_info"]}
    assert ids[0, 0] != 0 and by_id[ids[0, 0]]["category_id"] == 0  # road
    assert sorted(np.unique(ids).tolist()) == sorted(by_id)
    assert [s["category_id"] for s in annotation["segments_info"]] == [0, CAR, CAR]
    y0, y1, x0, x1 = car_boxes(65, 97)[0]
    assert by_id[ids[y0, x0]]["area"] == (y1 - y0) * (x1 - x0)
    assert {c["id"] for c in coco["categories"]} == set(range(8)) and coco["info"][
        "same_as_pdl_predict"
    ] is True


# -- issue 28: the pixel panel and captions say what the post-processing did ---------------------


class PersonAndCar(FakePredictor):
    """The first (smaller) box is a person, the second a car; a -0.012 heatmap on the road."""

    def __call__(self, image, *, return_raw=True):
        out = super().__call__(image, return_raw=return_raw)
        y0, y1, x0, x1 = car_boxes(*image.shape[:2])[0]
        box = out.semantic_probs[y0:y1, x0:x1]
        box[..., [PERSON, CAR]] = box[..., [CAR, PERSON]]
        out.center_heatmap[out.center_heatmap < 1e-3] = -0.012
        return out


PERSON = 5


@pytest.fixture
def person_app(monkeypatch, tmp_path):
    from panoptic_deeplab.app.components import model_io

    (tmp_path / "m").mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=tmp_path / "m")
    monkeypatch.setattr(model_io, "load_predictor", lambda path: PersonAndCar())
    st.cache_data.clear()
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT).run()
    return upload(at, u.encode(u.street_image()))


def test_with_no_center_the_panel_says_the_image_forms_one_majority_instance(person_app):
    at = person_app
    at.slider(key="pp_threshold").set_value(0.95).run()  # no center survives
    y0, _, x0, _ = car_boxes(65, 97)[0]  # a person pixel (16 x 20 px; the car has 16 x 24)
    at.number_input(key="pixel_y").set_value(y0).run()
    at.number_input(key="pixel_x").set_value(x0).run()
    table = pixel_table(at)
    assert table["class"] == "person (thing)"
    assert table["panoptic segment"] == str(CAR * 1000 + 1)  # inside the one car segment
    assert table["joined center"] == (
        "no center detected: all thing pixels of the image form one instance, which takes the "
        "majority class (car)"
    )


def test_the_centers_caption_covers_negative_heatmap_values(person_app):
    at = person_app
    at.radio(key="stage").set_value("Centers").run()
    at.number_input(key="pixel_y").set_value(2).run()
    at.number_input(key="pixel_x").set_value(2).run()
    assert pixel_table(at)["heatmap here"] == "-0.012"
    caption = next(c.value for c in at.caption if c.value.startswith("Colour: raw center"))
    assert caption.startswith("Colour: raw center heatmap, 0 … 0.900")
    assert "down to -0.012; below 0 is drawn as 0" in caption


def test_the_segments_table_writes_no_none(app):
    at, _ = app
    upload(at, u.encode(u.street_image()))
    table = next(d.value for d in at.dataframe if "segment id" in d.value.columns)
    assert table.loc[table["kind"] == "stuff", "score"].eq("–").all()
    assert "None" not in table.astype(str).values


def test_on_a_large_image_any_pixel_can_be_clicked_in_the_close_up(app):
    """The big view's click grid skips pixels on a large image ((101, 77) snapped to (100, 80));
    the close-up next to the pixel panel has every pixel around the inspected one as a click
    target, in image coordinates (issue 28 item 5)."""
    from panoptic_deeplab.app.components import figures

    at, _ = app
    upload(at, u.encode(u.street_image(600, 800)))
    assert figures.grid_step(600, 800) > 1
    at.number_input(key="pixel_y").set_value(101).run()
    at.number_input(key="pixel_x").set_value(77).run()
    assert not at.exception, at.exception
    grids = [grid_trace(chart(at, k)) for k in range(len(at.get("plotly_chart")))]
    points = [
        set(zip(u.plotly_array(g["y"]).tolist(), u.plotly_array(g["x"]).tolist())) for g in grids
    ]
    assert (101, 77) not in points[0]  # the main view's sub-sampled grid
    close = next(p for p in points if (101, 77) in p)
    assert close == {(y, x) for y in range(85, 118) for x in range(61, 94)}  # 33 x 33, all of them
    event = {"selection": {"points": [{"x": 78, "y": 100}]}}  # a click on a close-up point
    assert figures.selected_pixel(event, (600, 800)) == (100, 78)
