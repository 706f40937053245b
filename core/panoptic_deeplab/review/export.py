"""Annotation review, export: write the corrected COCO-panoptic data set and the review report.

What a decision does to the exported segment is listed in :mod:`panoptic_deeplab.review.store`; the
source data set is only ever read.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets.coco_panoptic import id_to_rgb
from .errors import ReviewError

# Actions whose segment leaves the corrected set (its pixels become VOID).
_DROPPED = ("reject", "ignore")
EXPORT_MARKER = ".pdl_review_export"


@dataclass
class ExportResult:
    root: Path
    report_path: Path
    images_changed: int
    segments_dropped: int
    segments_relabelled: int


def export_corrected(
    store, out_dir: str | os.PathLike, model_key: str | None = None, overwrite: bool = False
) -> ExportResult:
    """Write the corrected data set of ``store`` (a :class:`~panoptic_deeplab.review.store.ReviewStore`) to ``out_dir`` (same layout, every split; only this split's
    annotations change) plus ``out_dir/review_report.csv``. The source is never written to.

    Refuses ``out_dir`` inside the source (or the source itself), and an existing non-empty
    folder unless ``overwrite`` and it is an earlier export. Written to a temporary folder first,
    so a failure leaves nothing half-done.
    """
    out = Path(out_dir).expanduser().resolve()
    if out == store.root or store.root in out.parents or out in store.root.parents:
        raise ReviewError(
            f"{out}: the export must go to a new folder outside the source data set {store.root} "
            "(the original files are never modified)"
        )
    if out.exists() and any(out.iterdir()):
        if not (overwrite and (out / EXPORT_MARKER).is_file()):
            raise ReviewError(
                f"{out}: folder exists and is not empty; choose a new folder"
                + (
                    " (it is not an earlier review export, so it is never overwritten)"
                    if overwrite
                    else ""
                )
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        result = _export_into(store, tmp, model_key)
        (tmp / EXPORT_MARKER).write_text(
            json.dumps({"source": str(store.root), "split": store.split}) + "\n"
        )
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.root = out
    result.report_path = out / "review_report.csv"
    return result


def _export_into(store, out: Path, model_key: str | None) -> ExportResult:
    # Other splits (and this split's images) are copied unchanged, so the export is a complete set.
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for json_path in sorted((store.root / "annotations").glob("panoptic_*.json")):
        split = json_path.stem[len("panoptic_") :]
        if (store.root / split).is_dir():
            shutil.copytree(store.root / split, out / split)
        if split != store.split:
            shutil.copy2(json_path, out / "annotations" / json_path.name)
            if json_path.with_suffix("").is_dir():
                shutil.copytree(json_path.with_suffix(""), out / "annotations" / json_path.stem)
    png_dir = out / "annotations" / f"panoptic_{store.split}"
    png_dir.mkdir(parents=True, exist_ok=True)
    decisions: dict[str, dict] = {}  # image id -> {segment id: Decision}
    for d in store.decisions():
        decisions.setdefault(d.image_id, {})[d.segment_id] = d
    changed = dropped = relabelled = 0
    annotations = []
    for ann in store.coco["annotations"]:
        image_id = str(ann["image_id"])
        mine = {
            k: v for k, v in decisions.get(image_id, {}).items() if v.action not in (None, "accept")
        }
        if not mine:
            shutil.copy2(store.png_path(image_id), png_dir / ann["file_name"])
            annotations.append(ann)
            continue
        new_ann, counts = _corrected(store, ann, mine)
        changed += 1
        dropped += counts[0]
        relabelled += counts[1]
        import cv2

        cv2.imwrite(str(png_dir / ann["file_name"]), id_to_rgb(new_ann.pop("_ids"))[..., ::-1])
        annotations.append(new_ann)
    coco = dict(store.coco)
    coco["annotations"] = annotations
    (out / "annotations" / store.json_path.name).write_text(json.dumps(coco))
    store.report(model_key).to_csv(out / "review_report.csv", index=False)
    return ExportResult(
        root=out,
        report_path=out / "review_report.csv",
        images_changed=changed,
        segments_dropped=dropped,
        segments_relabelled=relabelled,
    )


def _corrected(store, ann: dict, decisions: dict) -> tuple[dict, tuple[int, int]]:
    """``ann`` with ``decisions`` ({segment id: Decision}) applied, its new id map under ``_ids``;
    and how many segments were dropped and relabelled."""
    ids = store.gt_ids(ann["image_id"])
    segments = [dict(s) for s in ann["segments_info"]]
    dropped = relabelled = 0
    keep = []
    for seg in segments:
        d = decisions.get(int(seg["id"]))
        if d is None:
            keep.append(seg)
        elif d.action in _DROPPED:
            ids[ids == seg["id"]] = 0
            dropped += 1
        elif d.action == "crowd":
            seg["iscrowd"] = 1
            keep.append(seg)
        elif d.action == "relabel":
            seg["category_id"] = d.category_id
            if not store.is_thing(d.category_id):
                seg["iscrowd"] = 0
            relabelled += 1
            keep.append(seg)
        else:
            keep.append(seg)
    # A stuff class has one segment per image: merge segments now sharing a stuff category.
    merged: list[dict] = []
    first_of: dict[int, dict] = {}
    for seg in keep:
        cat = int(seg["category_id"])
        if not store.is_thing(cat) and cat in first_of:
            ids[ids == seg["id"]] = first_of[cat]["id"]
            continue
        if not store.is_thing(cat):
            first_of[cat] = seg
        merged.append(seg)
    for seg in merged:  # exact areas and boxes, as the evaluators read the area from the JSON
        ys, xs = np.nonzero(ids == seg["id"])
        seg["area"] = int(len(ys))
        seg["bbox"] = (
            [
                int(xs.min()),
                int(ys.min()),
                int(xs.max() - xs.min() + 1),
                int(ys.max() - ys.min() + 1),
            ]
            if len(ys)
            else [0, 0, 0, 0]
        )
    new_ann = dict(ann)
    new_ann["segments_info"] = [s for s in merged if s["area"] > 0]
    new_ann["_ids"] = ids
    return new_ann, (dropped, relabelled)
