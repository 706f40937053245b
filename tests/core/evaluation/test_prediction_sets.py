"""Prediction sets (any model's predictions read from files) evaluated like a model: ground truth
perturbed in known ways gives panopticapi's PQ per class exactly and the error breakdown names the
known errors; the same predictions written with other ids, another order or another writer give
the same result; deeplab2's raw PNGs are read; every validation problem names its file, segment
and fix; ``pdl evaluate --predictions`` prints the report and writes the results JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from panoptic_deeplab.datasets.png_ids import read_segment_ids
from panoptic_deeplab.errors import DatasetError, UserError
from panoptic_deeplab.evaluation.coco_io import write_panoptic_png
from panoptic_deeplab.evaluation.evaluate_split import evaluate_predictions
from panoptic_deeplab.evaluation.results import EvaluationResult
from panoptic_deeplab.prediction_sets import PredictionSet
from tests.core.evaluation.synth import write_pil_png

ROAD, PERSON, CAR, BUS = 0, 5, 6, 7


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(
        tmp_path_factory.mktemp("predsets") / "data",
        num_train=0,
        num_val=3,
        height=65,
        width=97,
        seed=0,
        workers=1,
    )


@pytest.fixture(scope="module")
def reader(dataset):
    from panoptic_deeplab.datasets.readers import open_dataset

    return open_dataset(dataset, "val")


def ground_truth(dataset) -> list[dict]:
    """Per image: the GT annotation and its id map, copied (to perturb)."""
    data = json.loads((dataset / "annotations" / "panoptic_val.json").read_text())
    out = []
    for ann in data["annotations"]:
        ids = read_segment_ids(dataset / "annotations" / "panoptic_val" / ann["file_name"])
        segments = [{"id": s["id"], "category_id": s["category_id"]} for s in ann["segments_info"]]
        out.append({"ann": ann, "ids": ids.astype(np.int64), "segments": segments})
    return out


def first(image: dict, category: int) -> dict:
    return next(s for s in image["segments"] if s["category_id"] == category)


def stuff_or_void(image: dict, mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` that are void or stuff: where a moved or added segment may be painted
    without touching another thing (so that only the intended error happens)."""
    stuff = [s["id"] for s in image["segments"] if s["category_id"] < PERSON]
    return mask & np.isin(image["ids"], [0, *stuff])


# The known perturbations, each on its own segment (image index, what, expected error types).
def perturb(dataset) -> tuple[list[dict], dict]:
    """Ground truth with: a car dropped, a bus relabelled car, a bus shifted (IoU in 0.1..0.5), a
    bus split in two, a spurious person added. Returns the images and, per perturbation, the GT
    id and the predicted id to look up in the results."""
    images = ground_truth(dataset)
    known = {}
    # Image 0: drop a car; relabel its bus as a car.
    im = images[0]
    car = first(im, CAR)
    im["ids"][im["ids"] == car["id"]] = 0
    im["segments"].remove(car)
    known["dropped"] = (0, car["id"], None)
    bus = first(im, BUS)
    bus["category_id"] = CAR
    known["relabelled"] = (0, bus["id"], bus["id"])
    # Image 1: shift its first bus right until IoU < 0.45, split its second in two.
    im = images[1]
    buses = [s for s in im["segments"] if s["category_id"] == BUS]
    shifted, split = buses[0], buses[1]
    mask = im["ids"] == shifted["id"]
    for dx in range(1, 60):
        moved = np.zeros_like(mask)
        moved[:, dx:] = mask[:, :-dx]
        painted = stuff_or_void(im, moved) | (moved & mask)
        inter = np.count_nonzero(painted & mask)
        if inter / (mask.sum() + painted.sum() - inter) < 0.45:
            break
    im["ids"][mask] = 0
    im["ids"][painted] = shifted["id"]
    known["shifted"] = (1, shifted["id"], shifted["id"])
    mask = im["ids"] == split["id"]
    cols = np.nonzero(mask.any(axis=0))[0]
    cut = cols[0] + int(0.62 * len(cols))  # the larger part still matches (IoU > 0.5)
    part = mask.copy()
    part[:, :cut] = False
    new_id = int(im["ids"].max()) + 1
    im["ids"][part] = new_id
    im["segments"].append({"id": new_id, "category_id": BUS})
    known["split"] = (1, split["id"], new_id)
    # Image 2: a spurious person on the road, far from any thing.
    im = images[2]
    box = np.zeros_like(im["ids"], bool)
    box[50:60, 2:8] = True
    box = stuff_or_void(im, box)
    new_id = int(im["ids"].max()) + 1
    im["ids"][box] = new_id
    im["segments"].append({"id": new_id, "category_id": PERSON})
    known["spurious"] = (2, None, new_id)
    return images, known


