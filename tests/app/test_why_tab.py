"""AppTest suite for the Evaluate page's "Why" tab: the oracle table (the CLI's numbers, largest
gain marked), the stacked error breakdown, and the drill-down from (class, error type) to the images
where it happens most with those segments highlighted. The results file is made by the library's
own evaluation with oracles (``evaluation.evaluate_split``) on the fake model's head outputs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.app import apptest_utils as u
from tests.app.fakes import FakePredictor

CAR = 6


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(
        tmp_path_factory.mktemp("why") / "data",
        num_train=1,
        num_val=3,
        height=65,
        width=97,
        workers=1,
    )


@pytest.fixture(scope="module")
def result_json(dataset):
    """What `pdl evaluate --oracle semantic,center,offset,all --out` writes for the fake model."""
    from panoptic_deeplab.datasets.readers import open_dataset
    from panoptic_deeplab.evaluation.evaluate_split import Evaluation, OracleEvaluation
    from panoptic_deeplab.evaluation.oracles import parse_oracles
    from panoptic_deeplab.postprocess import PostProcessOptions

    fake = FakePredictor()
    options = PostProcessOptions.from_config(fake.config, fake.spec)
    reader = open_dataset(dataset, "val")
    evaluation = Evaluation(fake.spec, ap="none")
    oracles = OracleEvaluation(
        fake.spec, parse_oracles("semantic,center,offset,all"), options, sigma=2.0
    )
    for i, example in enumerate(reader):
        out = fake(reader.load_image(i))
        out.segments = [
            SimpleNamespace(id=int(v), score=0.8, isthing=fake.spec.is_thing(int(v) // 1000))
            for v in np.unique(out.panoptic)
        ]
        gt = reader.load_panoptic(i)
        record = evaluation.add(example.image_id, Path(example.image_path).name, gt, out)
        oracles.add(record, gt, out)
    result = evaluation.result()
    result.dataset, result.split, result.oracles = str(dataset), "val", oracles.result()
    return result.to_json()


def frame_with(at, column):
    """The page's dataframe that has this column (AppTest finds dataframes by position, not key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def open_page(monkeypatch, tmp_path, dataset, result):
    from panoptic_deeplab.app.components import eval_results as er
    from panoptic_deeplab.app.components import model_io

    model_dir = tmp_path / "fake-model"
    model_dir.mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=model_dir, data=dataset)
    monkeypatch.setattr(model_io, "load_predictor", lambda path: FakePredictor())
    st.cache_data.clear()
    path = er.result_path(
        tmp_path / "work" / "results", model_dir, dataset, "val", 0, "semantic,center,offset,all"
    )
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"model": str(model_dir), **result}))
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT)
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception, at.exception
    return at


def test_oracle_table_shows_the_cli_numbers_and_marks_the_largest_gain(
    monkeypatch, tmp_path, dataset, result_json
):
    from panoptic_deeplab.evaluation.report import oracle_class_table
    from panoptic_deeplab.evaluation.results import EvaluationResult

    at = open_page(monkeypatch, tmp_path, dataset, result_json)
    shown = frame_with(at, "largest gain").set_index("class")
    expected = oracle_class_table(EvaluationResult.from_json(result_json)).set_index("class")
    for column in ("model", "semantic", "center", "offset", "all", "largest gain"):
        assert list(shown[column].fillna(-1)) == list(expected[column].fillna(-1)), column
    # The fake predicts only road and two cars: the semantic head costs most, and the page says so.
    best = expected["gain"].idxmax()
    assert expected.loc[best, "largest gain"].startswith("semantic +")
    sentences = [m.value for m in at.markdown if "PQ points" in m.value]
    assert any(
        f"**{best}**" in s and f"{expected.loc[best, 'gain']:.1f} PQ points" in s for s in sentences
    )


