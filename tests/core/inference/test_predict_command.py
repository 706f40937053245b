"""``pdl predict`` on a folder with good and bad images, and on a data set split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from panoptic_deeplab.cli import main
from panoptic_deeplab.evaluation.coco_io import read_panoptic_png
from panoptic_deeplab.inference import Predictor
from tests.core.inference.inference_fakes import random_image


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    Image.fromarray(random_image(65, 97, seed=1)).save(folder / "a.png")
    Image.fromarray(random_image(40, 50, seed=2)).convert("L").save(folder / "b.jpg")
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("not an image")
    return folder


@pytest.mark.slow
def test_predict_folder_writes_coco_panoptic_and_skips_bad_images(
    tiny_bundle_dir, image_dir, tmp_path, capsys
):
    out = tmp_path / "pred"
    code = main(
        [
            "predict",
            "--model",
            str(tiny_bundle_dir),
            "--images",
            str(image_dir),
            "--out",
            str(out),
            "--overlays",
            "--save-raw",
            "--batch-size",
            "2",
        ]
    )
    assert code == 0
    data = json.loads((out / "panoptic.json").read_text())
    assert [a["file_name"] for a in data["annotations"]] == ["a.png", "b.png"]
    assert [i["file_name"] for i in data["images"]] == ["a.png", "b.jpg"]
    assert [c["id"] for c in data["categories"]] == list(range(8))
    skipped = json.loads((out / "skipped.json").read_text())
    assert sorted(s["path"].rsplit("/", 1)[1] for s in skipped) == ["empty.png", "text.png"]
    assert "skipped 2 unreadable" in capsys.readouterr().out

    # The PNG + segments_info describe exactly the Predictor's panoptic map.
    predictor = Predictor(tiny_bundle_dir)
    expected = predictor(image_dir / "a.png").panoptic
    annotation = data["annotations"][0]
    ids = read_panoptic_png(out / "panoptic" / "a.png")
    assert ids.shape == (65, 97)
    rebuilt = np.full(ids.shape, 255 * 1000, np.int64)
    for segment in annotation["segments_info"]:
        mask = ids == segment["id"]
        assert mask.sum() == segment["area"] > 0
        ys, xs = np.nonzero(mask)
        assert segment["bbox"] == [
            xs.min(),
            ys.min(),
            xs.max() - xs.min() + 1,
            ys.max() - ys.min() + 1,
        ]
        assert segment["category_id"] == segment["panoptic_id"] // 1000
        rebuilt[mask] = segment["panoptic_id"]
    np.testing.assert_array_equal(rebuilt, expected)
    assert set(np.unique(ids)) <= {0} | {s["id"] for s in annotation["segments_info"]}

    raw = np.load(out / "raw" / "b.npz")
    assert raw["semantic_probs"].shape == (40, 50, 8) and raw["offsets"].shape == (40, 50, 2)
    assert raw["panoptic"].shape == (40, 50)
    overlay = Image.open(out / "overlays" / "a.jpg")
    assert overlay.size == (97, 65)


def test_predict_dataset_uses_the_annotation_image_ids(tiny_bundle_dir, tmp_path):
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    root = make_synthetic_dataset(
        tmp_path / "synth", num_train=0, num_val=2, height=65, width=97, workers=1
    )
    out = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                "--model",
                str(tiny_bundle_dir),
                "--dataset",
                str(root),
                "--split",
                "val",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    gt = json.loads((root / "annotations" / "panoptic_val.json").read_text())
    pred = json.loads((out / "panoptic.json").read_text())
    assert [a["image_id"] for a in pred["annotations"]] == [
        a["image_id"] for a in gt["annotations"]
    ]
    assert not (out / "skipped.json").exists()
    # The files are valid input for `pdl pq`.
    assert (
        main(
            [
                "pq",
                "--gt-json",
                str(root / "annotations" / "panoptic_val.json"),
                "--gt-folder",
                str(root / "annotations" / "panoptic_val"),
                "--pred-json",
                str(out / "panoptic.json"),
                "--pred-folder",
                str(out / "panoptic"),
                "--out",
                str(tmp_path / "pq.json"),
            ]
        )
        == 0
    )
    assert "All" in json.loads((tmp_path / "pq.json").read_text())


def test_predict_reports_a_missing_bundle(tmp_path, capsys):
    assert (
        main(
            [
                "predict",
                "--model",
                str(tmp_path / "nope"),
                "--images",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "no such bundle directory" in capsys.readouterr().err


def test_coco_segments_give_class_zero_a_nonzero_segment_id():
    """Road (class 0, instance 0, panoptic value 0) must not become COCO's VOID id 0."""
    import numpy as np

    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.prediction_io import coco_segments

    spec = get_dataset_spec("synthetic")
    panoptic = np.array([[0, 0, 6001], [255000, 6002, 6001]])
    ids, info = coco_segments(panoptic, spec, {6001: 0.9})
    assert ids.tolist() == [[1, 1, 2], [0, 3, 2]]
    assert [(s["id"], s["category_id"], s["panoptic_id"], s["area"], s["score"]) for s in info] == [
        (1, 0, 0, 2, 0.0),
        (2, 6, 6001, 2, 0.9),
        (3, 6, 6002, 1, 0.0),
    ]
    assert info[1]["bbox"] == [2, 0, 1, 2] and info[0]["isthing"] == 0 and info[1]["isthing"] == 1