def write_set(
    images: list[dict],
    out: Path,
    *,
    writer=write_panoptic_png,
    renumber=None,
    shuffle: int | None = None,
    scores: bool = True,
) -> Path:
    """Write ``images`` as a COCO-panoptic prediction set (JSON + PNG folder): ``renumber(ids)``
    gives new segment ids, ``shuffle`` the seed of a new segments_info order."""
    folder = out / "panoptic"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(shuffle or 0)
    annotations = []
    for k, im in enumerate(images):
        ids, segments = im["ids"].copy(), [dict(s) for s in im["segments"]]
        if renumber:
            mapping = renumber([s["id"] for s in segments])
            old, new = np.array(list(mapping)), np.array(list(mapping.values()))
            order = np.argsort(old)
            at = np.clip(np.searchsorted(old[order], ids), 0, len(old) - 1)
            ids = np.where(old[order][at] == ids, new[order][at], 0)
            for s in segments:
                s["id"] = mapping[s["id"]]
        if scores:  # by the original order: the same segment gets the same score
            for i, s in enumerate(segments):
                s["score"] = round(0.9 - 0.01 * i - 0.1 * k, 3)
        if shuffle is not None:
            segments = [segments[i] for i in rng.permutation(len(segments))]
        name = f"pred_{k}.png"
        writer(folder / name, ids)
        annotations.append(
            {"image_id": im["ann"]["image_id"], "file_name": name, "segments_info": segments}
        )
    if shuffle is not None:
        annotations = [annotations[i] for i in rng.permutation(len(annotations))]
    path = out / "panoptic.json"
    path.write_text(json.dumps({"annotations": annotations}))
    return path


def random_ids(seed):
    rng = np.random.default_rng(seed)

    def renumber(ids):
        new = rng.choice(np.arange(1, 1 << 24), size=len(ids), replace=False)
        return dict(zip(ids, (int(v) for v in new)))

    return renumber


def panopticapi_per_class(dataset, pred_json: Path) -> dict:
    from panopticapi.evaluation import pq_compute_single_core

    gt = json.loads((dataset / "annotations" / "panoptic_val.json").read_text())
    pred = {a["image_id"]: a for a in json.loads(pred_json.read_text())["annotations"]}
    cats = {c["id"]: c for c in gt["categories"]}
    pairs = [(a, pred[a["image_id"]]) for a in gt["annotations"]]
    stat = pq_compute_single_core(
        0,
        pairs,
        str(dataset / "annotations" / "panoptic_val"),
        str(pred_json.with_suffix("")),
        cats,
    )
    averages = {
        name: stat.pq_average(cats, isthing=flag)[0]
        for name, flag in (("All", None), ("Things", True), ("Stuff", False))
    }
    return stat, averages


def evaluate(reader, pred_json: Path, **kwargs) -> EvaluationResult:
    return evaluate_predictions(
        PredictionSet.open(reader.spec, predictions=pred_json), reader, **kwargs
    )


