"""PQ against panopticapi-lite and hotcoco on data made here, plus a hand-built five-rule set."""

import json
import subprocess
import sys

import numpy as np
import pytest

from panoptic_deeplab.datasets.specs import DatasetSpec
from panoptic_deeplab.errors import DatasetError
from panoptic_deeplab.evaluation.coco_io import pq_from_files, pq_from_label_maps
from tests.core.evaluation.synth import (
    CATEGORIES,
    DIV,
    VOID,
    random_pair,
    write_coco,
    write_pil_png,
)

SPEC = DatasetSpec(
    name="t",
    class_names=("road", "sky", "car", "person"),
    colors=((0, 0, 0),) * 4,
    thing_class_ids=(2, 3),
    label_divisor=DIV,
    ignore_label=VOID,
)


def panopticapi_counts(gt_json, gt_dir, pred_json, pred_dir):
    from panopticapi.evaluation import pq_compute_single_core

    gt, pred = json.loads(gt_json.read_text()), json.loads(pred_json.read_text())
    cats = {c["id"]: c for c in gt["categories"]}
    pairs = list(zip(gt["annotations"], pred["annotations"]))
    stat = pq_compute_single_core(0, pairs, str(gt_dir), str(pred_dir), cats)
    results = {
        name: stat.pq_average(cats, isthing=flag)[0]
        for name, flag in (("All", None), ("Things", True), ("Stuff", False))
    }
    return stat, results


def assert_same_as_oracles(paths, ours):
    stat, ref = panopticapi_counts(*paths)
    for name in ("All", "Things", "Stuff"):
        for key in ("pq", "sq", "rq", "n"):
            assert ours[name][key] == pytest.approx(ref[name][key], abs=1e-12), (name, key)
    for cid, row in ours["per_class"].items():
        s = stat.pq_per_cat[cid]
        assert (row["tp"], row["fp"], row["fn"]) == (s.tp, s.fp, s.fn), cid
        assert row["iou_sum"] == pytest.approx(s.iou, abs=1e-12)
    from hotcoco.panoptic import PanopticEval

    ev = PanopticEval(
        str(paths[0]), str(paths[2]), gt_folder=str(paths[1]), pred_folder=str(paths[3])
    )
    ev.run() if hasattr(ev, "run") else None
    hot = ev.results()
    for name in ("All", "Things", "Stuff"):
        assert ours[name]["pq"] == pytest.approx(hot[name]["pq"], abs=1e-9)


def test_pil_written_gt_and_forked_workers_give_the_oracles_numbers(tmp_path):
    """COCO's own GT PNGs are written by PIL (Paeth rows: the OpenCV decoding route, turned into
    runs), predictions by OpenCV (the fast route); ``pdl pq`` runs them in forked processes."""
    rng = np.random.default_rng(11)
    maps = [random_pair(rng) for _ in range(5)]
    paths = write_coco(tmp_path, *zip(*maps), gt_writer=write_pil_png)
    from panoptic_deeplab.datasets.png_ids import decode_segment_runs

    routes = [decode_segment_runs(p.read_bytes()) is None for p in sorted(paths[1].glob("*.png"))]
    assert any(routes), "no GT PNG took the OpenCV route"
    ours = pq_from_files(paths[0], paths[2], paths[1], paths[3], workers=2, processes=True)
    assert_same_as_oracles(paths, ours)
    forked = pq_from_files(
        paths[0], paths[2], paths[1], paths[3], workers=3, processes=True, per_image=True
    )
    serial = pq_from_files(paths[0], paths[2], paths[1], paths[3], workers=1, per_image=True)
    assert json.dumps(forked, sort_keys=True, default=str) == json.dumps(
        serial, sort_keys=True, default=str
    )


def test_a_workers_error_is_raised_here_with_its_file(tmp_path):
    """A broken PNG read in a worker process: its UserError, naming the file, reaches the
    caller (the pool's workers are gone afterwards)."""
    import multiprocessing

    from panoptic_deeplab.errors import UserError

    rng = np.random.default_rng(3)
    paths = write_coco(tmp_path, *zip(*[random_pair(rng) for _ in range(4)]))
    broken = sorted(paths[3].glob("*.png"))[2]
    broken.write_bytes(b"not a png")
    with pytest.raises(UserError, match=f"{broken.name}: cannot decode"):
        pq_from_files(paths[0], paths[2], paths[1], paths[3], workers=2, processes=True)
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("seed", range(4))
def test_random_sets_match_panopticapi_and_hotcoco(tmp_path, seed):
    rng = np.random.default_rng(seed)
    maps = [random_pair(rng) for _ in range(6)]
    paths = write_coco(tmp_path, *zip(*maps))
    ours = pq_from_files(paths[0], paths[2], paths[1], paths[3], workers=1 + seed % 2)
    assert_same_as_oracles(paths, ours)
    # The in-memory route gives the same numbers.
    mem = pq_from_label_maps([g for g, _ in maps], [p for _, p in maps], SPEC)
    for name in ("All", "Things", "Stuff"):
        assert mem[name]["pq"] == pytest.approx(ours[name]["pq"], abs=1e-12)


