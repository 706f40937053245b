"""The synthetic street data set: layout, determinism, content, and the acceptance bar
(check-dataset clean, panopticapi scores the ground truth against itself as PQ 1.0)."""

import json

import numpy as np
import pytest

from panoptic_deeplab.cli import main
from panoptic_deeplab.datasets.checks import check_dataset
from panoptic_deeplab.datasets.readers import open_dataset
from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset, render_scene


def test_layout_and_categories(synthetic_root):
    spec = get_dataset_spec("synthetic")
    for split, count in (("train", 4), ("val", 3)):
        data = json.loads((synthetic_root / "annotations" / f"panoptic_{split}.json").read_text())
        assert len(data["images"]) == len(data["annotations"]) == count
        assert len(list((synthetic_root / split).glob("*.jpg"))) == count
        assert (
            len(list((synthetic_root / "annotations" / f"panoptic_{split}").glob("*.png"))) == count
        )
        cats = {c["id"]: c for c in data["categories"]}
        for t, name in enumerate(spec.class_names):
            assert cats[t]["name"] == name and cats[t]["isthing"] == int(spec.is_thing(t))
            assert tuple(cats[t]["color"]) == spec.colors[t]
    assert len(spec.stuff_class_ids) >= 5 and len(spec.thing_class_ids) >= 3
    assert open_dataset(synthetic_root, "val").spec == spec


def test_deterministic_for_a_seed():
    a = render_scene(np.random.default_rng([5, 0, 1]), 97, 161)
    b = render_scene(np.random.default_rng([5, 0, 1]), 97, 161)
    c = render_scene(np.random.default_rng([6, 0, 1]), 97, 161)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]
    assert not np.array_equal(a[1], c[1])


def test_files_identical_for_same_seed(tmp_path):
    one = make_synthetic_dataset(tmp_path / "a", 2, 1, height=65, width=97, seed=1, workers=1)
    two = make_synthetic_dataset(tmp_path / "b", 2, 1, height=65, width=97, seed=1, workers=2)
    for rel in (
        "annotations/panoptic_train.json",
        "annotations/panoptic_train/train_000001.png",
        "train/train_000001.jpg",
        "annotations/panoptic_val.json",
    ):
        assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel


def test_scene_content_at_default_size():
    spec = get_dataset_spec("synthetic")
    things, classes = [], set()
    for k in range(4):
        image, ids, segments = render_scene(np.random.default_rng([0, 0, k]))
        assert image.shape == (512, 1024, 3) and ids.shape == (512, 1024)
        thing_segments = [s for s in segments if spec.is_thing(s["category_id"])]
        things.append(len(thing_segments))
        classes |= {s["category_id"] for s in segments}
        assert image.std() > 20  # textured, not flat
    assert np.mean(things) >= 6
    assert classes >= set(spec.thing_class_ids)


def test_check_dataset_clean_and_cli_exit_code(synthetic_root, capsys):
    assert check_dataset(synthetic_root, "train") == []
    assert check_dataset(synthetic_root, "val") == []
    assert main(["check-dataset", str(synthetic_root), "--split", "val"]) == 0
    assert "no problems" in capsys.readouterr().out


def test_panopticapi_scores_ground_truth_as_pq_one(synthetic_root, tmp_path):
    from panopticapi import evaluation

    gt_json = synthetic_root / "annotations" / "panoptic_val.json"
    results = evaluation.pq_compute(
        str(gt_json), str(gt_json), str(gt_json.with_suffix("")), str(gt_json.with_suffix(""))
    )
    assert results["All"]["pq"] == pytest.approx(1.0)
    assert results["All"]["n"] == get_dataset_spec("synthetic").num_classes


def test_make_dataset_cli(tmp_path, capsys):
    assert (
        main(
            [
                "make-dataset",
                "synthetic",
                "--out",
                str(tmp_path),
                "--num-train",
                "1",
                "--num-val",
                "1",
                "--height",
                "65",
                "--width",
                "97",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert (tmp_path / "annotations" / "panoptic_val.json").is_file()
    assert main(["make-dataset", "synthetic", "--out", str(tmp_path), "--height", "10"]) == 2
