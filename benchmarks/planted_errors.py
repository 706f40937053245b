"""Plant known annotation errors in a COCO-panoptic split, and measure how many a review ranking
finds near its top (recall at k).

One error per image, the kinds in turn over the images (``KINDS``), each on a thing segment of at
least ``MIN_AREA`` pixels:

  relabel  the segment gets another thing class (car <-> bus, person -> car)
  delete   the segment is removed: its pixels become VOID (a missing annotation)
  merge    a second thing of the same class is drawn into the segment (two objects, one id)
  shift    the mask moves sideways by a third of its width; the pixels it leaves go to the
           segment around it (the most common id on its border), those it covers are taken from
           stuff only (other things keep theirs)

Used by ``benchmarks/bench_review.py`` and ``tests/core/review/test_review_planted.py``. The split
is changed in place: call it on a generated copy, never on a real data set.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

KINDS = ("relabel", "delete", "merge", "shift")
MIN_AREA = 400


def _read_ids(path: Path) -> np.ndarray:
    rgb = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def _write_ids(path: Path, ids: np.ndarray) -> None:
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    cv2.imwrite(str(path), rgb[..., ::-1])


def _box(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [
        int(xs.min()),
        int(ys.min()),
        int(xs.max() - xs.min() + 1),
        int(ys.max() - ys.min() + 1),
    ]


def _refresh(ids: np.ndarray, segments: list[dict]) -> list[dict]:
    """Area and bbox from the pixels; segments left with no pixel are dropped."""
    kept = []
    for seg in segments:
        mask = ids == seg["id"]
        if mask.any():
            seg["area"], seg["bbox"] = int(mask.sum()), _box(mask)
            kept.append(seg)
    return kept


def _border_owner(ids: np.ndarray, mask: np.ndarray) -> int:
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~mask
    values, counts = np.unique(ids[ring], return_counts=True)
    counts[values == 0] = 0
    return int(values[np.argmax(counts)])


def plant_errors(root: str | Path, split: str = "val", kinds=KINDS) -> list[dict]:
    """Plant one error per image (``kinds`` in turn) in ``root``'s ``split``; returns what was
    planted: {"kind", "image_id", "segment_id" (the GT id that carries the error; for "delete"
    the removed one), "bbox" (of the error's pixels), "category_id" (the true class)}."""
    root = Path(root)
    json_path = root / "annotations" / f"panoptic_{split}.json"
    coco = json.loads(json_path.read_text())
    things = {c["id"] for c in coco["categories"] if c.get("isthing")}
    names = {c["name"]: c["id"] for c in coco["categories"]}
    other = {
        names.get("car"): names.get("bus"),
        names.get("bus"): names.get("car"),
        names.get("person"): names.get("car"),
    }
    planted = []
    turn = 0
    for ann in coco["annotations"]:
        kind = kinds[turn % len(kinds)]
        png = root / "annotations" / f"panoptic_{split}" / ann["file_name"]
        ids = _read_ids(png)
        segs = ann["segments_info"]
        big = sorted(
            (s for s in segs if s["category_id"] in things and s["area"] >= MIN_AREA),
            key=lambda s: -s["area"],
        )
        record = None
        if kind == "relabel" and big:
            seg = big[0]
            true_class = seg["category_id"]
            seg["category_id"] = other.get(true_class) or next(t for t in things if t != true_class)
            record = (seg["id"], ids == seg["id"], true_class)
        elif kind == "delete" and big:
            seg = big[0]
            mask = ids == seg["id"]
            ids[mask] = 0
            segs.remove(seg)
            record = (seg["id"], mask, seg["category_id"])
        elif kind == "merge":
            pairs = [
                (a, b)
                for i, a in enumerate(big)
                for b in big[i + 1 :]
                if a["category_id"] == b["category_id"]
            ]
            if pairs:
                a, b = pairs[0]
                ids[ids == b["id"]] = a["id"]
                segs.remove(b)
                record = (a["id"], ids == a["id"], a["category_id"])
        elif kind == "shift" and big:
            seg = big[0]
            mask = ids == seg["id"]
            dx = max(4, _box(mask)[2] // 3)
            moved = np.zeros_like(mask)
            moved[:, dx:] = mask[:, :-dx]
            is_stuff = ~np.isin(ids, [s["id"] for s in segs if s["category_id"] in things])
            ids[mask & ~moved] = _border_owner(ids, mask)
            ids[moved & (is_stuff | mask)] = seg["id"]
            record = (seg["id"], ids == seg["id"], seg["category_id"])
        if record is None:
            continue  # no thing fit for this kind here: the next image gets it
        turn += 1
        segment_id, mask, true_class = record
        ann["segments_info"] = _refresh(ids, segs)
        _write_ids(png, ids)
        planted.append(
            {
                "kind": kind,
                "image_id": str(ann["image_id"]),
                "segment_id": int(segment_id),
                "bbox": _box(mask),
                "category_id": int(true_class),
            }
        )
    json_path.write_text(json.dumps(coco))
    return planted


def _iou(a: list[int], b: list[int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    return inter / float(aw * ah + bw * bh - inter)


def found(error: dict, item: dict) -> bool:
    """Whether a ranking entry (as ``pdl review score --out`` writes it) points at ``error``: the
    GT segment that carries it, or, for a deleted one, a possible missing object over it."""
    if str(item["image_id"]) != error["image_id"]:
        return False
    if error["kind"] == "delete":
        return item["kind"] == "missing" and _iou(item["bbox"], error["bbox"]) >= 0.3
    return item["kind"] == "gt_segment" and item["segment_id"] == error["segment_id"]


def recall_at(planted: list[dict], ranking: list[dict], k: int = 10) -> float:
    """The share of ``planted`` errors found among the first ``k`` ranking entries."""
    top = ranking[:k]
    hits = sum(any(found(e, item) for item in top) for e in planted)
    return hits / len(planted) if planted else float("nan")