def test_breakdown_bars_stack_to_100_and_a_type_lists_its_images(
    monkeypatch, tmp_path, dataset, result_json
):
    at = open_page(monkeypatch, tmp_path, dataset, result_json)
    chart = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if json.loads(c.proto.spec)["layout"].get("barmode") == "stack"
    )
    classes = list(u.plotly_array(chart["data"][0]["x"]))
    totals = np.sum([u.plotly_array(trace["y"]).astype(float) for trace in chart["data"]], axis=0)
    assert np.allclose(totals, 100.0, atol=0.05) and len(classes) == len(
        result_json["errors"]["per_class"]
    )
    # The numbers under the chart: points lost, then "PQ if fixed", as in the results file.
    points, fixed = [d.value.set_index("class") for d in at.dataframe if "split" in d.value.columns]
    car = result_json["errors"]["per_class"][str(CAR)]
    assert points.loc["car", "split"] == pytest.approx(car["points"]["split"], abs=0.01)
    assert fixed.loc["car", "split"] == pytest.approx(car["pq_if_fixed"]["split"], abs=0.01)
    assert fixed.loc["car", "IoU of matches < 1"] == pytest.approx(
        car["pq_if_fixed"]["matched_iou"], abs=0.01
    )
    # Car, and its most frequent error type in the results file.
    counts = result_json["errors"]["per_class"][str(CAR)]["counts"]
    error = max(counts, key=counts.get)
    assert counts[error] > 0
    at.selectbox(key="why_class").set_value("car").run()
    at.selectbox(key="why_type").set_value(error).run()
    assert not at.exception, at.exception
    listed = frame_with(at, "predicted segments")
    expected = {}
    for image in result_json["per_image"]:
        n = sum(
            s.get("error") == error and s["category_id"] == CAR
            for s in image["gt_segments"] + image["pred_segments"]
        )
        if n:
            expected[image["file_name"]] = n
    assert dict(zip(listed["image"], listed["count"])) == expected
    assert list(listed["count"]) == sorted(listed["count"], reverse=True)
    # The drill-down highlights exactly those segments of the first listed image.
    first = next(i for i in result_json["per_image"] if i["file_name"] == listed["image"].iloc[0])
    n_gt = sum(s.get("error") == error and s["category_id"] == CAR for s in first["gt_segments"])
    n_pred = sum(
        s.get("error") == error and s["category_id"] == CAR for s in first["pred_segments"]
    )
    titles = [
        json.loads(c.proto.spec)["layout"].get("title", {}).get("text")
        for c in at.get("plotly_chart")
    ]
    assert (
        f"Ground truth: {n_gt} highlighted" in titles
        and f"Prediction: {n_pred} highlighted" in titles
    )


def test_a_result_without_oracles_says_how_to_get_them(monkeypatch, tmp_path, dataset, result_json):
    plain = {k: v for k, v in result_json.items() if k != "oracles"}
    at = open_page(monkeypatch, tmp_path, dataset, plain)
    assert any("without oracles" in i.value for i in at.info)
    assert at.selectbox(key="why_class").value is not None  # the breakdown is still there


def test_clicked_bar_names_the_class_and_error_type():
    from panoptic_deeplab.app.components.error_analysis import clicked_bar

    event = {"selection": {"points": [{"x": "bus", "customdata": ["split"], "curve_number": 3}]}}
    assert clicked_bar(event) == ("bus", "split")
    assert clicked_bar({"selection": {"points": [{"x": "bus", "customdata": ["PQ"]}]}}) is None
    assert clicked_bar(None) is None


def test_a_split_highlights_the_gt_segment_that_was_split_and_a_merge_its_prediction():
    """Issue 28 item 7: the GT bus is matched (no error of its own); the piece split off it is the
    FP "split". Both sides are highlighted; likewise a merge's matched prediction."""
    from panoptic_deeplab.app.components import error_analysis as ea
    from panoptic_deeplab.evaluation.results import GTSegment, ImageResult, PredSegment

    bus, car = 7, 6
    record = ImageResult(
        image_id=1,
        file_name="a.png",
        pq=None,
        sq=None,
        rq=None,
        n=2,
        tp=2,
        fp=1,
        fn=1,
        gt_segments=[
            GTSegment(7001, bus, False, 90, "matched", matched_pred=7001, best_pred=7001),
            GTSegment(6001, car, False, 40, "matched", matched_pred=6001, best_pred=6001),
            GTSegment(6002, car, False, 30, "missed", "merged", "merge", best_pred=6001),
        ],
        pred_segments=[
            PredSegment(7001, bus, 70, "matched", matched_gt=7001, best_gt=7001),
            PredSegment(7002, bus, 20, "false_positive", "split", "split", best_gt=7001),
            PredSegment(6001, car, 75, "matched", matched_gt=6001, best_gt=6001),
        ],
    )
    assert ea.error_segments(record, bus, "split") == ({7001}, {7002})
    assert ea.error_segments(record, car, "merge") == ({6002}, {6001})
    assert ea.error_segments(record, bus, "missed") == (set(), set())
