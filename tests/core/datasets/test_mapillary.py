"""Mapillary Vistas v1.2 / v2.0 panoptic layouts: reader, check-dataset and the preset, on a tiny
data set in that layout made here (class table from its own config JSON)."""

import json

import cv2
import numpy as np
import pytest

from panoptic_deeplab.cli import main
from panoptic_deeplab.config import load_config
from panoptic_deeplab.datasets.checks import check_dataset
from panoptic_deeplab.datasets.coco_panoptic import id_to_rgb
from panoptic_deeplab.datasets.readers import open_dataset

# config labels, in order: category id = index + 1
LABELS = [
    {
        "name": "construction--flat--road",
        "readable": "Road",
        "color": [128, 64, 128],
        "instances": False,
        "evaluate": True,
    },
    {
        "name": "human--person",
        "readable": "Person",
        "color": [220, 20, 60],
        "instances": True,
        "evaluate": True,
    },
    {
        "name": "object--vehicle--car",
        "readable": "Car",
        "color": [0, 0, 142],
        "instances": True,
        "evaluate": True,
    },
    {
        "name": "void--unlabeled",
        "readable": "Unlabeled",
        "color": [0, 0, 0],
        "instances": False,
        "evaluate": False,
    },
]
JSON_NAME = {"v2.0": "panoptic_2020.json", "v1.2": "panoptic_2018.json"}


def write_vistas(root, version="v2.0", split="validation"):
    """One 6x8 image: road, two cars, a person crowd, an unlabeled strip and a void (0) corner."""
    (root / f"config_{version}.json").write_text(
        json.dumps({"labels": LABELS, "version": version[1:]})
    )
    images, panoptic = root / split / "images", root / split / version / "panoptic"
    images.mkdir(parents=True)
    panoptic.mkdir(parents=True)
    ids = np.full((6, 8), 1, np.int64)  # road
    ids[1:3, 0:3] = 2  # car
    ids[1:3, 4:7] = 3  # car
    ids[4, 0:4] = 4  # person crowd
    ids[5, :] = 5  # unlabeled (not evaluated)
    ids[0, 0] = 0
    cv2.imwrite(str(panoptic / "key1.png"), id_to_rgb(ids)[..., ::-1])
    cv2.imwrite(str(images / "key1.jpg"), np.full((6, 8, 3), 90, np.uint8))
    segments = [
        {"id": 1, "category_id": 1, "iscrowd": 0, "area": int((ids == 1).sum())},
        {"id": 2, "category_id": 3, "iscrowd": 0, "area": 6},
        {"id": 3, "category_id": 3, "iscrowd": 0, "area": 6},
        {"id": 4, "category_id": 2, "iscrowd": 1, "area": 4},
        {"id": 5, "category_id": 4, "iscrowd": 0, "area": 8},
    ]
    data = {
        "images": [{"id": "key1", "file_name": "key1.jpg", "height": 6, "width": 8}],
        "annotations": [{"image_id": "key1", "file_name": "key1.png", "segments_info": segments}],
        "categories": [
            {
                "id": i + 1,
                "name": lab["readable"],
                "supercategory": lab["name"],
                "isthing": int(lab["instances"]),
                "color": lab["color"],
            }
            for i, lab in enumerate(LABELS)
        ],
    }
    (panoptic / JSON_NAME[version]).write_text(json.dumps(data))
    return ids


@pytest.mark.parametrize("version", ["v2.0", "v1.2"])
def test_reader_takes_the_class_table_from_the_config_json(tmp_path, version):
    write_vistas(tmp_path, version)
    reader = open_dataset(tmp_path, "val")  # alias of "validation"
    spec = reader.spec
    assert spec.name == f"mapillary_vistas_{version}"
    assert spec.class_names == ("Road", "Person", "Car") and spec.thing_class_ids == (1, 2)
    assert spec.category_ids == (1, 2, 3) and spec.colors[2] == (0, 0, 142)
    assert reader[0].image_path.endswith("validation/images/key1.jpg")
    label = reader.load_panoptic(0)
    div, void = spec.label_divisor, spec.ignore_label * spec.label_divisor
    assert label[3, 3] == 0 * div  # road
    assert label[1, 0] == 2 * div + 1 and label[1, 4] == 2 * div + 2  # the two cars
    assert label[4, 0] == 1 * div  # person crowd: instance 0
    assert (label[5] == void).all() and label[0, 0] == void  # not evaluated, and PNG id 0
    assert reader.load_image(0).shape == (6, 8, 3)


def test_check_dataset_passes_and_reports_problems(tmp_path, capsys):
    write_vistas(tmp_path)
    assert check_dataset(tmp_path, "validation") == []
    assert main(["check-dataset", str(tmp_path), "--split", "val"]) == 0
    (tmp_path / "validation" / "images" / "key1.jpg").unlink()
    problems = check_dataset(tmp_path, "validation")
    assert problems and "image file missing" in problems[0].message
    assert "it has: validation" in check_dataset(tmp_path, "training")[0].message
    (tmp_path / "config_v2.0.json").write_text("{}")
    problem = check_dataset(tmp_path, "validation")[0]
    assert (
        problem.file == str(tmp_path / "config_v2.0.json")
        and "not a Mapillary Vistas config" in problem.message
    )


def test_a_root_with_both_versions_reads_v2_unless_asked(tmp_path):
    write_vistas(tmp_path, "v2.0")
    (tmp_path / "validation" / "images").rename(tmp_path / "images_keep")
    write_vistas(tmp_path, "v1.2")
    assert open_dataset(tmp_path, "validation").spec.name == "mapillary_vistas_v2.0"
    assert open_dataset(tmp_path, "validation@v1.2").spec.name == "mapillary_vistas_v1.2"


def test_preset_is_the_papers_vistas_setting():
    config = load_config("mapillary/xception71_os16")
    assert config.model.backbone == "xception71" and config.model.output_stride == 16
    assert config.dataset.crop_size == (1025, 1025)
    assert (config.dataset.min_resize_value, config.dataset.max_resize_value) == (2177, 2177)
    assert (config.dataset.min_scale, config.dataset.max_scale) == (0.5, 2.0)
