"""Instance AP: COCO style against hotcoco's COCOeval, Cityscapes style against cityscapesscripts'
own ``evaluateMatches`` fed with the same matches."""

import copy

import numpy as np
import pytest

from panoptic_deeplab.evaluation.instance_ap import cityscapes_instance_ap, coco_instance_ap
from tests.core.evaluation.synth import DIV, THINGS, VOID, random_pair

KW = dict(thing_class_ids=THINGS, label_divisor=DIV, ignore_label=VOID)


def random_set(seed, n=5):
    rng = np.random.default_rng(seed)
    gts, preds, scores = [], [], []
    for _ in range(n):
        g, p = random_pair(rng, 40, 56)
        if rng.random() < 0.5:  # a small GT instance (< 100 px) for the Cityscapes rule
            g[30:36, 40:46] = 2 * DIV + 90
            p[30:35, 40:46] = 2 * DIV + 91
        gts.append(g)
        preds.append(p)
        ids = [int(i) for i in np.unique(p) if i // DIV in THINGS]
        # coarse scores so that ties happen
        scores.append({i: float(rng.integers(1, 6)) / 5 for i in ids})
    return gts, preds, scores


def test_perfect_and_hand_cases():
    g = np.zeros((30, 30), np.int64)
    g[0:12, 0:12] = 2 * DIV + 1
    g[15:27, 15:27] = 3 * DIV + 1
    p = g.copy()
    s = {2001: 0.9, 3001: 0.8}
    assert coco_instance_ap([g], [p], [s], **KW)["ap"] == pytest.approx(1.0)
    assert cityscapes_instance_ap([g], [p], [s], **KW)["ap"] == pytest.approx(1.0)
    # A higher-scored false positive in front of the only person: PR points (r=1, p=.5), (0, 0) and
    # the artificial (0, 1). cityscapesscripts' step widths are (r[i-1] - r[i+1]) / 2 = .5, .5, 0,
    # so AP50 = .5 * .5 + 0 * .5 = 0.25.
    p2 = p.copy()
    p2[0:12, 20:30] = 3 * DIV + 2
    r = cityscapes_instance_ap([g], [p2], [s | {3002: 0.95}], **KW)
    assert r["per_class"][3]["ap50"] == pytest.approx(0.25)
    assert r["per_class"][2]["ap50"] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(3))
def test_coco_ap_matches_hotcoco(seed):
    from hotcoco import COCO as HCOCO
    from hotcoco import COCOeval as HEval
    from pycocotools import mask as mask_utils

    gts, preds, scores = random_set(seed)
    ours = coco_instance_ap(gts, preds, scores, **KW)
    # Build the same GT / detections for hotcoco independently (polygons are not needed: RLE).
    images, anns, dets = [], [], []
    for k, (g, p, s) in enumerate(zip(gts, preds, scores)):
        images.append(
            {"id": k + 1, "height": g.shape[0], "width": g.shape[1], "file_name": f"{k}.png"}
        )
        for seg in np.unique(g):
            if seg // DIV in THINGS:
                rle = mask_utils.encode(np.asfortranarray((g == seg).astype(np.uint8)))
                rle["counts"] = rle["counts"].decode()
                anns.append(
                    {
                        "id": len(anns) + 1,
                        "image_id": k + 1,
                        "category_id": int(seg // DIV),
                        "segmentation": rle,
                        "area": float(mask_utils.area(rle)),
                        "bbox": mask_utils.toBbox(rle).tolist(),
                        "iscrowd": int(seg % DIV == 0),
                    }
                )
        for seg in np.unique(p):
            if seg // DIV in THINGS:
                rle = mask_utils.encode(np.asfortranarray((p == seg).astype(np.uint8)))
                rle["counts"] = rle["counts"].decode()
                dets.append(
                    {
                        "image_id": k + 1,
                        "category_id": int(seg // DIV),
                        "segmentation": rle,
                        "score": s[int(seg)],
                    }
                )
    gt = HCOCO(
        {
            "images": images,
            "annotations": anns,
            "categories": [{"id": c, "name": str(c)} for c in THINGS],
        }
    )
    ev = HEval(gt, gt.load_res(dets), "segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    np.testing.assert_allclose(ours["stats"], ev.stats, atol=1e-9)


def _official_matches(gts, preds, scores, min_size=100):
    """The `matches` structure of cityscapesscripts built straight from the maps."""
    matches = {}
    for k, (g, p, s) in enumerate(zip(gts, preds, scores)):
        gt_inst, pred_inst = {}, {}
        for c in THINGS:
            name = str(c)
            gt_list = [
                {
                    "instID": int(i % DIV) + (1000 if i % DIV else 0),
                    "labelID": c,
                    "pixelCount": int((g == i).sum()),
                    "medDist": -1,
                    "distConf": 0.0,
                    "matchedPred": [],
                    "_id": int(i),
                }
                for i in np.unique(g)
                if i // DIV == c
            ]
            pred_list = []
            for i in np.unique(p):
                if i // DIV != c:
                    continue
                mask = p == i
                pred = {
                    "pixelCount": int(mask.sum()),
                    "confidence": s[int(i)],
                    "voidIntersection": int((mask & (g // DIV == VOID)).sum()),
                    "labelID": c,
                }
                matched = []
                for gi in gt_list:
                    inter = int((mask & (g == gi["_id"])).sum())
                    if inter:
                        gcopy, pcopy = dict(gi), dict(pred)
                        gcopy["intersection"] = pcopy["intersection"] = inter
                        matched.append(gcopy)
                        gi["matchedPred"].append(pcopy)
                pred["matchedGt"] = matched
                pred_list.append(pred)
            gt_inst[name], pred_inst[name] = gt_list, pred_list
        matches[k] = {"groundTruth": gt_inst, "prediction": pred_inst}
    return matches


@pytest.mark.parametrize("seed", range(4))
def test_cityscapes_ap_matches_official_evaluate_matches(seed):
    import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as cs

    gts, preds, scores = random_set(seed)
    ours = cityscapes_instance_ap(gts, preds, scores, **KW)
    args = copy.copy(cs.args)
    args.instLabels = [str(c) for c in THINGS]
    args.distanceAvailable = False
    ref = cs.evaluateMatches(_official_matches(gts, preds, scores), args)[0]
    np.testing.assert_allclose(ours["ap_table"], ref, atol=1e-12, equal_nan=True)
    avg = cs.computeAverages(ref[None], args)
    assert ours["ap"] == pytest.approx(avg["allAp"]) and ours["ap50"] == pytest.approx(
        avg["allAp50%"]
    )
