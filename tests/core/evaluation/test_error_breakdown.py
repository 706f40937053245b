"""Panoptic error breakdown (docs/error-analysis.md): each error type on a hand-made image, and PQ
plus the points of every type plus the IoU shortfall of the matches adding up to 100."""

from __future__ import annotations

import numpy as np
import pytest

from panoptic_deeplab.evaluation import PQStat, match_image
from panoptic_deeplab.evaluation.coco_io import label_map_segments
from panoptic_deeplab.evaluation.error_breakdown import (
    ERROR_TYPES,
    REMAINDER,
    ErrorStat,
    classify_errors,
)

DIV, VOID = 1000, 255
ROAD, SKY, CAR, PERSON = 0, 1, 2, 3
THINGS = (CAR, PERSON)
CATEGORIES = [
    {"id": 0, "name": "road", "isthing": 0},
    {"id": 1, "name": "sky", "isthing": 0},
    {"id": 2, "name": "car", "isthing": 1},
    {"id": 3, "name": "person", "isthing": 1},
]
INDEX = {c["id"]: i for i, c in enumerate(CATEGORIES)}


def analyse(gt_map, pred_map, area_limited=None):
    gmap, gt = label_map_segments(gt_map, DIV, VOID, THINGS, True)
    pmap, pred = label_map_segments(pred_map, DIV, VOID, THINGS, False)
    m = match_image(gmap, gt, pmap, pred, INDEX)
    limited = None if area_limited is None else np.isin(gt.ids - 1, area_limited)
    gt_errors, pred_errors = classify_errors(m, gt, pred, limited)
    return m, gt, pred, gt_errors, pred_errors


def errors_by_id(gt, pred, gt_errors, pred_errors):
    return (
        {int(i) - 1: e for i, e in zip(gt.ids, gt_errors)},
        {int(i) - 1: e for i, e in zip(pred.ids, pred_errors)},
    )


def road(h=20, w=60):
    return np.full((h, w), ROAD * DIV, np.int64)


def test_merge_one_prediction_over_two_instances():
    gt, pred = road(), road()
    gt[2:8, 2:7] = CAR * DIV + 1  # 30 px
    gt[2:8, 7:11] = CAR * DIV + 2  # 24 px
    pred[2:8, 2:11] = CAR * DIV + 1  # over both: IoU 30/54 with the first, which it matches
    _, g, p, ge, pe = analyse(gt, pred)
    gts, preds = errors_by_id(g, p, ge, pe)
    assert gts == {ROAD * DIV: None, CAR * DIV + 1: None, CAR * DIV + 2: "merge"}
    assert preds == {ROAD * DIV: None, CAR * DIV + 1: None}


def test_merge_of_two_equal_instances_is_a_merge_on_both_sides():
    gt, pred = road(), road()
    gt[2:8, 2:7] = CAR * DIV + 1
    gt[2:8, 7:12] = CAR * DIV + 2
    pred[2:8, 2:12] = CAR * DIV + 5  # IoU 0.5 with each: no match
    _, g, p, ge, pe = analyse(gt, pred)
    gts, preds = errors_by_id(g, p, ge, pe)
    assert gts[CAR * DIV + 1] == gts[CAR * DIV + 2] == "merge" and preds[CAR * DIV + 5] == "merge"


def test_split_one_instance_over_several_predictions():
    gt, pred = road(), road()
    gt[2:12, 2:6] = CAR * DIV + 1
    pred[2:7, 2:6] = CAR * DIV + 1
    pred[7:12, 2:6] = CAR * DIV + 2  # two halves: IoU 0.5 each, no match
    _, g, p, ge, pe = analyse(gt, pred)
    gts, preds = errors_by_id(g, p, ge, pe)
    assert gts[CAR * DIV + 1] == "split" and preds[CAR * DIV + 1] == preds[CAR * DIV + 2] == "split"
    # A small fragment beside a good match: the match stays a TP, the fragment is a split FP.
    pred[2:11, 2:6] = CAR * DIV + 1
    pred[11:12, 2:6] = CAR * DIV + 2
    _, g, p, ge, pe = analyse(gt, pred)
    gts, preds = errors_by_id(g, p, ge, pe)
    assert gts[CAR * DIV + 1] is None and preds == {
        ROAD * DIV: None,
        CAR * DIV + 1: None,
        CAR * DIV + 2: "split",
    }


