"""Annotation review: ranking by confident disagreement, decisions that persist and undo, and the
corrected export (checked with panopticapi's pq_compute, the trusted reader of the format)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from panoptic_deeplab.datasets.coco_panoptic import id_to_rgb, read_segment_ids
from panoptic_deeplab.review import Prediction, ReviewError, ReviewStore, score_segments

ROAD, CAR, PERSON = 7, 26, 24  # category ids (not contiguous on purpose)
CATEGORIES = [
    {"id": ROAD, "name": "road", "isthing": 0},
    {"id": PERSON, "name": "person", "isthing": 1},
    {"id": CAR, "name": "car", "isthing": 1},
]
H, W = 8, 10


def _image_a() -> tuple[np.ndarray, list[dict]]:
    ids = np.full((H, W), 10, np.int64)  # road everywhere ...
    ids[1:4, 5:9] = 20  # ... a car (12 px) ...
    ids[5:7, 1:3] = 30  # ... a person (4 px) ...
    ids[7, 9] = 0  # ... and one void pixel
    segs = [
        {"id": 10, "category_id": ROAD, "iscrowd": 0},
        {"id": 20, "category_id": CAR, "iscrowd": 0},
        {"id": 30, "category_id": PERSON, "iscrowd": 0},
    ]
    return ids, segs


def _image_b() -> tuple[np.ndarray, list[dict]]:
    ids = np.full((H, W), 11, np.int64)
    ids[2:6, 2:6] = 21  # a car (16 px)
    return ids, [
        {"id": 11, "category_id": ROAD, "iscrowd": 0},
        {"id": 21, "category_id": CAR, "iscrowd": 0},
    ]


def _fill_area_bbox(ids: np.ndarray, segs: list[dict]) -> list[dict]:
    for s in segs:
        ys, xs = np.nonzero(ids == s["id"])
        s["area"] = int(len(ys))
        s["bbox"] = [int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)]
    return segs


@pytest.fixture
def dataset(tmp_path) -> Path:
    root = tmp_path / "src"
    (root / "annotations" / "panoptic_val").mkdir(parents=True)
    (root / "val").mkdir()
    images, annotations = [], []
    for k, (name, (ids, segs)) in enumerate((("a", _image_a()), ("b", _image_b()))):
        cv2.imwrite(
            str(root / "annotations" / "panoptic_val" / f"{name}.png"), id_to_rgb(ids)[..., ::-1]
        )
        cv2.imwrite(str(root / "val" / f"{name}.png"), np.full((H, W, 3), 40 * k, np.uint8))
        images.append({"id": k + 1, "file_name": f"{name}.png", "height": H, "width": W})
        annotations.append(
            {
                "image_id": k + 1,
                "file_name": f"{name}.png",
                "segments_info": _fill_area_bbox(ids, segs),
            }
        )
    coco = {"images": images, "annotations": annotations, "categories": CATEGORIES}
    (root / "annotations" / "panoptic_val.json").write_text(json.dumps(coco))
    # A second split the review does not touch: it must be carried over unchanged.
    (root / "annotations" / "panoptic_train.json").write_text(json.dumps(coco))
    (root / "annotations" / "panoptic_train").mkdir()
    (root / "train").mkdir()
    return root


def _predictions() -> dict[str, Prediction]:
    ids_a, _ = _image_a()
    sem = np.full((H, W), ROAD)
    conf = np.full((H, W), 0.8)
    sem[ids_a == 20] = PERSON  # the model is sure the "car" is a person: a likely wrong label
    conf[ids_a == 20] = 0.9
    sem[ids_a == 30] = PERSON
    sem[0, 0:2] = CAR  # two road pixels it calls car, unsure
    conf[0, 0:2] = 0.5
    pan_a = np.where(ids_a == 20, 2, np.where(ids_a == 30, 3, 1))
    pan_a[1, 5] = 1  # the predicted person misses one pixel of the annotated car outline
    pred_a = Prediction(sem, conf, pan_a, {1: ROAD, 2: PERSON, 3: PERSON})
    ids_b, _ = _image_b()
    pan_b = np.where(ids_b == 21, 5, 4)
    pan_b[2, 2] = 4  # one car pixel predicted as road: car IoU 15/16, road IoU 64/65
    pred_b = Prediction(np.where(ids_b == 21, CAR, ROAD), None, pan_b, {4: ROAD, 5: CAR})
    return {"1": pred_a, "2": pred_b}


def test_score_segments_hand_computed():
    ids, segs = _image_a()
    scores = {s.segment_id: s for s in score_segments(1, ids, segs, _predictions()["1"])}
    car, person, road = scores[20], scores[30], scores[10]
    assert car.disagreement == pytest.approx(0.9)  # every car pixel called person at 0.9
    assert car.suggested_category_id == PERSON
    assert car.best_iou == 0.0  # no predicted car at all
    assert person.disagreement == 0.0 and person.suggested_category_id is None
    # the person: GT 4 px; predicted person segment 3 covers exactly those 4 px -> IoU 1
    assert person.best_iou == pytest.approx(1.0)
    road_area = H * W - 12 - 4 - 1
    assert road.area == road_area
    assert road.disagreement == pytest.approx(2 * 0.5 / road_area)
    assert road.suggested_category_id == CAR
    # road: predicted road segment 1 = road pixels - 2 + the one car pixel it took; IoU by hand:
    inter = road_area  # all GT road pixels are in predicted segment 1 (the 2 'car' pixels are semantic only)
    pred_area = road_area + 1 + 1  # + the car-outline pixel + the void pixel
    assert road.best_iou == pytest.approx(inter / pred_area)


def test_score_rejects_a_prediction_of_another_size():
    ids, segs = _image_a()
    with pytest.raises(ReviewError, match="predict at the annotation's size"):
        score_segments(1, ids, segs, Prediction(np.zeros((H, W + 1), np.int64)))


def test_ranking_puts_confident_disagreement_first(dataset, tmp_path):
    store = ReviewStore(dataset, "val", tmp_path / "review")
    preds = _predictions()
    assert store.score_images("m1", lambda image, image_id: preds[str(image_id)]) == 2
    assert store.score_images("m1", lambda image, image_id: preds[str(image_id)]) == 0  # cached
    df = store.ranked("m1")
    assert list(zip(df.image_id, df.segment_id))[:2] == [("1", 20), ("1", 10)]
    assert df.iloc[0]["suggested"] == "person" and df.iloc[0]["category"] == "car"
    # zero-disagreement segments come last, the worse-outlined one (lower best IoU) first among them
    tail = df[df.disagreement == 0]
    assert list(zip(tail.image_id, tail.segment_id)) == [("2", 21), ("2", 11), ("1", 30)]
    assert list(tail.best_iou) == pytest.approx([15 / 16, 64 / 65, 1.0])


def test_decisions_persist_across_reopen_and_undo(dataset, tmp_path):
    store = ReviewStore(dataset, "val", tmp_path / "review")
    store.decide(1, 20, "accept")
    store.decide(1, 20, "relabel", PERSON)
    store.comment(1, 20, "looks like a pedestrian")
    store.decide(2, 21, "crowd")
    with pytest.raises(ReviewError, match="stuff class"):
        store.decide(1, 10, "crowd")
    with pytest.raises(ReviewError, match="relabel needs a category"):
        store.decide(1, 10, "relabel", 999)
    with pytest.raises(ReviewError, match="no segment 99"):
        store.decide(1, 99, "accept")

    reopened = ReviewStore(dataset, "val", tmp_path / "review")  # e.g. after an app restart
    d = reopened.decision(1, 20)
    assert (d.action, d.category_id, d.comment) == ("relabel", PERSON, "looks like a pedestrian")
    assert reopened.history_size() == 4

    reopened.undo()  # the crowd mark goes
    assert reopened.decision(2, 21) is None
    reopened.undo()  # the comment goes, the relabel stays
    d = reopened.decision(1, 20)
    assert (d.action, d.comment) == ("relabel", "")
    assert reopened.undo().action == "accept"
    assert reopened.undo() is None and reopened.decision(1, 20) is None
    assert reopened.undo() is None  # nothing left


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_export_writes_a_corrected_set_and_leaves_the_source_alone(dataset, tmp_path):
    from panopticapi.evaluation import pq_compute

    before = _tree_digest(dataset)
    store = ReviewStore(dataset, "val", tmp_path / "review")
    store.score_images("m1", lambda image, image_id: _predictions()[str(image_id)])
    store.decide(1, 20, "relabel", PERSON)  # car -> person
    store.decide(1, 30, "relabel", ROAD)  # person -> road: merged into the road segment
    store.decide(2, 21, "reject")  # dropped: VOID
    store.decide(1, 10, "accept")
    store.comment(2, 11, "fine")

    out = tmp_path / "corrected"
    result = store.export(out, model_key="m1")
    assert _tree_digest(dataset) == before  # nothing in the source changed
    assert (result.images_changed, result.segments_dropped, result.segments_relabelled) == (2, 1, 2)

    coco = json.loads((out / "annotations" / "panoptic_val.json").read_text())
    ann = {a["image_id"]: a for a in coco["annotations"]}
    ids_a = read_segment_ids(out / "annotations" / "panoptic_val" / "a.png")
    src_a, _ = _image_a()
    assert {s["id"]: s["category_id"] for s in ann[1]["segments_info"]} == {10: ROAD, 20: PERSON}
    assert np.array_equal(ids_a, np.where(src_a == 30, 10, src_a))  # person pixels joined the road
    assert {s["id"]: s["area"] for s in ann[1]["segments_info"]} == {10: 67, 20: 12}
    ids_b = read_segment_ids(out / "annotations" / "panoptic_val" / "b.png")
    assert (ids_b == 0).sum() == 16 and [s["id"] for s in ann[2]["segments_info"]] == [11]
    assert (out / "val" / "a.png").is_file() and (
        out / "annotations" / "panoptic_train.json"
    ).is_file()

    # panopticapi reads the export; source GT vs corrected set as "prediction", counted by hand:
    # image a: road TP (IoU 63/67: the 4 person pixels joined it), car FN and person FN (other
    # categories now), the relabelled person FP; image b: road TP (IoU 1), car FN (VOID now).
    res = pq_compute(
        str(dataset / "annotations" / "panoptic_val.json"),
        str(out / "annotations" / "panoptic_val.json"),
        str(dataset / "annotations" / "panoptic_val"),
        str(out / "annotations" / "panoptic_val"),
    )
    per = res["per_class"]
    assert per[ROAD]["sq"] == pytest.approx((63 / 67 + 1.0) / 2)
    assert per[ROAD]["rq"] == 1.0
    assert per[CAR]["pq"] == 0.0 and per[PERSON]["pq"] == 0.0

    report = (out / "review_report.csv").read_text().splitlines()
    assert report[0].startswith("image_id,file_name,segment_id") and len(report) == 1 + 5
    assert "fine" in (out / "review_report.csv").read_text()


def test_export_refuses_to_touch_the_source_or_other_folders(dataset, tmp_path):
    store = ReviewStore(dataset, "val", tmp_path / "review")
    for bad in (dataset, dataset / "corrected", dataset.parent):
        with pytest.raises(ReviewError, match="outside the source"):
            store.export(bad)
    other = tmp_path / "someone_elses"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(ReviewError, match="not empty"):
        store.export(other, overwrite=True)
    assert (other / "keep.txt").read_text() == "x"
    first = store.export(tmp_path / "out")
    store.decide(2, 21, "ignore")
    with pytest.raises(ReviewError, match="not empty"):
        store.export(first.root)
    again = store.export(first.root, overwrite=True)  # an earlier export may be replaced
    assert (again.root / "annotations" / "panoptic_val.json").is_file()


def test_model_outputs_map_to_the_data_sets_categories():
    from types import SimpleNamespace

    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.review import category_mapping, prediction_from_model

    spec = get_dataset_spec("synthetic")  # road 0 ... person 5, car 6, bus 7
    mapping = category_mapping(spec, CATEGORIES)  # this data set: road 7, person 24, car 26, no bus
    assert mapping.tolist() == [7, -1, -1, -1, -1, 24, 26, -1]
    void = spec.ignore_label * spec.label_divisor
    panoptic = np.array(
        [[0, 0, 6001], [6001, 5001, void]]
    )  # road (value 0!), a car, a person, void
    semantic = np.array([[0, 0, 6], [6, 5, 7]])
    probs = np.zeros((2, 3, spec.num_classes))
    probs[..., 0] = 0.3
    probs[0, 0, 0] = 0.9
    pred = prediction_from_model(
        SimpleNamespace(semantic=semantic, semantic_probs=probs, panoptic=panoptic), spec, mapping
    )
    assert pred.semantic.tolist() == [[7, 7, 26], [26, 24, -1]]  # bus is not a class here
    assert pred.confidence[0, 0] == 0.9 and pred.confidence[1, 1] == 0.3
    assert pred.panoptic.tolist() == [[1, 1, 6002], [6002, 5002, 0]]  # 0 is void only
    assert pred.segments == {1: 7, 5002: 24, 6002: 26}


def test_a_decision_is_not_replaced_without_asking(dataset, tmp_path):
    """Two tabs (or two sessions): the second asks (replace=False) and is told what is there."""
    from panoptic_deeplab.review import DecisionConflict

    first = ReviewStore(dataset, "val", tmp_path / "review")
    second = ReviewStore(dataset, "val", tmp_path / "review")
    first.decide(1, 20, "reject")
    with pytest.raises(DecisionConflict, match="already decided: 'reject'") as caught:
        second.decide(1, 20, "accept", replace=False)
    assert caught.value.existing.action == "reject" and first.decision(1, 20).action == "reject"
    second.decide(1, 20, "reject", replace=False)  # the same decision again: nothing to ask
    second.decide(1, 20, "accept", replace=True)  # asked and confirmed
    assert first.decision(1, 20).action == "accept"
