"""check-dataset: each kind of problem is reported with its file and a fix; it never crashes."""
import json
import shutil

import cv2
import numpy as np
import pytest

from panoptic_deeplab.cli import main
from panoptic_deeplab.datasets.checks import check_dataset
from panoptic_deeplab.datasets.coco_panoptic import id_to_rgb, rgb_to_id


@pytest.fixture
def root(synthetic_root, tmp_path):
    return shutil.copytree(synthetic_root, tmp_path / "data")


def json_path(root):
    return root / "annotations" / "panoptic_val.json"


def edit_json(root, fn):
    data = json.loads(json_path(root).read_text())
    fn(data)
    json_path(root).write_text(json.dumps(data))


def png_path(root, k=0):
    return root / "annotations" / "panoptic_val" / f"val_{k:06d}.png"


def problems_text(root):
    problems = check_dataset(root, "val")
    assert problems, "expected problems"
    assert all(p.file and p.fix for p in problems)
    return "\n".join(str(p) for p in problems)


def test_missing_image(root):
    (root / "val" / "val_000001.jpg").unlink()
    assert "val_000001.jpg: image id 1: image file missing" in problems_text(root)


def test_missing_png(root):
    png_path(root, 2).unlink()
    assert "val_000002.png: image id 2: panoptic PNG missing" in problems_text(root)


def test_png_id_not_in_segments_info(root):
    ids = rgb_to_id(cv2.imread(str(png_path(root)))[..., ::-1])
    ids[0:2, 0:2] = 777
    cv2.imwrite(str(png_path(root)), id_to_rgb(ids)[..., ::-1])
    text = problems_text(root)
    assert "PNG id 777 (4 px) is not in segments_info" in text
    assert "has area" in text  # the painted-over segment lost area


def test_segment_absent_from_png(root):
    edit_json(root, lambda d: d["annotations"][0]["segments_info"].append(
        {"id": 999, "category_id": 6, "iscrowd": 0, "area": 5}))
    assert "segment 999 of segments_info does not occur in val_000000.png" in problems_text(root)


def test_wrong_area(root):
    def change(d):
        seg = d["annotations"][1]["segments_info"][0]
        seg["area"] += 3
    edit_json(root, change)
    text = problems_text(root)
    assert "image id 1: segment" in text and "set its 'area' to" in text


def test_unknown_category(root):
    edit_json(root, lambda d: d["annotations"][0]["segments_info"][0].update(category_id=57))
    assert "unknown category_id 57" in problems_text(root)


def test_duplicate_ids(root):
    def dup(d):
        segs = d["annotations"][0]["segments_info"]
        segs.append(dict(segs[0]))
        d["images"].append(dict(d["images"][0]))
        d["categories"].append(dict(d["categories"][0]))
    edit_json(root, dup)
    text = problems_text(root)
    assert "appears 2 times in segments_info" in text
    assert "duplicate image id 0" in text
    assert "duplicate category id 0" in text


def test_size_mismatch(root):
    cv2.imwrite(str(root / "val" / "val_000000.jpg"), np.zeros((50, 60, 3), np.uint8))
    text = problems_text(root)
    assert "PNG is 97x161 but the image is 50x60" in text
    assert "'images' says 97x161 but the file is 50x60" in text


def test_invalid_json(root, capsys):
    json_path(root).write_text("{not json")
    assert "invalid JSON" in problems_text(root)
    assert main(["check-dataset", str(root), "--split", "val"]) == 1
    assert "fix:" in capsys.readouterr().out


def test_missing_annotation_file(tmp_path):
    assert "annotation file not found" in str(check_dataset(tmp_path, "val")[0])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(annotations={"a": 1}),
        lambda d: d["annotations"].append("junk"),
        lambda d: d["annotations"][0].update(segments_info=[None, {"id": "x"}]),
        lambda d: d["annotations"][0].update(segments_info=None),
        lambda d: d["categories"].append({"name": "no id"}),
        lambda d: d["annotations"][0].update(image_id=12345),
    ],
)
def test_malformed_entries_are_reported_not_raised(root, mutate):
    edit_json(root, mutate)
    problems_text(root)


def test_corrupt_png_and_image(root):
    png_path(root).write_bytes(b"not a png")
    (root / "val" / "val_000001.jpg").write_bytes(b"not a jpeg")
    text = problems_text(root)
    assert "panoptic PNG cannot be decoded" in text and "image cannot be decoded" in text


def test_cityscapes_checks(cityscapes_root):
    tmp_path = cityscapes_root
    assert check_dataset(tmp_path, "val") == []
    gt = next((tmp_path / "gtFine" / "val").glob("*/*instanceIds.png"))
    cv2.imwrite(str(gt), np.full((4, 6), 250, np.uint16))
    assert "unknown Cityscapes label ids [250]" in "\n".join(map(str, check_dataset(tmp_path, "val")))
    gt.unlink()
    assert "instanceIds PNG missing" in str(check_dataset(tmp_path, "val")[0])


def test_cityscapes_panoptic_json_checks(cityscapes_root):
    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic

    gt = cityscapes_root / "gtFine"
    convert2panoptic(str(gt), str(gt), False, ["val"])
    next((gt / "val").glob("*/*_instanceIds.png")).unlink()
    assert check_dataset(cityscapes_root, "val") == []
    next((cityscapes_root / "leftImg8bit" / "val").glob("*/*.png")).unlink()
    assert "image file missing" in str(check_dataset(cityscapes_root, "val")[0])
