"""The model's classes against a data set's, before evaluating: a data set whose category ids (or
names) differ from the model's passes `pdl check-dataset`, and `pdl evaluate` says what differs and
what to do, instead of blaming the annotation file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from panoptic_deeplab.cli import main
from panoptic_deeplab.datasets.class_check import (
    ClassMismatchError,
    class_differences,
    require_matching_classes,
)
from panoptic_deeplab.datasets.specs import get_dataset_spec

SHIPPED = Path(__file__).resolve().parents[3] / "assets" / "models" / "synthetic_demo"


def shifted_copy(root: Path, out: Path, shift: int = 100, rename: dict | None = None) -> Path:
    """A copy of a COCO-panoptic set with every category id moved by ``shift`` (JSON and segments
    alike, so the set is consistent) and some classes renamed."""
    import shutil

    shutil.copytree(root, out)
    path = out / "annotations" / "panoptic_val.json"
    coco = json.loads(path.read_text())
    for c in coco["categories"]:
        c["id"] += shift
        c["name"] = (rename or {}).get(c["name"], c["name"])
    for ann in coco["annotations"]:
        for s in ann["segments_info"]:
            s["category_id"] += shift
    path.write_text(json.dumps(coco))
    return out


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(
        tmp_path_factory.mktemp("cc") / "data",
        num_train=0,
        num_val=1,
        height=33,
        width=65,
        workers=1,
    )


def test_the_same_classes_pass(synthetic):
    spec = get_dataset_spec("synthetic")
    assert require_matching_classes(spec, synthetic, "val").class_names == spec.class_names


def test_shifted_ids_and_a_renamed_class_are_named(synthetic, tmp_path):
    data = shifted_copy(synthetic, tmp_path / "shifted", shift=100)
    with pytest.raises(ClassMismatchError) as caught:
        require_matching_classes(get_dataset_spec("synthetic"), data, "val", "demo")
    text = str(caught.value)
    assert "category ids only in the data set: 100 'road'" in text
    assert "category ids only in the model: 0 'road'" in text
    assert "use a model trained on these classes" in text and "--init-from" in text
    assert "is not in 'categories'" not in text

    from panoptic_deeplab.datasets.readers import open_dataset

    renamed = get_dataset_spec("synthetic")
    other = open_dataset(
        shifted_copy(synthetic, tmp_path / "renamed", 0, {"car": "automobile"}), "val"
    ).spec
    assert class_differences(renamed, other) == [
        "same id, other name: 6 is 'car' in the model but 'automobile' in the data set"
    ]


def test_pdl_evaluate_reports_the_mismatch_before_building_the_model(synthetic, tmp_path, capsys):
    data = shifted_copy(synthetic, tmp_path / "shifted", shift=100)
    assert main(["check-dataset", str(data), "--split", "val"]) == 0  # the data set itself is fine
    capsys.readouterr()
    assert (
        main(["evaluate", "--model", str(SHIPPED), "--dataset", str(data), "--split", "val"]) == 2
    )
    err = capsys.readouterr().err
    assert (
        "are not the classes of" in err and "category ids only in the data set: 100 'road'" in err
    )
    assert "add it there or fix the segment" not in err
