"""Review scoring: the numbers of each ranking item computed by hand, possible missing objects,
the stored predictions (no network after scoring), prediction files as a source, and the class
mapping of a model's outputs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from panoptic_deeplab.datasets.coco_panoptic import id_to_rgb
from panoptic_deeplab.errors import UserError
from panoptic_deeplab.review import (
    Prediction,
    PredictionFilesSource,
    ReviewError,
    ReviewStore,
    score_image,
    score_segments,
)
from panoptic_deeplab.review.sources import load_prediction, save_prediction
from tests.core.review.review_fixtures import (
    CAR,
    CATEGORIES,
    PERSON,
    ROAD,
    H,
    W,
    image_a,
    image_b,
    pred_a,
    predictions,
)


def _small() -> tuple[np.ndarray, list[dict], Prediction]:
    """8x10: road 10, a car 20 (12 px) the model calls a person at 0.9, a person 30 (4 px), one
    void pixel; two road pixels the model calls car at 0.5."""
    ids = np.full((8, 10), 10, np.int64)
    ids[1:4, 5:9] = 20
    ids[5:7, 1:3] = 30
    ids[7, 9] = 0
    segs = [
        {"id": 10, "category_id": ROAD, "iscrowd": 0},
        {"id": 20, "category_id": CAR, "iscrowd": 0},
        {"id": 30, "category_id": PERSON, "iscrowd": 0},
    ]
    sem = np.full((8, 10), ROAD)
    conf = np.full((8, 10), 0.8)
    sem[ids == 20] = PERSON
    conf[ids == 20] = 0.9
    sem[ids == 30] = PERSON
    sem[0, 0:2] = CAR
    conf[0, 0:2] = 0.5
    pan = np.where(ids == 20, 2, np.where(ids == 30, 3, 1))
    pan[1, 5] = 1  # the predicted person misses one pixel of the annotated car
    return ids, segs, Prediction(sem, conf, pan, {1: ROAD, 2: PERSON, 3: PERSON})


def test_gt_items_computed_by_hand():
    ids, segs, pred = _small()
    items = {i.segment_id: i for i in score_image(1, ids, segs, pred) if i.kind == "gt_segment"}
    car, person, road = items[20], items[30], items[10]
    assert car.disagreement == pytest.approx(0.9)  # every car pixel called person at 0.9
    assert car.suggested_category_id == PERSON and car.model_category_id == PERSON
    assert car.best_iou == 0.0  # no predicted car at all
    assert car.score == pytest.approx(max(0.9, (1 - 0.0) * 0.9))
    assert car.pred_segment_id == 2  # the predicted segment overlapping it most
    assert car.bbox == [5, 1, 4, 3] and car.area == 12
    assert person.disagreement == 0.0 and person.suggested_category_id is None
    assert person.best_iou == pytest.approx(1.0) and person.score == pytest.approx(0.0)
    road_area = 8 * 10 - 12 - 4 - 1
    assert road.area == road_area
    assert road.disagreement == pytest.approx(2 * 0.5 / road_area)
    assert road.suggested_category_id == CAR and road.model_category_id == ROAD
    # predicted road segment 1 = the GT road + the car-outline pixel + the void pixel
    iou = road_area / (road_area + 2)
    assert road.best_iou == pytest.approx(iou)
    # The outline term's confidence: only where the predicted segment's class is the model's own
    # per-pixel class (not the two road pixels its semantic map calls car).
    outline_conf = (road_area - 2) * 0.8 / road_area
    assert road.score == pytest.approx(max(2 * 0.5 / road_area, (1 - iou) * outline_conf))
    assert [s.segment_id for s in score_segments(1, ids, segs, pred)] == [10, 20, 30]


def test_missing_objects_and_merged_segments():
    ids, segs = image_a()
    items = score_image(1, ids, segs, pred_a())
    missing = [i for i in items if i.kind == "missing"]
    assert [(m.pred_segment_id, m.category_id, m.bbox, m.area) for m in missing] == [
        (4, CAR, [2, 8, 5, 4], 20)
    ]
    assert missing[0].score == pytest.approx(0.9) and missing[0].segment_id is None
    # Image b: the GT car is two cars for the model. Neither is "missing" (both lie inside a GT
    # car); the GT car's best IoU is 20/35.
    ids_b, segs_b = image_b()
    items_b = score_image(2, ids_b, segs_b, predictions()["2"])
    assert [i.kind for i in items_b] == ["gt_segment", "gt_segment"]
    car = next(i for i in items_b if i.segment_id == 21)
    assert car.best_iou == pytest.approx(20 / 35)
    assert car.score == pytest.approx((1 - 20 / 35) * 0.9)


def test_a_thing_of_another_class_inside_an_annotated_thing_is_not_missing():
    # Image b's GT car (35 px) partly seen as a person (16 px, IoU 0.46 with the car: no match),
    # outside every GT person but inside the GT car, which is ranked for its class: the person is
    # not a missing object.
    ids_b, segs_b = image_b()
    pan = np.ones((H, W), np.int64)
    pan[3:7, 3:7] = 2
    pred = Prediction(None, np.full((H, W), 0.9), pan, {1: ROAD, 2: PERSON})
    categories = {c["id"]: c for c in CATEGORIES}
    items = score_image(2, ids_b, segs_b, pred, categories)
    assert [i.kind for i in items] == ["gt_segment", "gt_segment"]
    car = next(i for i in items if i.segment_id == 21)
    assert car.disagreement == pytest.approx(0.9) and car.suggested_category_id == ROAD
    # Without the classes' thing flags only GT persons count as covering it: listed as missing.
    missing = [i for i in score_image(2, ids_b, segs_b, pred) if i.kind == "missing"]
    assert [(m.pred_segment_id, m.category_id, m.area) for m in missing] == [(2, PERSON, 16)]


def test_scores_are_used_as_confidence_for_prediction_files():
    ids, segs = image_a()
    pan = pred_a().panoptic
    info = [
        {"id": 1, "category_id": ROAD},
        {"id": 2, "category_id": CAR, "score": 0.8},
        {"id": 3, "category_id": PERSON, "score": 0.7},
        {"id": 4, "category_id": CAR, "score": 0.6},
    ]
    from panoptic_deeplab.review import prediction_from_panoptic

    pred = prediction_from_panoptic(pan, info)
    missing = [i for i in score_image(1, ids, segs, pred) if i.kind == "missing"]
    assert missing[0].confidence == pytest.approx(0.6) and missing[0].score == pytest.approx(0.6)
    person = next(i for i in score_image(1, ids, segs, pred) if i.segment_id == 30)
    assert person.best_iou == pytest.approx(8 / 12)
    assert person.score == pytest.approx((1 - 8 / 12) * 0.7)  # the segment's score as confidence


def test_a_prediction_of_another_size_is_refused():
    ids, segs = image_a()
    with pytest.raises(ReviewError, match="predict at the annotation's size"):
        score_image(1, ids, segs, Prediction(np.zeros((H, W + 1), np.int64)))


def test_stored_predictions_round_trip(tmp_path):
    pred = pred_a()
    pred.confidence = np.linspace(0, 1, H * W).reshape(H, W)
    pred.scores = {2: 0.5}
    save_prediction(tmp_path / "p.npz", pred)
    back = load_prediction(tmp_path / "p.npz")
    assert np.array_equal(back.panoptic, pred.panoptic) and np.array_equal(
        back.semantic, pred.semantic
    )
    assert back.segments == pred.segments and back.scores == {2: 0.5}
    assert np.abs(back.confidence - pred.confidence).max() <= 0.005


def test_decisions_and_edits_never_run_the_network_again(dataset, tmp_path):
    calls = []

    def predict(image, image_id):
        calls.append(image_id)
        return predictions()[str(image_id)]

    store = ReviewStore(dataset, "val", tmp_path / "review")
    store.score_images("m", predict)
    assert sorted(calls) == ["1", "2"]
    store.take_model(1, 20, source="m")
    store.add_missed(1, 4, source="m")
    store.split_segment(2, 21, source="m")
    store.undo()
    reopened = ReviewStore(dataset, "val", tmp_path / "review")  # after a restart too
    reopened.take_model(1, 30, source="m")
    reopened.ranked("m")
    assert reopened.score_images("m", predict) == 0
    assert sorted(calls) == ["1", "2"]
    assert np.array_equal(reopened.prediction("m", 1).panoptic, pred_a().panoptic)


def _prediction_files(folder, pan_by_image: dict, segments_by_image: dict):
    folder.mkdir()
    (folder / "panoptic").mkdir()
    anns = []
    for image_id, pan in pan_by_image.items():
        name = f"p{image_id}.png"
        cv2.imwrite(str(folder / "panoptic" / name), id_to_rgb(pan)[..., ::-1])
        anns.append(
            {"image_id": image_id, "file_name": name, "segments_info": segments_by_image[image_id]}
        )
    (folder / "panoptic.json").write_text(
        json.dumps({"annotations": anns, "categories": CATEGORIES})
    )
    return folder / "panoptic.json", folder / "panoptic"


def test_scoring_against_prediction_files(dataset, tmp_path):
    # Another tool's prediction of image 1: other segment ids, in another order.
    pan = pred_a().panoptic * 100
    segments = [
        {"id": 400, "category_id": CAR, "score": 0.95},
        {"id": 100, "category_id": ROAD},
        {"id": 300, "category_id": PERSON},
        {"id": 200, "category_id": CAR, "score": 0.9},
    ]
    pan_b = np.full((H, W), 7, np.int64)
    json_path, png_dir = _prediction_files(
        tmp_path / "preds", {1: pan, 2: pan_b}, {1: segments, 2: [{"id": 7, "category_id": ROAD}]}
    )
    source = PredictionFilesSource(json_path, png_dir)
    store = ReviewStore(dataset, "val", tmp_path / "review")
    assert store.score(source) == 2
    df = store.ranked(source)
    car_b, missing = df.iloc[0], df.iloc[1]  # no score in image 2's prediction: confidence 1
    assert (car_b.image_id, car_b.segment_id, car_b.score) == ("2", 21, 1.0)
    assert car_b.disagreement == 1.0 and car_b.model_category == "road"
    assert (missing.kind, missing.pred_segment_id) == ("missing", 400)
    assert missing.score == pytest.approx(0.95)  # its segment's score
    assert store.scoring_progress(source).scored == 2

    del_one = PredictionFilesSource(json_path, png_dir)
    del_one._by_image.pop("2")
    other = ReviewStore(dataset, "val", tmp_path / "review2")
    with pytest.raises(UserError, match="no prediction for image id 2"):
        other.score(del_one)
    assert other.scoring_progress(del_one).state == "failed"


def test_model_outputs_map_to_the_data_sets_categories():
    from types import SimpleNamespace

    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.review import category_mapping, prediction_from_model

    spec = get_dataset_spec("synthetic")  # road 0 ... person 5, car 6, bus 7
    mapping = category_mapping(spec, CATEGORIES)  # here: road 7, sky 11, person 24, car 26
    assert mapping.tolist() == [7, -1, -1, -1, 11, 24, 26, -1]
    void = spec.ignore_label * spec.label_divisor
    panoptic = np.array([[0, 0, 6001], [6001, 5001, void]])  # road (value 0!), car, person, void
    semantic = np.array([[0, 0, 6], [6, 5, 7]])
    probs = np.zeros((2, 3, spec.num_classes))
    probs[..., 0] = 0.3
    probs[0, 0, 0] = 0.9
    pred = prediction_from_model(
        SimpleNamespace(semantic=semantic, semantic_probs=probs, panoptic=panoptic), spec, mapping
    )
    assert pred.semantic.tolist() == [[7, 7, 26], [26, 24, -1]]  # bus is not a class here
    assert pred.confidence[0, 0] == pytest.approx(0.9) and pred.confidence[1, 1] == pytest.approx(
        0.3
    )
    assert pred.panoptic.tolist() == [[1, 1, 6002], [6002, 5002, 0]]  # 0 is void only
    assert pred.segments == {1: 7, 5002: 24, 6002: 26}


def test_a_second_scoring_with_the_same_source_is_refused_naming_the_first(dataset, tmp_path):
    from panoptic_deeplab.safe_files import LockedError

    store = ReviewStore(dataset, "val", tmp_path / "review")
    preds = predictions()
    refused = []

    def predict(image, image_id):
        if not refused:  # while the first scoring runs, a second one (the app, a job) starts
            other = ReviewStore(dataset, "val", tmp_path / "review")
            with pytest.raises(LockedError, match="scoring with m") as caught:
                other.score_images("m", predict)
            refused.append(str(caught.value))
        return preds[str(image_id)]

    assert store.score_images("m", predict) == 2
    assert refused and "pid" in refused[0]
    assert store.scoring_progress("m").state == "finished"


THINGS = {c["id"]: c for c in CATEGORIES}


def _car_on_road(gt_car: tuple, pred_cars: list[tuple], conf: float = 0.9):
    """20x30 road with one GT car (``gt_car``: row and column slices) and the model's road and
    cars (``pred_cars``, ids 2, 3, ...), the semantic map following the panoptic one."""
    ids = np.full((20, 30), 10, np.int64)
    ids[gt_car] = 21
    segs = [{"id": 10, "category_id": ROAD}, {"id": 21, "category_id": CAR}]
    pan = np.ones((20, 30), np.int64)
    for k, box in enumerate(pred_cars):
        pan[box] = 2 + k
    classes = {1: ROAD, **{2 + k: CAR for k in range(len(pred_cars))}}
    sem = np.where(pan == 1, ROAD, CAR)
    pred = Prediction(sem, np.full((20, 30), conf), pan, classes)
    items = score_image(1, ids, segs, pred, THINGS)
    return next(i for i in items if i.segment_id == 21)


def test_a_gt_thing_over_two_predicted_things_is_a_likely_merge():
    # GT car 8x16 = two predicted cars of 8x8 side by side: the second fills what the first
    # leaves out, so merge = its confidence (0.9), above the outline term (1 - 0.5) * 0.9.
    car = _car_on_road((slice(5, 13), slice(2, 18)), [np.s_[5:13, 2:10], np.s_[5:13, 10:18]])
    assert car.best_iou == pytest.approx(0.5)
    assert car.extra["merge"] == pytest.approx(0.9) and car.score == pytest.approx(0.9)
    # A 16-pixel fragment of the model's in a 64-pixel part the first car leaves out: 0.9 x 16/64.
    car = _car_on_road((slice(5, 13), slice(2, 18)), [np.s_[5:13, 2:10], np.s_[5:9, 10:14]])
    assert car.extra["merge"] == pytest.approx(0.9 * 16 / 64)
    assert car.score == pytest.approx((1 - 0.5) * 0.9)  # the plain outline term is higher


def test_a_displaced_gt_thing_is_a_likely_shift_and_a_wrong_shape_is_not():
    # GT car 8x8 four pixels right of the predicted one of the same shape: IoU 32 / 96; moved
    # back, the prediction matches exactly, so the whole outline error is the displacement.
    car = _car_on_road((slice(5, 13), slice(8, 16)), [np.s_[5:13, 4:12]])
    assert car.best_iou == pytest.approx(1 / 3)
    assert car.extra["shift"] == pytest.approx(0.9) and car.score == pytest.approx(0.9)
    # A flat 4x16 prediction on the same centroid: no translation helps, only the outline term.
    car = _car_on_road((slice(5, 13), slice(8, 16)), [np.s_[7:11, 4:20]])
    assert car.best_iou == pytest.approx(1 / 3)
    assert car.extra["shift"] == 0.0 and car.extra["merge"] == 0.0
    assert car.score == pytest.approx((1 - 1 / 3) * 0.9)


def test_a_thing_the_model_groups_into_a_neighbours_instance_is_no_outline_evidence():
    # The model's semantic map agrees with the GT person, but its panoptic grouping put those
    # pixels into the neighbouring car's instance: no predicted person, yet no outline evidence.
    ids = np.full((12, 16), 10, np.int64)
    ids[2:6, 2:6] = 30
    segs = [{"id": 10, "category_id": ROAD}, {"id": 30, "category_id": PERSON}]
    pan = np.ones((12, 16), np.int64)
    pan[2:8, 2:10] = 2  # a car instance swallowing the person
    sem = np.where(pan == 2, CAR, ROAD)
    sem[ids == 30] = PERSON
    pred = Prediction(sem, np.full((12, 16), 0.9), pan, {1: ROAD, 2: CAR})
    person = next(i for i in score_image(1, ids, segs, pred, THINGS) if i.segment_id == 30)
    assert person.best_iou == 0.0 and person.disagreement == 0.0
    assert person.score == 0.0
