"""Every review edit on hand-made masks (see conftest.py): the exact pixels after the edit, after
its undo, and in the exported PNG; pixels taken from other segments; fresh ids; area and bbox."""

from __future__ import annotations

import json

import numpy as np
import pytest

from panoptic_deeplab.datasets.coco_panoptic import read_segment_ids
from panoptic_deeplab.review import ReviewError, brush_mask, polygon_mask
from tests.core.review.review_fixtures import CAR, PERSON, ROAD, SKY, H, W, image_a, image_b


def _export(store, tmp_path, name="out"):
    out = tmp_path / name
    store.export(out)
    coco = json.loads((out / "annotations" / "panoptic_val.json").read_text())
    anns = {a["image_id"]: a for a in coco["annotations"]}
    pngs = {
        k: read_segment_ids(out / "annotations" / "panoptic_val" / a["file_name"]).astype(np.int64)
        for k, a in anns.items()
    }
    return anns, pngs


def _geometry(ids: np.ndarray, sid: int) -> tuple[int, list[int]]:
    ys, xs = np.nonzero(ids == sid)
    return int(len(ys)), [int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)]


def _check_undo(store, image_id, original):
    undone = store.undo()
    assert undone is not None
    assert np.array_equal(store.gt_ids(image_id), original)
    return undone


def test_take_the_models_segment(scored, tmp_path):
    original, _ = image_a()
    result = scored.take_model(1, 20, source="m", version=0)
    expect = original.copy()
    expect[1:5, 2] = 10  # the car's column outside the model's car: the road the model sees there
    expect[1:5, 7] = 20  # the model's car column taken from the road
    assert np.array_equal(scored.gt_ids(1), expect)
    assert (result.pixels_added, result.pixels_removed) == (4, 4)
    assert result.taken_from == {10: 4} and result.given_to == {10: 4}
    assert result.versions == {10: 1, 20: 1}
    car = scored.segment(1, 20)
    assert (car.area, car.bbox, car.action, car.changed_by) == (
        20,
        [3, 1, 5, 4],
        "take_model",
        "ann",
    )

    anns, pngs = _export(scored, tmp_path)
    assert np.array_equal(pngs[1], expect)
    info = {s["id"]: s for s in anns[1]["segments_info"]}
    for sid in (10, 20, 30):
        assert (info[sid]["area"], info[sid]["bbox"]) == _geometry(expect, sid)
    _check_undo(scored, 1, original)
    assert scored.segment(1, 20).bbox == [2, 1, 5, 4] and scored.segment(1, 20).version == 2


def test_take_the_models_class_too(scored):
    # The model sees a person at segment 30; take the car's mask *and* class from prediction 4.
    scored.take_model(1, 30, source="m", pred_segment_id=4, take_class=True)
    seg = scored.segment(1, 30)
    assert seg.category_id == CAR and seg.area == 20 and seg.bbox == [2, 8, 5, 4]
    d = scored.decision(1, 30)
    assert (d.action, d.category_id) == ("take_model", CAR)


def test_add_a_missed_object_with_a_fresh_id(scored, tmp_path):
    original, _ = image_a()
    ranked = scored.ranked("m")
    missing = ranked[ranked.kind == "missing"]
    assert list(missing.pred_segment_id) == [4] and missing.iloc[0].score == pytest.approx(0.9)
    mask, category = scored.missing_proposal(1, 4, source="m")
    assert category == CAR and mask.sum() == 20

    result = scored.add_missed(1, 4, source="m", version=0)
    new_id = result.segment_id
    assert result.new_segments == [new_id] and new_id not in (0, 10, 20, 30)
    assert result.taken_from == {10: 20} and result.pixels_added == 20
    expect = original.copy()
    expect[8:12, 2:7] = new_id
    assert np.array_equal(scored.gt_ids(1), expect)
    seg = scored.segment(1, new_id)
    assert (seg.category_id, seg.origin, seg.area, seg.bbox) == (CAR, "model", 20, [2, 8, 5, 4])
    row = scored.ranked("m").query("kind == 'missing'").iloc[0]
    assert (row.status, row.added_segment_id, row.reviewer) == ("added", new_id, "ann")
    with pytest.raises(ReviewError, match="already added as segment"):
        scored.add_missed(1, 4, source="m")

    anns, pngs = _export(scored, tmp_path)
    assert np.array_equal(pngs[1], expect)
    added = next(s for s in anns[1]["segments_info"] if s["id"] == new_id)
    assert added == {
        "id": new_id,
        "category_id": CAR,
        "iscrowd": 0,
        "area": 20,
        "bbox": [2, 8, 5, 4],
    }
    ids = [s["id"] for s in anns[1]["segments_info"]]
    assert len(ids) == len(set(ids))

    _check_undo(scored, 1, original)
    assert scored.ranked("m").query("kind == 'missing'").iloc[0].status == ""
    again = scored.add_missed(1, 4, source="m")  # ids are never reused, even after an undo
    assert again.segment_id == new_id + 1


