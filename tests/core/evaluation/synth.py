"""Small panoptic data made by the tests: label maps and their COCO-panoptic files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from panoptic_deeplab.evaluation.coco_io import write_panoptic_png

DIV, VOID = 1000, 255
STUFF, THINGS = (0, 1), (2, 3)
CATEGORIES = [
    {"id": 0, "name": "road", "isthing": 0},
    {"id": 1, "name": "sky", "isthing": 0},
    {"id": 2, "name": "car", "isthing": 1},
    {"id": 3, "name": "person", "isthing": 1},
]


def random_pair(rng, h=48, w=64, crowd=True):
    """A GT map (stuff bands, thing boxes, maybe a crowd box and void strip), a noisy prediction."""
    gt = np.where(np.arange(h)[:, None] < h // 3, 1, 0) * DIV + np.zeros((h, w), np.int64)
    pred = gt.copy()
    for inst in range(1, rng.integers(2, 8)):
        cls = int(rng.choice(THINGS))
        bh, bw = rng.integers(4, 16, 2)
        y, x = rng.integers(0, h - bh), rng.integers(0, w - bw)
        gt[y : y + bh, x : x + bw] = cls * DIV + inst
        r = rng.random()
        if r < 0.6:  # shifted prediction of the same object
            dy, dx = rng.integers(-3, 4, 2)
            pcls = cls if rng.random() < 0.85 else 5 - cls
            pred[max(y + dy, 0) : y + dy + bh, max(x + dx, 0) : x + dx + bw] = pcls * DIV + inst
        elif r < 0.75:  # split in two
            pred[y : y + bh // 2, x : x + bw] = cls * DIV + inst
            pred[y + bh // 2 : y + bh, x : x + bw] = cls * DIV + inst + 50
    if crowd and rng.random() < 0.7:
        cls = int(rng.choice(THINGS))
        y, x = rng.integers(0, h - 10), rng.integers(0, w - 10)
        gt[y : y + 10, x : x + 10] = cls * DIV  # instance 0 -> crowd
        if rng.random() < 0.5:
            pred[y + 2 : y + 8, x + 2 : x + 8] = int(rng.choice(THINGS)) * DIV + 77
    if rng.random() < 0.5:
        gt[:, : rng.integers(1, 6)] = VOID * DIV
    if rng.random() < 0.3:  # a false positive blob and some predicted void
        pred[h - 6 : h, w - 6 : w] = 3 * DIV + 99
        pred[h - 10 : h - 6, :8] = VOID * DIV
    return gt, pred


def to_segments(label_map, is_gt):
    """COCO segment ids (class*DIV + inst + 1; VOID -> 0) and segments_info."""
    ids = np.where(label_map // DIV == VOID, 0, label_map + 1)
    infos = []
    for seg_id, area in zip(*np.unique(ids[ids > 0], return_counts=True)):
        cls, inst = divmod(int(seg_id) - 1, DIV)
        info = {"id": int(seg_id), "category_id": cls}
        if is_gt:
            info |= {
                "iscrowd": int(cls in THINGS and inst == 0),
                "area": int(area),
                "bbox": [0, 0, 1, 1],
            }
        infos.append(info)
    return ids, infos


def write_pil_png(path: Path, ids) -> None:
    """A COCO-panoptic PNG as PIL writes it (panopticapi, COCO's own files): Up and Paeth rows."""
    from PIL import Image

    ids = np.asarray(ids, np.int64)
    Image.fromarray(
        np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], -1).astype(np.uint8)
    ).save(path)


def write_coco(root: Path, gt_maps, pred_maps, categories=CATEGORIES, gt_writer=None):
    """Write gt.json + gt/ and pred.json + pred/; returns the four paths. GT PNGs by OpenCV
    (``write_panoptic_png``) unless ``gt_writer`` is given."""
    root = Path(root)
    for sub in ("gt", "pred"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    gt_anns, pred_anns, images = [], [], []
    for k, (g, p) in enumerate(zip(gt_maps, pred_maps)):
        name = f"img{k:03d}.png"
        images.append(
            {
                "id": k,
                "file_name": name.replace(".png", ".jpg"),
                "height": g.shape[0],
                "width": g.shape[1],
            }
        )
        gid, ginfo = to_segments(g, True)
        pid, pinfo = to_segments(p, False)
        (gt_writer or write_panoptic_png)(root / "gt" / name, gid)
        write_panoptic_png(root / "pred" / name, pid)
        gt_anns.append({"image_id": k, "file_name": name, "segments_info": ginfo})
        pred_anns.append({"image_id": k, "file_name": name, "segments_info": pinfo})
    (root / "gt.json").write_text(
        json.dumps({"images": images, "annotations": gt_anns, "categories": categories})
    )
    (root / "pred.json").write_text(
        json.dumps({"images": images, "annotations": pred_anns, "categories": categories})
    )
    return root / "gt.json", root / "gt", root / "pred.json", root / "pred"