def five_rule_set():
    """Five 64x64 images, one rule each (road 0 stuff, car 2 / person 3 things, void 255)."""
    road, car, person, void = 0, 2 * DIV, 3 * DIV, VOID * DIV
    imgs = []
    # a) GT void strip painted as road by the prediction; a car and a person predicted exactly.
    g = np.full((64, 64), road)
    g[:8] = void
    g[40:56, 8:24] = car + 1
    g[40:56, 40:56] = person + 1
    p = g.copy()
    p[:8] = road
    imgs.append((g, p))
    # b) car IoU exactly 0.5 (pred = top half of the GT box) -> FN + FP, not a match.
    g = np.full((64, 64), road)
    g[20:36, 20:36] = car + 1
    p = np.full((64, 64), road)
    p[20:28, 20:36] = car + 1
    imgs.append((g, p))
    # c) crowd: car-crowd 32x32; pred car inside it is ignored; pred person 80 % on it is a FP.
    g = np.full((64, 64), road)
    g[:32, :32] = car  # instance 0 = crowd
    p = np.full((64, 64), road)
    p[:16, :16] = car + 1
    p[28:38, 24:34] = person + 1  # rows 28-31 in crowd: 4x8=32... see counts in the test
    imgs.append((g, p))
    # d) GT void top half; pred car 100 % void (ignored), car 40 % void (FP), person 50 % void (FP).
    g = np.full((64, 64), road)
    g[:32] = void
    p = np.zeros((64, 64), np.int64) - 1  # predicted void
    p[32:] = road
    p[5:15, 5:15] = car + 1
    p[28:38, 20:30] = car + 2  # rows 28-31 void = 40 %
    p[27:37, 40:50] = person + 1  # rows 27-31 void = 50 %
    imgs.append((g, p))
    # e) predicted void over a GT person -> FN only.
    g = np.full((64, 64), road)
    g[10:26, 10:26] = person + 1
    p = g.copy()
    p[10:26, 10:26] = -1
    imgs.append((g, p))
    return imgs


def test_five_rule_set_by_hand(tmp_path):
    imgs = five_rule_set()
    # c) person box rows 28-37, cols 24-33: in the crowd rows 28-31, cols 24-31 = 32 px of 100
    #    -> not absorbed anyway since the crowd is a car crowd.  Road: GT 3072,
    #    pred 4096-256-100 = 3740,
    #    intersection = 3072 - (person pixels on GT road: 100 - 32 = 68) = 3004.
    road_ious = [1.0, 3840 / 3968, 3004 / (3740 + 3072 - 3004), 1938 / 2048, 1.0]
    expected_stuff = sum(road_ious) / 5
    # car: TP 1 (a), FN 1 + FP 1 (b), FP 1 (d 40 %) -> PQ 1/(1+1+0.5) = 0.4; person: TP 1 (a),
    # FP 1 (c), FP 1 (d exactly 50 %), FN 1 (e) -> 1/(1+1+0.5) = 0.4.
    paths = write_coco(tmp_path, *zip(*imgs))
    ours = pq_from_files(*paths[::2], *paths[1::2])
    pc = ours["per_class"]
    assert (pc[0]["tp"], pc[0]["fp"], pc[0]["fn"]) == (5, 0, 0)
    assert (pc[2]["tp"], pc[2]["fp"], pc[2]["fn"]) == (1, 2, 1)
    assert (pc[3]["tp"], pc[3]["fp"], pc[3]["fn"]) == (1, 2, 1)
    assert ours["Things"]["pq"] == pytest.approx(0.4, abs=1e-12)
    assert ours["Stuff"]["pq"] == pytest.approx(expected_stuff, abs=1e-12)
    assert ours["All"]["pq"] == pytest.approx((0.8 + expected_stuff) / 3, abs=1e-12)
    assert ours["Stuff"]["n"] == 1 and ours["Things"]["n"] == 2  # sky never appears: not averaged
    assert_same_as_oracles(paths, ours)


