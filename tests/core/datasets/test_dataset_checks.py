"""check-dataset: each kind of problem is reported with its file and a fix; it never crashes."""

import json
import shutil

import cv2
import numpy as np
import pytest

from panoptic_deeplab.cli import main
from panoptic_deeplab.datasets.checks import check_dataset
from panoptic_deeplab.datasets.coco_panoptic import id_to_rgb, rgb_to_id
from panoptic_deeplab.datasets.readers import open_dataset
from panoptic_deeplab.errors import DatasetError


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
    edit_json(
        root,
        lambda d: d["annotations"][0]["segments_info"].append(
            {"id": 999, "category_id": 6, "iscrowd": 0, "area": 5}
        ),
    )
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


def test_png_size_mismatch(root):
    png = png_path(root)
    cv2.imwrite(
        str(png), cv2.resize(cv2.imread(str(png)), (60, 50), interpolation=cv2.INTER_NEAREST)
    )
    text = problems_text(root)
    assert f"{png}: image id 0: PNG is 50x60 but the image is 97x161 (as 'images' says)" in text


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
    assert "unknown Cityscapes label ids [250]" in "\n".join(
        map(str, check_dataset(tmp_path, "val"))
    )
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


def test_a_wrong_size_blames_the_file_that_disagrees_with_the_other_two(root):
    """Only the JPEG differs from 'images' and the PNG: the JPEG is named, not 'images'."""
    image = root / "val" / "val_000000.jpg"
    cv2.imwrite(str(image), np.zeros((50, 60, 3), np.uint8))
    problems = [p for p in check_dataset(root, "val") if "image id 0" in p.message]
    assert len(problems) == 1, problems
    assert problems[0].file == str(image)
    assert "the image is 50x60 but 'images' and the panoptic PNG say 97x161" in problems[0].message
    assert "correct height/width" not in str(problems[0])


def test_only_the_json_size_wrong_blames_images(root):
    edit_json(root, lambda d: d["images"][0].update(height=10))
    problems = [p for p in check_dataset(root, "val") if "image id 0" in p.message]
    assert len(problems) == 1 and problems[0].file == str(json_path(root))
    assert "'images' says 10x161 but the image and the PNG are 97x161" in problems[0].message


def test_a_wrong_split_names_the_splits_that_exist(root):
    (json_path(root)).rename(root / "annotations" / "panoptic_val2017.json")
    problem = check_dataset(root, "val")[0]
    assert "no split 'val' in this data set; it has: train, val2017" in problem.message
    assert "--split train" in problem.fix
    with pytest.raises(DatasetError, match="it has: train, val2017"):
        open_dataset(root, "val")


def test_a_missing_root_says_the_folder_is_missing(tmp_path):
    problem = check_dataset(tmp_path / "nope", "val")[0]
    assert problem.file == str(tmp_path / "nope") and problem.message == "data set folder not found"


def test_cityscapes_panoptic_json_without_images_and_categories_passes_as_the_reader_reads_it(
    cityscapes_root,
):
    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic

    gt = cityscapes_root / "gtFine"
    convert2panoptic(str(gt), str(gt), False, ["val"])
    next((gt / "val").glob("*/*_instanceIds.png")).unlink()
    path = gt / "cityscapes_panoptic_val.json"
    data = json.loads(path.read_text())
    del data["images"], data["categories"]
    path.write_text(json.dumps(data))
    assert len(open_dataset(cityscapes_root, "val")) == 1  # the reader loads it
    assert check_dataset(cityscapes_root, "val") == []