@pytest.fixture(scope="module")
def perturbed(dataset, reader, tmp_path_factory):
    images, known = perturb(dataset)
    out = tmp_path_factory.mktemp("perturbed")
    path = write_set(images, out / "tool", writer=write_pil_png, renumber=random_ids(3), shuffle=5)
    return path, known, evaluate(reader, path)


def test_perturbed_ground_truth_gives_panopticapis_numbers_per_class(dataset, perturbed):
    path, _, result = perturbed
    stat, averages = panopticapi_per_class(dataset, path)
    for name in ("All", "Things", "Stuff"):
        ours = result.panoptic.group(name)
        assert ours.n == averages[name]["n"]
        for key in ("pq", "sq", "rq"):
            assert getattr(ours, key) == pytest.approx(averages[name][key], abs=1e-12), name
    for cid, row in result.panoptic.per_class.items():
        ref = stat.pq_per_cat[cid]
        assert (row.tp, row.fp, row.fn) == (ref.tp, ref.fp, ref.fn), cid
        assert row.iou_sum == pytest.approx(ref.iou, abs=1e-12), cid
    # Bus: relabelled and shifted (FN), shifted and the split-off part (FP); stuff all matched.
    bus = result.panoptic.per_class[BUS]
    assert (bus.tp, bus.fp, bus.fn) == (2, 2, 2)
    assert all(r.fp == r.fn == 0 for r in result.panoptic.per_class.values() if not r.isthing)


def test_the_breakdown_names_each_known_error(perturbed):
    _, _, result = perturbed
    records = result.per_image
    by_error = {}
    for image in records:
        for s in image.gt_segments + image.pred_segments:
            if s.error:
                by_error.setdefault(s.error, []).append((image.image_id, s.category_id))
    assert by_error.pop("missed") == [(0, CAR)]
    assert sorted(by_error.pop("wrong_class")) == [(0, CAR), (0, BUS)]
    assert sorted(by_error.pop("low_iou")) == [(1, BUS), (1, BUS)]  # the shifted bus, both sides
    assert by_error.pop("split") == [(1, BUS)]
    assert by_error.pop("spurious") == [(2, PERSON)]
    assert by_error == {}  # nothing else went wrong
    counts = result.errors.per_class
    assert counts[BUS].counts["wrong_class"] == 1 and counts[BUS].counts["split"] == 1
    assert counts[CAR].counts == {
        **dict.fromkeys(counts[CAR].counts, 0),
        "missed": 1,
        "wrong_class": 1,
    }
    assert counts[PERSON].counts["spurious"] == 1
    for row in [result.errors.all, *counts.values()]:
        assert row.pq + sum(row.points.values()) == pytest.approx(100.0)


def test_other_ids_order_and_writer_give_the_same_result(dataset, reader, perturbed, tmp_path):
    """As `pdl predict` writes them (ids 1..n in order, OpenCV PNGs) or as another tool might
    (random 24-bit ids, shuffled segments and annotations, PIL PNGs): one result."""
    path, _, other = perturbed
    images, _ = perturb(dataset)
    plain = evaluate(reader, write_set(images, tmp_path / "plain"))
    a, b = plain.to_json(), other.to_json()
    a.pop("predictions"), b.pop("predictions")
    assert a == b


def test_scores_give_ap_and_no_scores_none(dataset, reader, perturbed, tmp_path):
    _, _, with_scores = perturbed
    assert set(with_scores.instance) == {"coco", "cityscapes"}
    assert 0 < with_scores.instance["coco"].ap <= 1
    images, _ = perturb(dataset)
    without = evaluate(reader, write_set(images, tmp_path / "no-scores", scores=False))
    assert without.instance == {} and without.panoptic == with_scores.panoptic


