"""Readers on fixtures made here: COCO-panoptic (any split name) and Cityscapes layouts."""

import json

import cv2
import numpy as np
import pytest

from panoptic_deeplab.datasets.coco_panoptic import dataset_spec_from_coco_json, id_to_rgb
from panoptic_deeplab.datasets.readers import open_dataset
from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.errors import DatasetError

CATEGORIES = [
    {"id": 7, "name": "cat", "isthing": 1},
    {"id": 3, "name": "grass", "isthing": 0, "color": [0, 200, 0]},
    {"id": 9, "name": "dog", "isthing": 1},
]


def write_coco(root, split="mysplit", categories=CATEGORIES):
    """One 6x8 image: grass (id 1), two cats (ids 5, 6), a crowd of dogs (id 9), void (0)."""
    ids = np.zeros((6, 8), np.int64)
    ids[:, :4] = 1
    ids[0:2, 4:6] = 5
    ids[3:5, 4:6] = 6
    ids[5, 6:8] = 9
    (root / "annotations" / f"panoptic_{split}").mkdir(parents=True)
    (root / split).mkdir()
    cv2.imwrite(
        str(root / "annotations" / f"panoptic_{split}" / "a.png"), id_to_rgb(ids)[..., ::-1]
    )
    cv2.imwrite(str(root / split / "a.png"), np.full((6, 8, 3), 90, np.uint8))
    segments = [
        {"id": 1, "category_id": 3, "iscrowd": 0, "area": 24},
        {"id": 5, "category_id": 7, "iscrowd": 0, "area": 4},
        {"id": 6, "category_id": 7, "iscrowd": 0, "area": 4},
        {"id": 9, "category_id": 9, "iscrowd": 1, "area": 2},
    ]
    data = {
        "images": [{"id": 42, "file_name": "a.png", "height": 6, "width": 8}],
        "annotations": [{"image_id": 42, "file_name": "a.png", "segments_info": segments}],
        "categories": categories,
    }
    (root / "annotations" / f"panoptic_{split}.json").write_text(json.dumps(data))
    return ids


def test_spec_from_user_categories(tmp_path):
    write_coco(tmp_path)
    spec = dataset_spec_from_coco_json(tmp_path / "annotations" / "panoptic_mysplit.json")
    # Train ids follow category ids: grass (3) -> 0, cat (7) -> 1, dog (9) -> 2.
    assert spec.class_names == ("grass", "cat", "dog")
    assert spec.category_ids == (3, 7, 9)
    assert spec.thing_class_ids == (1, 2)
    assert spec.colors[0] == (0, 200, 0)
    assert (spec.ignore_label, spec.label_divisor) == (255, 1000)


def test_coco_reader_panoptic_values(tmp_path):
    ids = write_coco(tmp_path)
    reader = open_dataset(tmp_path, "mysplit")
    assert len(reader) == 1
    example = reader[0]
    assert example.image_id == 42 and example.image_path.endswith("mysplit/a.png")
    pan = reader.load_panoptic(0)
    assert pan.dtype == np.int32 and pan.shape == (6, 8)
    expected = np.full((6, 8), 255 * 1000)
    expected[ids == 1] = 0 * 1000  # grass, stuff: instance 0
    expected[ids == 5] = 1 * 1000 + 1  # first cat
    expected[ids == 6] = 1 * 1000 + 2  # second cat
    expected[ids == 9] = 2 * 1000  # dog crowd: instance 0
    np.testing.assert_array_equal(pan, expected)
    record = reader.read(0)
    by_id = {s["id"]: s for s in record.segments}
    assert by_id[2000]["iscrowd"] == 1 and by_id[2000]["category_id"] == 9
    assert by_id[1001]["area"] == 4 and by_id[0]["category_id"] == 3
    assert reader.load_image(0).shape == (6, 8, 3)


def test_coco_categories_use_coco_spec(tmp_path):
    from panoptic_deeplab.datasets.coco_categories import COCO_STUFF, COCO_THINGS

    cats = [{"id": i, "name": n, "isthing": 1} for i, n, _ in COCO_THINGS]
    cats += [{"id": i, "name": n, "isthing": 0} for i, n, _ in COCO_STUFF]
    write_coco(
        tmp_path, "val2017", cats[:0] + cats
    )  # fixture's segments use ids 3 (car), 7 (train), 9 (boat)
    reader = open_dataset(tmp_path, "val2017")
    assert reader.spec.name == "coco"
    pan = reader.load_panoptic(0)
    # car -> train id 3, train -> 7, boat (crowd) -> 9 * 256; void -> ignore 0.
    assert set(np.unique(pan).tolist()) == {0, 3 * 256 + 1, 7 * 256 + 1, 7 * 256 + 2, 9 * 256}


def test_coco_spec_table():
    spec = get_dataset_spec("coco")
    assert spec.num_classes == 134 and spec.ignore_label == 0 and spec.label_divisor == 256
    assert spec.thing_class_ids == tuple(range(1, 81))
    assert spec.class_names[1] == "person" and spec.class_names[81] == "banner"
    assert spec.class_names[133] == "rug-merged" and spec.category_id(133) == 200
    assert len(set(spec.category_ids)) == 134


def test_cityscapes_reader(cityscapes_root):
    reader = open_dataset(cityscapes_root, "val")
    assert reader.spec.name == "cityscapes" and len(reader) == 1
    assert reader[0].image_id == "aachen_000000_000019"
    pan = reader.load_panoptic(0)
    expected = np.array(
        [
            [255000] * 6,
            [13001, 13001, 13002, 13002, 0, 0],
            [11000, 11000, 0, 0, 255000, 255000],
            [11001, 11001, 11001, 0, 0, 0],
        ]
    )
    np.testing.assert_array_equal(pan, expected)


def test_open_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="no data set layout"):
        open_dataset(tmp_path, "train")
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "nope", "train")


@pytest.mark.parametrize("use_train_id", [False, True])
def test_cityscapes_panoptic_json_matches_instance_ids(cityscapes_root, use_train_id):
    """The JSON made by cityscapesscripts' own converter reads as the same labels."""
    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic

    expected = open_dataset(cityscapes_root, "val").load_panoptic(0)
    convert2panoptic(
        str(cityscapes_root / "gtFine"), str(cityscapes_root / "gtFine"), use_train_id, ["val"]
    )
    next((cityscapes_root / "gtFine" / "val").glob("*/*_instanceIds.png")).unlink()
    reader = open_dataset(cityscapes_root, "val")
    assert reader.spec.class_names == get_dataset_spec("cityscapes").class_names
    assert reader[0].image_path.endswith(
        "leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png"
    )
    np.testing.assert_array_equal(reader.load_panoptic(0), expected)
    assert reader.load_image(0).shape == (4, 6, 3)