def test_wrong_class_low_iou_missed_spurious_and_area_limit():
    gt, pred = road(), road()
    gt[0:3, :] = SKY * DIV  # sky, voided by the area limit in the prediction
    pred[0:3, :] = VOID * DIV
    gt[5:15, 2:8] = PERSON * DIV + 1
    pred[5:15, 2:8] = CAR * DIV + 1  # right place, wrong class
    gt[5:15, 20:30] = CAR * DIV + 2
    pred[9:19, 24:34] = CAR * DIV + 2  # IoU 36 / 164 = 0.22
    gt[5:10, 40:45] = CAR * DIV + 3  # not predicted at all
    pred[12:17, 50:56] = PERSON * DIV + 9  # on road
    _, g, p, ge, pe = analyse(gt, pred, area_limited=[SKY * DIV])
    gts, preds = errors_by_id(g, p, ge, pe)
    assert gts == {
        ROAD * DIV: None,
        SKY * DIV: "stuff_area_limit",
        PERSON * DIV + 1: "wrong_class",
        CAR * DIV + 2: "low_iou",
        CAR * DIV + 3: "missed",
    }
    assert preds == {
        ROAD * DIV: None,
        CAR * DIV + 1: "wrong_class",
        CAR * DIV + 2: "low_iou",
        PERSON * DIV + 9: "spurious",
    }
    # Without the area-limit flag the voided sky is a plain miss.
    _, g, p, ge, pe = analyse(gt, pred)
    assert errors_by_id(g, p, ge, pe)[0][SKY * DIV] == "missed"


def test_crowd_and_void_are_not_errors():
    gt, pred = road(), road()
    gt[2:10, 2:10] = CAR * DIV  # crowd
    pred[3:9, 3:9] = CAR * DIV + 4  # on the crowd: ignored
    gt[:, 50:] = VOID * DIV
    pred[2:8, 52:58] = PERSON * DIV + 1  # on void: ignored
    _, g, p, ge, pe = analyse(gt, pred)
    assert all(e is None for e in ge + pe)


def breakdown_of(pairs, limited=()):
    pq, errors = PQStat(CATEGORIES), ErrorStat(CATEGORIES)
    for gt_map, pred_map in pairs:
        m, g, p, ge, pe = analyse(gt_map, pred_map, list(limited))
        pq.add(m)
        errors.add(g, p, ge, pe)
    summary = pq.summary()
    return summary, errors.breakdown(summary)


def messy_image():
    gt, pred = road(), road()
    gt[0:3, :] = SKY * DIV
    pred[0:3, :] = VOID * DIV
    gt[5:15, 2:8] = PERSON * DIV + 1
    pred[5:15, 2:8] = CAR * DIV + 1
    gt[5:15, 20:30] = CAR * DIV + 2
    pred[6:16, 21:31] = CAR * DIV + 2  # matched, IoU 81/119
    gt[2:8, 40:45], gt[2:8, 45:49] = CAR * DIV + 3, CAR * DIV + 4
    pred[2:8, 40:49] = CAR * DIV + 3  # merge
    gt[10:18, 40:44] = CAR * DIV + 5
    pred[10:14, 40:44], pred[14:18, 40:44] = CAR * DIV + 6, CAR * DIV + 7  # split
    pred[16:19, 52:58] = PERSON * DIV + 9  # spurious
    return gt, pred


def test_points_and_remainder_add_up_to_100_per_class_and_overall():
    summary, out = breakdown_of([messy_image()], limited=[SKY * DIV])
    for cid, row in out["per_class"].items():
        assert row["pq"] == pytest.approx(100 * summary["per_class"][cid]["pq"])
        assert row["pq"] + sum(row["points"].values()) == pytest.approx(100.0)
    for key in ("All", "Things", "Stuff"):
        assert out[key]["pq"] == pytest.approx(100 * summary[key]["pq"])
        assert out[key]["pq"] + sum(out[key]["points"].values()) == pytest.approx(100.0)
    car = out["per_class"][CAR]
    # car: TP car 2 (IoU 81/119) and car 3 (the merging prediction, IoU 30/54); FP the wrong-class
    # car and the two halves of car 5; FN car 4 (merged into car 3's match) and car 5 (split).
    assert car["counts"] == {
        "missed": 0,
        "spurious": 0,
        "wrong_class": 1,
        "merge": 1,
        "split": 3,
        "low_iou": 0,
        "stuff_area_limit": 0,
    }
    tp, s = 2, 81 / 119 + 30 / 54
    d = tp + 0.5 * 3 + 0.5 * 2
    assert car["pq"] == pytest.approx(100 * s / d)
    assert car["points"]["split"] == pytest.approx(100 * 0.5 * 3 / d)
    assert car["points"][REMAINDER] == pytest.approx(100 * (tp - s) / d)
    # "PQ if fixed": the errors of that type left out of the counts.
    assert car["pq_if_fixed"]["split"] == pytest.approx(100 * s / (d - 1.5))
    assert car["pq_if_fixed"][REMAINDER] == pytest.approx(100 * tp / d)
    assert out["per_class"][SKY]["points"]["stuff_area_limit"] == pytest.approx(100.0)
    assert (
        out["per_class"][PERSON]["counts"]["spurious"] == 1
        and out["per_class"][PERSON]["counts"]["wrong_class"] == 1
    )


def test_breakdown_refuses_counts_that_do_not_match_the_pq_counts():
    summary, _ = breakdown_of([messy_image()])
    stat = ErrorStat(CATEGORIES)  # nothing added: the FP/FN of the summary are untyped
    with pytest.raises(ValueError, match="typed errors"):
        stat.breakdown(summary)
    empty = stat.breakdown(PQStat(CATEGORIES).summary())
    assert empty["per_class"] == {} and empty["All"] is None and len(ERROR_TYPES) == 7