def test_miou_is_computed_from_the_panoptic_maps(dataset, reader, perturbed):
    from panoptic_deeplab.evaluation import mean_iou

    path, _, result = perturbed
    predictions = PredictionSet.open(reader.spec, predictions=path)
    gts, preds = [], []
    for index, entry in predictions.match(reader)[0]:
        gt = reader.load_panoptic(index)
        gts.append(gt // 1000)
        pred = predictions.load(entry, reader[index].image_id, gt.shape).panoptic
        preds.append(np.where(pred == 255000, -1, pred // 1000))  # void: a miss
    expected = mean_iou(gts, preds, num_classes=8)
    assert result.semantic.miou == pytest.approx(expected["miou"], abs=1e-15)
    assert result.semantic.confusion == expected["confusion"]


def test_results_round_trip_through_json(perturbed, tmp_path):
    _, _, result = perturbed
    saved = result.save(tmp_path / "r.json")
    again = EvaluationResult.load(saved)
    assert again == result and again.kind == "predictions"
    assert json.loads(saved.read_text())["schema_version"] == 1


def test_a_results_file_of_an_older_pdl_still_loads(perturbed, tmp_path):
    """Version 0 (before schema_version): no version key, COCO AP per class a bare number, no
    'predictions'; it loads with the same numbers."""
    from panoptic_deeplab.evaluation.results import ClassAP

    _, _, result = perturbed
    old = result.to_json()
    del old["schema_version"], old["predictions"]
    coco = old["instance"]["coco"]
    coco["per_class"] = {k: v["ap"] for k, v in coco["per_class"].items()}
    old["model"] = "/somewhere/bundle"
    (tmp_path / "old.json").write_text(json.dumps(old))
    again = EvaluationResult.load(tmp_path / "old.json")
    assert again.kind == "model" and again.source == "/somewhere/bundle"
    assert again.panoptic == result.panoptic and again.per_image == result.per_image
    assert again.instance["coco"].per_class == {
        k: ClassAP(v.ap) for k, v in result.instance["coco"].per_class.items()
    }


def test_a_newer_broken_or_foreign_results_file_is_named_with_its_fix(perturbed, tmp_path):
    from panoptic_deeplab.evaluation.results import ResultsFileError

    _, _, result = perturbed
    newer = {**result.to_json(), "schema_version": 99}
    cases = {
        "newer.json": (json.dumps(newer), "newer than this pdl reads"),
        "cut.json": (json.dumps(result.to_json())[:200], "cannot read these results"),
        "other.json": (json.dumps({"annotations": []}), "not an evaluation result"),
    }
    for name, (text, words) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ResultsFileError, match=words) as err:
            EvaluationResult.load(tmp_path / name)
        assert name in str(err.value)


# -- deeplab2's raw prediction PNGs ---------------------------------------------------------------


def write_raw(reader, folder: Path, channels: int, semantic_of=lambda t: t) -> None:
    """deeplab2's store_raw_predictions: R = semantic, G (and B) = instance, named as the image."""
    from PIL import Image

    folder.mkdir(parents=True)
    for i, example in enumerate(reader):
        panoptic = reader.load_panoptic(i).astype(np.int64)
        semantic, instance = panoptic // 1000, panoptic % 1000
        rgb = np.zeros((*panoptic.shape, 3), np.uint8)
        rgb[..., 0] = semantic_of(semantic)
        if channels == 2:
            rgb[..., 1] = instance
        else:
            rgb[..., 1], rgb[..., 2] = instance // 256, instance % 256
        Image.fromarray(rgb).save(folder / f"{Path(example.image_path).stem}.png")


@pytest.mark.parametrize("fmt", ["two_channel_png", "three_channel_png"])
def test_deeplab2_raw_pngs_of_the_ground_truth_score_100(reader, tmp_path, fmt):
    write_raw(reader, tmp_path / "raw_panoptic", 2 if fmt == "two_channel_png" else 3)
    predictions = PredictionSet.open(reader.spec, folder=tmp_path / "raw_panoptic", format=fmt)
    assert predictions.name == tmp_path.name  # "raw_panoptic" says nothing: the folder above
    result = evaluate_predictions(predictions, reader)
    assert result.panoptic.all.pq == 1.0 and result.semantic.miou == 1.0
    assert result.instance == {}  # raw PNGs carry no scores


def test_a_class_table_maps_raw_semantic_values(reader, tmp_path):
    # Semantic values 10..17 for the data set's train ids 0..7, 0 for void (as Cityscapes eval ids).
    write_raw(reader, tmp_path / "raw", 2, semantic_of=lambda t: np.where(t == 255, 0, t + 10))
    table = tmp_path / "table.json"
    table.write_text(json.dumps({"0": None, **{str(t + 10): t for t in range(8)}}))
    predictions = PredictionSet.open(
        reader.spec, folder=tmp_path / "raw", format="two_channel_png", class_table=table
    )
    assert evaluate_predictions(predictions, reader).panoptic.all.pq == 1.0
    table.write_text(json.dumps({str(t + 10): t for t in range(8)}))  # 0 (void) left out
    predictions = PredictionSet.open(
        reader.spec, folder=tmp_path / "raw", format="two_channel_png", class_table=table
    )
    problems = predictions.check(reader)
    assert problems and "semantic values [0]" in problems[0].message
    assert problems[0].file.endswith(".png") and "class table" in problems[0].fix


# -- validation -----------------------------------------------------------------------------------


@pytest.fixture
def good(dataset, tmp_path):
    """A valid set (the ground truth itself) to break in one way per test."""
    return write_set(ground_truth(dataset), tmp_path / "set")


def problems_of(reader, path) -> list:
    return PredictionSet.open(reader.spec, predictions=path).check(reader)


def edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data["annotations"])
    path.write_text(json.dumps(data))


def only(problems, *words):
    assert len(problems) == 1, [str(p) for p in problems]
    text = str(problems[0])
    for word in words:
        assert word in text, (word, text)
    return problems[0]


def test_the_ground_truth_itself_is_a_valid_set(reader, good):
    assert problems_of(reader, good) == []


def test_an_image_id_not_in_the_split(reader, good):
    edit(good, lambda anns: anns.append({**anns[0], "image_id": 999}))
    only(problems_of(reader, good), "panoptic.json", "image_id 999", "split 'val'", "remove")


def test_an_image_without_prediction(reader, good):
    edit(good, lambda anns: anns.pop(1))
    only(problems_of(reader, good), "no prediction for image 1", "val_000001", "--limit")


def test_a_missing_png(reader, good):
    (good.parent / "panoptic" / "pred_2.png").unlink()
    only(problems_of(reader, good), "pred_2.png", "not found", "fix")


def test_an_unreadable_png(reader, good):
    (good.parent / "panoptic" / "pred_2.png").write_bytes(b"not a png")
    only(problems_of(reader, good), "pred_2.png", "cannot decode", "predict the image again")


def test_a_png_of_another_size(reader, good):
    write_panoptic_png(good.parent / "panoptic" / "pred_0.png", np.ones((32, 48), np.int64))
    only(problems_of(reader, good), "pred_0.png", "48x32 differs", "97x65", "own size")


def test_a_category_not_in_the_data_set(reader, good):
    edit(good, lambda anns: anns[0]["segments_info"][0].update(category_id=42))
    seg = json.loads(good.read_text())["annotations"][0]["segments_info"][0]["id"]
    only(problems_of(reader, good), f"segment {seg}", "category_id 42", "0 road", "map the model")


def test_a_listed_segment_missing_from_the_png(reader, good):
    edit(good, lambda anns: anns[0]["segments_info"].append({"id": 4242, "category_id": CAR}))
    only(problems_of(reader, good), "pred_0.png", "segment 4242", "not in the PNG", "remove it")


def test_a_painted_segment_missing_from_the_json(reader, good):
    gone = {}
    edit(good, lambda anns: gone.update(anns[2]["segments_info"].pop()))
    problem = only(problems_of(reader, good), "pred_2.png", f"segment id {gone['id']}")
    assert "not in segments_info" in problem.message and "add it" in problem.fix


def test_overlapping_ids(reader, good):
    def twice(anns):
        anns[1]["segments_info"].append(dict(anns[1]["segments_info"][0]))

    edit(good, twice)
    seg = json.loads(good.read_text())["annotations"][1]["segments_info"][0]["id"]
    only(problems_of(reader, good), f"segment id {seg} is listed 2 times", "its own id")


def test_a_score_that_is_no_number(reader, good):
    edit(good, lambda anns: anns[0]["segments_info"][0].update(score="high"))
    only(problems_of(reader, good), "score 'high' is not a number")


def test_a_json_without_annotations_and_a_missing_file(reader, good, tmp_path):
    good.write_text(json.dumps({"images": []}))
    found = problems_of(reader, good)
    assert "no 'annotations' list" in str(found[0]) and len(found) == 1 + 3  # and 3 unpredicted
    with pytest.raises(UserError, match="predictions JSON not found"):
        PredictionSet.open(reader.spec, predictions=tmp_path / "nope.json")


def test_evaluation_stops_with_every_problem_and_nothing_else(reader, good):
    """Problems found while reading the images are gathered, then raised together."""
    (good.parent / "panoptic" / "pred_0.png").write_bytes(b"x")
    edit(good, lambda anns: anns[2]["segments_info"][0].update(category_id=42))
    with pytest.raises(DatasetError) as caught:
        evaluate(reader, good)
    text = str(caught.value)
    assert "2 problem(s); nothing was evaluated" in text
    assert "pred_0.png" in text and "category_id 42" in text


# -- the command line -----------------------------------------------------------------------------


def test_pdl_evaluate_predictions_writes_the_report_and_json_without_tensorflow(
    dataset, perturbed, tmp_path
):
    path, _, result = perturbed
    out = tmp_path / "r.json"
    code = (
        "import sys\n"
        "from panoptic_deeplab.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
        "sys.exit(code)\n"
    )
    args = ["evaluate", "--predictions", str(path), "--dataset", str(dataset), "--split", "val"]
    run = subprocess.run(
        [sys.executable, "-c", code, *args, "--out", str(out), "--name", "other tool"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    for table in ("Panoptic quality", "Per class", "mIoU", "PQ points lost", "Instance AP"):
        assert table in run.stdout
    assert "phase: computing AP" in run.stderr
    saved = EvaluationResult.load(out)
    assert saved.predictions.name == "other tool" and saved.dataset == str(dataset)
    assert saved.panoptic == result.panoptic and saved.errors == result.errors
    refused = subprocess.run(
        [sys.executable, "-m", "panoptic_deeplab", *args, "--oracle", "all"],
        capture_output=True,
        text=True,
    )
    assert (
        refused.returncode == 2 and "a prediction set has only its panoptic maps" in refused.stderr
    )


def test_pdl_evaluate_needs_a_model_or_a_prediction_set(dataset, capsys):
    from panoptic_deeplab.cli import main

    assert main(["evaluate", "--dataset", str(dataset)]) == 2
    assert "give either --model BUNDLE, or a prediction set" in capsys.readouterr().err


def test_the_library_call_evaluates_a_predictions_json(dataset, perturbed):
    import panoptic_deeplab as pdl

    path, _, result = perturbed
    again = pdl.evaluate(path, dataset, "val")
    assert again.panoptic == result.panoptic and again.dataset == str(dataset)
    with pytest.raises(UserError, match="no heads"):
        pdl.evaluate(path, dataset, "val", oracles="all")


def test_a_limit_evaluates_the_first_images_only(dataset, reader, tmp_path):
    images = ground_truth(dataset)
    path = write_set(images[:2], tmp_path / "two")
    result = evaluate(reader, path, limit=2)
    assert result.num_images == 2 and result.panoptic.all.pq == 1.0