def test_add_a_missed_object_edited_before_saving(scored):
    mask, _ = scored.missing_proposal(1, 4, source="m")
    mask[8, :] = False  # the reviewer trims the top row and calls it a person
    result = scored.add_missed(1, 4, source="m", mask=mask, category_id=PERSON)
    seg = scored.segment(1, result.segment_id)
    assert (seg.category_id, seg.area) == (PERSON, 15)


def test_add_a_stuff_region_joins_the_images_segment_of_that_class(scored):
    mask = np.zeros((H, W), bool)
    mask[0, :] = True  # the top row is sky, says the reviewer
    result = scored.add_segment(1, mask, SKY)
    sky = result.segment_id
    again = scored.add_segment(1, np.roll(mask, 1, axis=0), SKY)  # the next row: the same segment
    assert again.segment_id == sky and again.new_segments == []
    assert scored.segment(1, sky).area == 2 * W


def test_paint_takes_pixels_from_other_segments_and_says_so(scored, tmp_path):
    original, _ = image_a()
    stroke = brush_mask((H, W), [[9, 7], [12, 7]], radius=0)  # row 7, cols 9-12
    result = scored.paint(1, 20, stroke, "add", tool="brush", version=0)
    assert result.taken_from == {10: 2, 30: 2} and result.pixels_added == 4
    expect = original.copy()
    expect[7, 9:13] = 20
    assert np.array_equal(scored.gt_ids(1), expect)
    person = scored.segment(1, 30)
    assert (person.area, person.bbox, person.version) == (6, [10, 6, 2, 4], 1)
    car = scored.segment(1, 20)
    assert (car.area, car.bbox) == (24, [2, 1, 11, 7])

    corners = [[2, 1], [6, 1], [6, 2], [2, 2]]  # the polygon's outline counts: rows 1-2, cols 2-6
    erased = scored.paint(1, 20, polygon_mask((H, W), corners), "remove", tool="polygon")
    assert erased.pixels_removed == 10 and erased.given_to == {0: 10}
    expect[1:3, 2:7] = 0
    assert np.array_equal(scored.gt_ids(1), expect)

    anns, pngs = _export(scored, tmp_path)
    assert np.array_equal(pngs[1], expect)
    info = {s["id"]: s for s in anns[1]["segments_info"]}
    assert (info[20]["area"], info[20]["bbox"]) == _geometry(expect, 20)
    assert (info[30]["area"], info[30]["bbox"]) == _geometry(expect, 30)

    scored.undo()
    after_first = original.copy()
    after_first[7, 9:13] = 20
    assert np.array_equal(scored.gt_ids(1), after_first)
    _check_undo(scored, 1, original)
    assert scored.segment(1, 30).area == 8


def test_a_segment_painted_away_is_removed_and_comes_back_with_undo(scored, tmp_path):
    original, _ = image_a()
    result = scored.paint(1, 30, original == 30, "remove", tool="eraser")
    assert result.removed_segments == [30] and scored.segment(1, 30).removed
    anns, pngs = _export(scored, tmp_path)
    assert 30 not in {s["id"] for s in anns[1]["segments_info"]}
    assert not (pngs[1] == 30).any() and (pngs[1][6:10, 10:12] == 0).all()
    with pytest.raises(ReviewError, match="removed by an edit"):
        scored.decide(1, 30, "accept")
    _check_undo(scored, 1, original)
    assert not scored.segment(1, 30).removed and scored.segment(1, 30).area == 8


def test_smart_region_finds_the_object_and_is_recorded_as_such(scored):
    # Image "a" is flat grey with the car painted red: a box around it and a click on it.
    car = image_a()[0] == 20
    from_box = scored.smart_region(1, box=[1, 0, 7, 6])
    from_click = scored.smart_region(1, click=[4, 2], radius=5)
    for region in (from_box, from_click):
        assert (region & car).sum() / (region | car).sum() >= 0.9
    result = scored.paint(1, 30, from_box, "add", tool="region")
    assert result.kind == "region" and result.taken_from.get(20, 0) >= 18


