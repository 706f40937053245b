"""``pdl evaluate``: its numbers agree with `pdl pq` on the same predictions and with mIoU / AP
computed directly from the Predictor's maps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from panoptic_deeplab.cli import main
from panoptic_deeplab.datasets.readers import open_dataset
from panoptic_deeplab.evaluation import cityscapes_instance_ap, mean_iou
from panoptic_deeplab.inference import Predictor


@pytest.mark.slow
def test_evaluate_agrees_with_pq_on_its_saved_predictions(tiny_bundle_dir, tmp_path, capsys):
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    root = make_synthetic_dataset(
        tmp_path / "synth", num_train=0, num_val=3, height=65, width=97, workers=1
    )
    (root / "val" / sorted(p.name for p in (root / "val").iterdir())[1]).write_bytes(
        b""
    )  # one broken image
    report, saved = tmp_path / "r.json", tmp_path / "pred"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(tiny_bundle_dir),
                "--dataset",
                str(root),
                "--split",
                "val",
                "--out",
                str(report),
                "--save-predictions",
                str(saved),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "Panoptic quality" in printed and "mIoU" in printed and "Instance AP" in printed
    result = json.loads(report.read_text())
    assert result["num_images"] == 2 and len(result["skipped"]) == 1
    assert set(result["panoptic"]) >= {"All", "Things", "Stuff", "per_class"}
    assert len(result["per_image"]) == 2 and "gt_segments" in result["per_image"][0]

    # PQ: the files route (`pdl pq`, panopticapi semantics) on the saved predictions.
    # (The GT JSON without the unreadable image, which has no prediction.)
    gt = json.loads((root / "annotations" / "panoptic_val.json").read_text())
    predicted = {
        a["image_id"] for a in json.loads((saved / "panoptic.json").read_text())["annotations"]
    }
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in predicted]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    pq_out = tmp_path / "pq.json"
    assert (
        main(
            [
                "pq",
                "--gt-json",
                str(tmp_path / "gt.json"),
                "--gt-folder",
                str(root / "annotations" / "panoptic_val"),
                "--pred-json",
                str(saved / "panoptic.json"),
                "--pred-folder",
                str(saved / "panoptic"),
                "--out",
                str(pq_out),
            ]
        )
        == 0
    )
    files = json.loads(pq_out.read_text())
    for key in ("All", "Things", "Stuff"):
        assert files[key]["n"] == result["panoptic"][key]["n"]
        for metric in ("pq", "sq", "rq"):
            assert files[key][metric] == pytest.approx(result["panoptic"][key][metric], abs=1e-12)

    # mIoU and AP from the Predictor's own maps.
    reader = open_dataset(root, "val")
    predictor = Predictor(tiny_bundle_dir)
    kept = [0, 2]
    preds = [predictor(reader[i].image_path) for i in kept]
    gts = [reader.load_panoptic(i) for i in kept]
    miou = mean_iou([g // 1000 for g in gts], [p.semantic for p in preds], num_classes=8)
    assert result["semantic"]["miou"] == pytest.approx(miou["miou"])
    scores = [{s.id: s.score for s in p.segments if s.isthing} for p in preds]
    ap = cityscapes_instance_ap(
        gts,
        [p.panoptic for p in preds],
        scores,
        thing_class_ids=(5, 6, 7),
        label_divisor=1000,
        ignore_label=255,
    )
    assert result["instance"]["cityscapes"]["ap"] == (
        None if ap["ap"] is None else pytest.approx(ap["ap"])
    )

    # The saved predictions as a prediction set (`pdl predict`'s files; no model): the same PQ,
    # per class and per error type, and the same AP from the scores in its JSON. The data set
    # without the unreadable image, which has no prediction.
    gt["images"] = [i for i in gt["images"] if i["id"] in predicted]
    (root / "annotations" / "panoptic_val.json").write_text(json.dumps(gt))
    again = tmp_path / "again.json"
    argv = ["evaluate", "--predictions", str(saved / "panoptic.json"), "--dataset", str(root)]
    assert main([*argv, "--split", "val", "--skip-dataset-check", "--out", str(again)]) == 0
    from_files = json.loads(again.read_text())
    assert from_files["panoptic"] == result["panoptic"]
    assert from_files["errors"] == result["errors"]
    assert from_files["predictions"]["folder"] == str((saved / "panoptic").resolve())
    for style in ("coco", "cityscapes"):
        ours, model = from_files["instance"][style]["ap"], result["instance"][style]["ap"]
        assert ours == (None if model is None else pytest.approx(model)), style


def test_a_missed_stuff_segment_voided_by_the_area_limit_is_named_so():
    """Hand-made: the network predicted the small stuff class, post-processing voided it."""
    from types import SimpleNamespace

    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.evaluation.evaluate_split import Evaluation

    spec = get_dataset_spec("synthetic")
    road, sky = spec.class_names.index("road"), spec.class_names.index("sky")
    assert road not in spec.thing_class_ids and sky not in spec.thing_class_ids
    div, void = spec.label_divisor, spec.ignore_label * spec.label_divisor
    gt = np.full((8, 10), road * div, np.int64)
    gt[:2, :3] = sky * div  # small sky segment
    gt[7:, 7:] = sky * div  # a second patch of the same segment (9 pixels in all)
    semantic = np.full((8, 10), road, np.int32)
    semantic[:2, :3] = sky
    panoptic = np.where(semantic == sky, void, road * div).astype(np.int32)
    panoptic[7:, 7:] = void  # semantic says road there
    semantic_miss = semantic.copy()
    prediction = SimpleNamespace(panoptic=panoptic, semantic=semantic, segments=[])
    record = Evaluation(spec, ap="none").add(1, "a.png", gt, prediction)
    reasons = {s["category_id"]: s["reason"] for s in record["gt_segments"]}
    assert reasons[sky] == "stuff_area_limit"  # 6 of its 9 pixels: predicted sky, then voided
    # The same miss with the network predicting another class is not the area limit's doing.
    semantic_miss[:2, :3] = road
    prediction = SimpleNamespace(panoptic=panoptic, semantic=semantic_miss, segments=[])
    record = Evaluation(spec, ap="none").add(1, "a.png", gt, prediction)
    assert {s["category_id"]: s["reason"] for s in record["gt_segments"]}[sky] == "not_predicted"
