"""Annotation review, export: a complete, corrected COCO-panoptic data set and the review report.

The export holds every split of the source (images copied, other splits unchanged) with this split's
annotations corrected: edited PNGs, segments rejected or ignored made VOID, removed segments gone,
new segments with their fresh ids, classes and crowd flags as decided, stuff segments of one class
merged, and ``area`` / ``bbox`` recomputed from the pixels of every changed image. Beside it:
``review_report.csv`` and ``review_report.json`` (:mod:`.report`) and the marker
:data:`EXPORT_MARKER`.

Safety: written to ``.NAME.tmp-PID`` beside the target and renamed into place when complete (a
replaced earlier export is removed only then); one export per target at a time (a ``RunLock``
named after it); a full disk gives one clear message and removes the temporary; what a killed
export left is removed by the next one (:func:`clean_leftover_exports`), and never listed as a
data set (:func:`finished_exports`). Folders follow the user's umask.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..datasets.coco_panoptic import id_to_rgb
from ..safe_files import (
    RunLock,
    disk_full_as_user_error,
    remove_leftovers,
    remove_quietly,
    temp_path,
    write_atomic,
)
from .errors import ReviewError
from .masks import areas_and_boxes
from .report import change_rows, report_csv, report_json

EXPORT_MARKER = ".pdl_review_export"
REPORT_CSV, REPORT_JSON = "review_report.csv", "review_report.json"
# What the first version of the export left when killed: ``.NAME.`` and 8 random characters.
_OLD_TEMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}$")


@dataclass
class ExportResult:
    root: Path
    report_path: Path
    report_json: Path | None = None
    images_changed: int = 0
    segments_dropped: int = 0  # rejected or ignored: VOID
    segments_relabelled: int = 0
    segments_added: int = 0
    segments_removed: int = 0  # edited down to nothing, merged away
    stuff_merged: int = 0
    changes: int = 0
    leftovers: list[str] = field(default_factory=list)


def finished_exports(folder: str | os.PathLike) -> list[Path]:
    """The complete review exports in ``folder``: never a half-written one (those are hidden
    ``.NAME.tmp-PID`` folders without the marker, which is written last)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.is_dir() and (p / EXPORT_MARKER).is_file()
    )