def test_per_segment_details_explain_errors():
    imgs = five_rule_set()
    res = pq_from_label_maps([g for g, _ in imgs], [p for _, p in imgs], SPEC, per_image=True)
    b = res["per_image"][1]
    car_gt = [s for s in b["gt_segments"] if s["category_id"] == 2][0]
    assert car_gt["status"] == "missed" and car_gt["best_pred_iou"] == pytest.approx(0.5)
    c = res["per_image"][2]
    assert [s["status"] for s in c["gt_segments"] if s["category_id"] == 2] == ["crowd"]
    statuses = {s["category_id"]: s["status"] for s in c["pred_segments"]}
    assert statuses == {0: "matched", 2: "ignored", 3: "false_positive"}
    e = res["per_image"][4]
    person = [s for s in e["gt_segments"] if s["category_id"] == 3][0]
    assert (person["status"], person["reason"]) == ("missed", "not_predicted")


def test_wrong_class_and_split_hints():
    g = np.zeros((20, 20), np.int64)
    g[2:10, 2:10] = 2 * DIV + 1
    g[12:20, 2:18] = 2 * DIV + 2
    p = np.zeros((20, 20), np.int64)
    p[2:10, 2:10] = 3 * DIV + 1  # right shape, wrong class
    p[12:20, 2:12] = 2 * DIV + 5  # 10/16 of the second car: match
    p[12:20, 12:18] = 2 * DIV + 6  # the rest: split
    d = pq_from_label_maps([g], [p], SPEC, per_image=True)["per_image"][0]
    gts = {s["id"]: s for s in d["gt_segments"]}
    assert (gts[2001]["status"], gts[2001]["reason"]) == ("missed", "wrong_class")
    preds = {s["id"]: s for s in d["pred_segments"]}
    assert preds[3001]["reason"] == "wrong_class" and preds[2006]["reason"] == "split"
    assert preds[2005]["status"] == "matched"


def test_validation_errors_name_the_file(tmp_path):
    rng = np.random.default_rng(0)
    paths = write_coco(tmp_path, *zip(*[random_pair(rng) for _ in range(2)]))
    pred = json.loads(paths[2].read_text())
    pred["annotations"][0]["segments_info"].pop(0)
    paths[2].write_text(json.dumps(pred))
    with pytest.raises(DatasetError, match=r"img000\.png.*not in its segments_info"):
        pq_from_files(paths[0], paths[2], paths[1], paths[3])
    pred["annotations"].pop(1)
    paths[2].write_text(json.dumps(pred))
    with pytest.raises(DatasetError, match=r"pred\.json: no prediction for image_id 1"):
        pq_from_files(paths[0], paths[2], paths[1], paths[3])