def test_merge_two_segments(scored, tmp_path):
    original, _ = image_a()
    result = scored.merge(1, 20, 30, versions={20: 0, 30: 0})
    assert result.taken_from == {30: 8} and result.removed_segments == [30]
    expect = np.where(original == 30, 20, original)
    assert np.array_equal(scored.gt_ids(1), expect)
    car = scored.segment(1, 20)
    assert (car.area, car.bbox, car.category_id) == (28, [2, 1, 10, 9], CAR)
    anns, pngs = _export(scored, tmp_path)
    assert np.array_equal(pngs[1], expect)
    assert {s["id"] for s in anns[1]["segments_info"]} == {10, 20}
    _check_undo(scored, 1, original)
    assert not scored.segment(1, 30).removed


def test_split_along_a_drawn_line(scored, tmp_path):
    original, _ = image_a()
    result = scored.split_segment(1, 20, line=[[4, -1], [4, 12]])  # x = 4: columns 2-3 | 4-6
    (new_id,) = result.new_segments
    assert new_id not in (10, 20, 30) and result.given_to == {new_id: 8}
    expect = original.copy()
    expect[1:5, 2:4] = new_id  # the smaller part gets the new id
    assert np.array_equal(scored.gt_ids(1), expect)
    part = scored.segment(1, new_id)
    assert (part.category_id, part.origin, part.area, part.bbox) == (CAR, "split", 8, [2, 1, 2, 4])
    anns, pngs = _export(scored, tmp_path)
    assert np.array_equal(pngs[1], expect)
    info = {s["id"]: s for s in anns[1]["segments_info"]}
    assert (info[20]["area"], info[20]["bbox"]) == (12, [4, 1, 3, 4])
    _check_undo(scored, 1, original)


def test_split_along_the_models_instances(scored):
    original, _ = image_b()
    result = scored.split_segment(2, 21, source="m")
    (new_id,) = result.new_segments
    expect = original.copy()
    expect[3:8, 3:6] = new_id  # model car 5 (15 px) splits off; car 6 (20 px) keeps the id
    assert np.array_equal(scored.gt_ids(2), expect)
    with pytest.raises(ReviewError, match="model sees 1 instance"):
        scored.split_segment(2, new_id, source="m")
    with pytest.raises(ReviewError, match="stuff"):
        scored.split_segment(2, 11, line=[[0, 0], [5, 5]])
    with pytest.raises(ReviewError, match="one side only"):
        scored.split_segment(2, 21, line=[[0, 0], [0, 11]])


def test_split_along_a_polyline(scored):
    # A bent line: down column 4 to row 2, then right along row 2; extended to the borders.
    result = scored.split_segment(1, 20, line=[[4, -1], [4, 2], [12, 2]])
    ids = scored.gt_ids(1)
    assert len(result.new_segments) >= 1
    parts = {int(v) for v in np.unique(ids[image_a()[0] == 20])}
    assert parts == {20, *result.new_segments}
    assert sum(scored.segment(1, s).area for s in parts) == 20


def test_decisions_in_the_export(scored, tmp_path):
    scored.decide(1, 20, "relabel", PERSON)
    scored.decide(1, 30, "relabel", ROAD)  # person -> road: joins the road segment
    scored.decide(2, 21, "crowd")
    anns, pngs = _export(scored, tmp_path)
    original, _ = image_a()
    assert {s["id"]: s["category_id"] for s in anns[1]["segments_info"]} == {10: ROAD, 20: PERSON}
    assert np.array_equal(pngs[1], np.where(original == 30, 10, original))
    assert anns[2]["segments_info"][1]["iscrowd"] == 1
    scored.decide(2, 21, "reject")
    anns, pngs = _export(scored, tmp_path, "again")
    assert [s["id"] for s in anns[2]["segments_info"]] == [11] and (pngs[2] == 0).sum() == 35


def test_masks_of_the_wrong_size_are_refused(scored):
    with pytest.raises(ReviewError, match="at its own size"):
        scored.paint(1, 20, np.ones((H + 1, W), bool))
    with pytest.raises(ReviewError, match="unknown paint mode"):
        scored.paint(1, 20, np.ones((H, W), bool), "smudge")