def leftover_exports(folder: str | os.PathLike) -> list[Path]:
    """Hidden folders that interrupted exports of the first version left (``.NAME.xxxxxxxx``, no
    marker); they are named, not removed, as their writer cannot be told."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_dir() and _OLD_TEMP.match(p.name) and not (p / EXPORT_MARKER).is_file()
    )


def clean_leftover_exports(
    folder: str | os.PathLike, say: Callable[[str], None] | None = None
) -> list[str]:
    """Remove what killed exports left in ``folder`` (``.NAME.tmp-PID`` of dead processes) and name
    older leftovers; returns the messages (also passed to ``say``, stderr by default)."""
    say = say or (lambda text: print(text, file=sys.stderr))
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        say(text)

    remove_leftovers(folder, note)
    for path in leftover_exports(folder):
        note(
            f"{path}: an incomplete review export left by an interrupted run (it is not offered "
            "as a data set); delete it to free its space"
        )
    return notes


def export_corrected(
    store, out_dir: str | os.PathLike, model_key=None, overwrite: bool = False
) -> ExportResult:
    """Write the corrected data set of ``store`` (a ReviewStore) to ``out_dir``.

    Refuses ``out_dir`` inside the source (or the source itself), and an existing non-empty folder
    unless ``overwrite`` and it is an earlier export (replaced only once the new one is complete).
    """
    out = Path(out_dir).expanduser().resolve()
    if out == store.root or store.root in out.parents or out in store.root.parents:
        raise ReviewError(
            f"{out}: the export must go to a new folder outside the source data set {store.root} "
            "(the original files are never modified)"
        )
    parent = out.parent
    tmp = temp_path(out)
    old = temp_path(out.with_name(out.name + ".old"))
    with (
        disk_full_as_user_error(parent, f"the review export {out.name}", cleanup=[tmp]),
        _locked(parent, out.name),
    ):
        leftovers = clean_leftover_exports(parent)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            if not (overwrite and (out / EXPORT_MARKER).is_file()):
                raise ReviewError(
                    f"{out}: folder exists and is not empty; choose a new folder"
                    + (
                        " (it is not an earlier review export, so it is never overwritten)"
                        if overwrite
                        else ""
                    )
                )
        remove_quietly(tmp)  # this process's own, from an export that failed before
        try:
            tmp.mkdir()
            result = _export_into(store, tmp)
            write_atomic(
                tmp / EXPORT_MARKER,
                json.dumps({"source": str(store.root), "split": store.split}) + "\n",
            )
            if out.exists():
                os.replace(out, old)
            os.replace(tmp, out)
        except BaseException:
            remove_quietly(tmp)
            if old.exists() and not out.exists():
                os.replace(old, out)  # put the earlier export back
            raise
        remove_quietly(old)
    result.root = out
    result.report_path = out / REPORT_CSV
    result.report_json = out / REPORT_JSON
    result.leftovers = leftovers
    return result


@contextlib.contextmanager
def _locked(parent: Path, name: str):
    """One export to ``parent/name`` at a time (the lock file ``.NAME.lock`` stays, empty of
    meaning once its holder is gone)."""
    parent.mkdir(parents=True, exist_ok=True)
    with RunLock(parent, f"the review export to {name}", name=f".{name}.lock"):
        yield


def _copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, copy_function=shutil.copy2)


def _export_into(store, out: Path) -> ExportResult:
    import cv2

    # Other splits and this split's images are copied unchanged, so the export is a complete set.
    (out / "annotations").mkdir()
    for json_path in sorted((store.root / "annotations").glob("panoptic_*.json")):
        split = json_path.stem[len("panoptic_") :]
        if (store.root / split).is_dir():
            _copy_tree(store.root / split, out / split)
        if split != store.split:
            shutil.copy2(json_path, out / "annotations" / json_path.name)
            if json_path.with_suffix("").is_dir():
                _copy_tree(json_path.with_suffix(""), out / "annotations" / json_path.stem)
    png_dir = out / "annotations" / f"panoptic_{store.split}"
    png_dir.mkdir()
    touched = set(store.touched_images())
    result = ExportResult(root=out, report_path=out / REPORT_CSV)
    annotations = []
    for ann in store.coco["annotations"]:
        image_id = str(ann["image_id"])
        if image_id not in touched:
            shutil.copy2(store.png_path(image_id), png_dir / ann["file_name"])
            annotations.append(ann)
            continue
        new_ann, ids = corrected_annotation(store, ann, result)
        if not cv2.imwrite(str(png_dir / ann["file_name"]), id_to_rgb(ids)[..., ::-1]):
            raise ReviewError(f"{png_dir / ann['file_name']}: could not write the PNG")
        annotations.append(new_ann)
        result.images_changed += 1
    coco = dict(store.coco)
    coco["annotations"] = annotations
    (out / "annotations" / store.json_path.name).write_text(json.dumps(coco))
    rows = change_rows(store)
    result.changes = len(rows)
    (out / REPORT_CSV).write_text(report_csv(rows))
    (out / REPORT_JSON).write_text(report_json(rows))
    return result


def corrected_annotation(store, ann: dict, result: ExportResult) -> tuple[dict, np.ndarray]:
    """``ann`` with the review applied, and its new id map (int64)."""
    state = store.image_state(ann["image_id"])
    ids = np.array(state.ids, np.int64)
    originals = {int(s["id"]): s for s in ann["segments_info"]}
    keep: list[dict] = []
    for sid, seg in state.segments.items():  # originals first, in file order, then new segments
        original = originals.get(sid)
        if seg.removed:
            if original is not None:
                result.segments_removed += 1
            continue
        if seg.excluded:
            ids[ids == sid] = 0
            result.segments_dropped += 1
            continue
        entry = dict(original) if original is not None else {"id": sid}
        if original is None:
            result.segments_added += 1
        elif int(original["category_id"]) != seg.category_id:
            result.segments_relabelled += 1
        entry["category_id"] = seg.category_id
        entry["iscrowd"] = int(seg.iscrowd) if store.is_thing(seg.category_id) else 0
        keep.append(entry)
    # A stuff class has one segment per image: merge segments now sharing a stuff category.
    merged: list[dict] = []
    first_of: dict[int, dict] = {}
    for entry in keep:
        cat = int(entry["category_id"])
        if not store.is_thing(cat) and cat in first_of:
            ids[ids == entry["id"]] = first_of[cat]["id"]
            result.stuff_merged += 1
            continue
        if not store.is_thing(cat):
            first_of[cat] = entry
        merged.append(entry)
    kept_ids = {int(e["id"]) for e in merged}
    stray = ~np.isin(ids, list(kept_ids | {0}))
    ids[stray] = 0  # pixels of no exported segment (none expected): VOID, as the format needs
    geometry = areas_and_boxes(ids, kept_ids)
    out_segments = []
    for entry in merged:
        area, bbox = geometry[int(entry["id"])]
        if area == 0:
            continue
        entry["area"], entry["bbox"] = area, bbox
        out_segments.append(entry)
    new_ann = dict(ann)
    new_ann["segments_info"] = out_segments
    return new_ann, ids