def test_pdl_pq_cli_writes_results_and_never_imports_tensorflow(tmp_path):
    rng = np.random.default_rng(5)
    paths = write_coco(tmp_path, *zip(*[random_pair(rng) for _ in range(3)]))
    out = tmp_path / "r.json"
    code = (
        "import sys; from panoptic_deeplab.cli import main; rc = main(sys.argv[1:]); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; sys.exit(rc)"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "pq",
            "--gt-json",
            str(paths[0]),
            "--gt-folder",
            str(paths[1]),
            "--pred-json",
            str(paths[2]),
            "--pred-folder",
            str(paths[3]),
            "--out",
            str(out),
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    ref = pq_from_files(paths[0], paths[2], paths[1], paths[3])
    assert (
        res["All"]["pq"] == pytest.approx(ref["All"]["pq"]) and res["All"]["n"] == ref["All"]["n"]
    )
    assert set(res["per_class"]) == {"0", "1", "2", "3"}
    assert {"pq", "sq", "rq", "tp", "fp", "fn"} <= set(res["per_class"]["2"])
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "panoptic_deeplab",
            "pq",
            "--gt-json",
            str(tmp_path / "nope.json"),
            "--pred-json",
            str(paths[2]),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_report_tables_show_every_class():
    from panoptic_deeplab.evaluation.report import pq_class_table, pq_summary_table

    imgs = five_rule_set()
    from panoptic_deeplab.evaluation.results import PanopticScores

    res = PanopticScores.from_json(
        pq_from_label_maps([g for g, _ in imgs], [p for _, p in imgs], SPEC)
    )
    table = pq_class_table(res)
    assert (
        list(table.index) == [0, 1, 2, 3]
        and table.loc[2, "PQ"] == 40.0
        and table.loc[1, "PQ"] != table.loc[1, "PQ"]
    )  # NaN: not evaluated
    assert pq_summary_table(res).loc["Things", "n"] == 2


@pytest.mark.parametrize("seed", range(5))
def test_overlaps_from_runs_equal_overlaps_from_pixels(seed):
    """Run-based counting (``pdl pq``'s route) gives the per-pixel intersection table exactly."""
    from panoptic_deeplab.datasets.png_ids import SegmentRuns
    from panoptic_deeplab.evaluation.panoptic_quality import SegmentTable, match_image

    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 40, size=2)
    gt_map = rng.choice([0, 5, 7, 9, 300], size=(h, w)).astype(np.uint32)
    gt_map[: h // 2] = 7  # long runs, also across row ends
    pred_map = rng.choice([0, 1, 2, 3], size=(h, w)).astype(np.uint32)
    gt = SegmentTable(
        np.array([5, 7, 300]),
        np.array([2, 2, 3]),
        np.array([False, False, True]),
        np.array([(gt_map == i).sum() for i in (5, 7, 300)]),
    )
    pred = SegmentTable(np.array([1, 2, 3]), np.array([2, 3, 2]), np.zeros(3, bool))
    index = {c["id"]: i for i, c in enumerate(CATEGORIES)}
    present = set(np.unique(pred_map).tolist()) - {0}
    pred = SegmentTable(
        pred.ids[np.isin(pred.ids, list(present))],
        pred.category_ids[np.isin(pred.ids, list(present))],
        np.zeros(len(present), bool),
    )
    dense = match_image(gt_map, gt, pred_map, pred, index)
    runs = match_image(
        SegmentRuns.from_map(gt_map), gt, SegmentRuns.from_map(pred_map), pred, index
    )
    assert np.array_equal(dense.intersections, runs.intersections)
    for key in ("tp", "fp", "fn", "iou", "gt_match", "pred_match"):
        assert np.array_equal(getattr(dense, key), getattr(runs, key)), key
    with pytest.raises(
        ValueError, match=r"\[9\]"
    ):  # an unlisted predicted id: same error both ways
        match_image(
            SegmentRuns.from_map(gt_map),
            gt,
            SegmentRuns.from_map(np.where(pred_map == 1, 9, pred_map).astype(np.uint32)),
            pred,
            index,
        )


@pytest.mark.parametrize("route", ["hash", "second multiplier", "sort", "table"])
def test_dense_index_routes_agree_with_a_dict(route, monkeypatch):
    """Every route of dense_index (hash table, its fallbacks, the 2**24 lookup table) maps 0 to 0,
    a listed id to 1 + its position and anything else (unlisted, negative, >= 2**24) past the
    end."""
    from panoptic_deeplab.evaluation import panoptic_quality as pq

    rng = np.random.default_rng(3)
    ids = rng.choice(np.arange(1, 1 << 24), size=40, replace=False)
    ids[:3] = [1, 2, (1 << 24) - 1]
    if route == "second multiplier":  # multiplier 1 sends every small id to slot 0: all collide
        monkeypatch.setattr(pq, "_MULTIPLIERS", (1, *pq._MULTIPLIERS))
    if route == "sort":
        monkeypatch.setattr(pq, "_MULTIPLIERS", (1,))
    n = 300_000 if route == "table" else 5_000
    # Unlisted ids that share a hash slot with a listed one must still come out unlisted.
    keys = np.concatenate([[0], ids]).astype(np.uint64)
    shift = np.uint64(64 - max(8, (64 * len(keys) - 1).bit_length()))
    multiplier = np.uint64([m for m in pq._MULTIPLIERS if m != 1][0] if route != "sort" else 1)
    slot = lambda v: (np.asarray(v, np.uint64) * multiplier) >> shift  # noqa: E731
    candidates = np.arange(1, 200_000)
    twins = candidates[np.isin(slot(candidates), slot(keys)) & ~np.isin(candidates, ids)][:5]
    assert len(twins) == 5
    values = rng.choice(np.concatenate([ids, [0, 3, 77], twins]), size=n)
    if route == "table":  # the table route: uint32 ids as decoded from PNGs (< 2**24)
        values = values.astype(np.uint32)
    else:
        values[:4] = [-1, -(1 << 40), 1 << 40, (1 << 24) + 5]
    expected = {0: 0} | {int(v): i + 1 for i, v in enumerate(ids)}
    want = np.array([expected.get(int(v), len(ids) + 1) for v in values])
    assert (pq._hashed_index(values, ids) is None) == (route == "sort")
    assert np.array_equal(pq.dense_index(values.reshape(-1, 100), ids).reshape(-1), want)


def test_dense_index_of_wide_and_unusual_id_types():
    """uint64 ids past 2**53 and 2**63 stay exact (no float round trip); float ids take the sort
    route."""
    from panoptic_deeplab.evaluation.panoptic_quality import dense_index

    ids = np.array([2**60 + 1, 5, 2**63 + 7], np.uint64)
    flat = np.array([2**60 + 1, 2**60, 5, 0, 7, 2**63 + 7], np.uint64)
    assert dense_index(flat, ids).tolist() == [1, 4, 2, 0, 4, 3]
    assert dense_index(np.array([5, 0, 6]), np.array([6.0, 5.0])).tolist() == [2, 0, 1]
