"""PQ from COCO-panoptic files (JSON + PNGs), as panopticapi's ``pq_compute``, and from in-memory
``class * label_divisor + instance`` label maps. No TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..datasets.json_file import load_json
from ..datasets.png_ids import read_segment_ids as read_panoptic_png
from ..datasets.png_ids import read_segment_runs
from ..errors import DatasetError
from .panoptic_quality import ImageMatch, PQStat, SegmentTable, match_image, segment_details


def process_map(fn, items: list, workers: int) -> list:
    """``[fn(x) for x in items]`` in ``workers`` forked processes, one chunk each, in order; a
    worker's exception is raised here. The standard library's pool: a hand-written one (no
    pickled inputs, the parent computing a share) was 1.3x faster on `pdl pq`'s 50 images, short
    of the 2x that would pay for a second code path (docs/performance.md)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(1, -(-len(items) // workers))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(fn, items, chunksize=chunk))


def write_panoptic_png(path: str | os.PathLike, ids: np.ndarray) -> None:
    path = Path(path)
    try:
        path.write_bytes(encode_panoptic_png(ids))
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: cannot write this PNG ({err})") from None


def encode_panoptic_png(ids: np.ndarray) -> bytes:
    """PNG bytes of a segment-id map, RGB-encoded (id = R + 256 G + 256^2 B)."""
    import cv2

    ids = np.asarray(ids, np.int64)
    bgr = np.stack([(ids >> 16) & 255, (ids >> 8) & 255, ids & 255], axis=-1).astype(np.uint8)
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def _annotations(data, path, what: str) -> list[dict]:
    """The annotations of a COCO-panoptic JSON, each checked to carry what PQ reads."""
    anns = data.get("annotations") if isinstance(data, dict) else None
    if not isinstance(anns, list):
        raise DatasetError(f"{path}: a {what} JSON needs an 'annotations' list")
    for k, ann in enumerate(anns):
        segments = ann.get("segments_info") if isinstance(ann, dict) else None
        if not (
            isinstance(segments, list)
            and "image_id" in ann
            and isinstance(ann.get("file_name"), str)
            and all(isinstance(s, dict) and "id" in s and "category_id" in s for s in segments)
        ):
            raise DatasetError(
                f"{path}: annotation #{k} ({str(ann)[:80]}) needs 'image_id', 'file_name' and a "
                "'segments_info' list of entries with 'id' and 'category_id'; fix or regenerate "
                "the file"
            )
        ids = [seg["id"] for seg in segments]
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise DatasetError(
                f"{path}: image_id {ann['image_id']!r}: segment id(s) {twice} appear more than "
                "once in "
                "segments_info; give each segment of an image its own id"
            )
    return anns


def _image_pairs(
    gt_json: dict, pred_json: dict, gt_json_path, pred_json_path
) -> list[tuple[dict, dict]]:
    if (
        not isinstance(gt_json, dict)
        or not isinstance(gt_json.get("categories"), list)
        or not all(isinstance(c, dict) and "id" in c for c in gt_json["categories"])
    ):
        raise DatasetError(
            f"{gt_json_path}: a COCO-panoptic GT JSON needs a 'categories' list of entries "
            "with an 'id'"
        )
    gt_annotations = _annotations(gt_json, gt_json_path, "GT")
    preds = {}
    for ann in _annotations(pred_json, pred_json_path, "prediction"):
        if ann["image_id"] in preds:
            raise DatasetError(
                f"{pred_json_path}: image_id {ann['image_id']!r} has more than one annotation"
            )
        preds[ann["image_id"]] = ann
    cats = {c["id"] for c in gt_json["categories"]}
    pairs = []
    for gt_ann in gt_annotations:
        for seg in gt_ann["segments_info"]:
            if seg["category_id"] not in cats:
                raise DatasetError(
                    f"{gt_json_path}: image_id {gt_ann['image_id']!r}, segment {seg['id']}: "
                    "category_id "
                    f"{seg['category_id']} is not in its 'categories'; add it or fix the segment "
                    "(`pdl check-dataset` lists every problem of a data set)"
                )
        pred_ann = preds.get(gt_ann["image_id"])
        if pred_ann is None:
            raise DatasetError(
                f"{pred_json_path}: no prediction for image_id {gt_ann['image_id']!r} "
                f"(every GT image needs one)"
            )
        for seg in pred_ann["segments_info"]:
            if seg["category_id"] not in cats:
                raise DatasetError(
                    f"{pred_json_path}: image_id {gt_ann['image_id']!r}, segment {seg['id']}: "
                    f"category_id {seg['category_id']} is not among the GT categories"
                )
        pairs.append((gt_ann, pred_ann))
    return pairs


def _evaluate_pair(args) -> tuple:
    gt_ann, pred_ann, gt_folder, pred_folder, categories, details = args
    gt_path = os.path.join(
        gt_folder, gt_ann["file_name"]
    )  # (os.path: pathlib costs `pdl pq` 5 ms to import)
    pred_path = os.path.join(pred_folder, pred_ann["file_name"])
    gt_map, pred_map = (
        read_segment_runs(gt_path),
        read_segment_runs(pred_path),
    )  # runs: fast to match
    if gt_map.shape != pred_map.shape:
        raise DatasetError(
            f"{pred_path}: size {pred_map.shape[::-1]} differs from the GT PNG {gt_path} "
            f"{gt_map.shape[::-1]}"
        )
    gt = SegmentTable.from_segments_info(gt_ann["segments_info"], with_area=True)
    pred = SegmentTable.from_segments_info(pred_ann["segments_info"], with_area=False)
    try:
        m = match_image(
            gt_map, gt, pred_map, pred, {int(c["id"]): i for i, c in enumerate(categories)}
        )
    except ValueError as err:
        raise DatasetError(f"{pred_path}: {err}") from None
    extra = segment_details(m, gt, pred) if details else None
    return gt_ann["image_id"], m.tp, m.fp, m.fn, m.iou, extra


def pq_from_files(
    gt_json: str | os.PathLike,
    pred_json: str | os.PathLike,
    gt_folder: str | os.PathLike | None = None,
    pred_folder: str | os.PathLike | None = None,
    workers: int = 1,
    per_image: bool = False,
    processes: bool = False,
) -> dict:
    """panopticapi-compatible PQ. Folders default to the JSON path without ``.json``.

    ``workers`` images at a time (0: one per core), in threads, or with ``processes`` in this and
    forked processes (faster; for a command-line run, not from inside a multi-threaded server).

    Returns ``{"All", "Things", "Stuff": {pq, sq, rq, n}, "per_class": {category_id: {...}}}`` and,
    with ``per_image``, ``"per_image": {image_id: {pq..., "gt_segments": [...],
    "pred_segments": [...]}}``.
    """
    gt_folder = os.fspath(gt_folder) if gt_folder else os.path.splitext(gt_json)[0]
    pred_folder = os.fspath(pred_folder) if pred_folder else os.path.splitext(pred_json)[0]
    for folder, what in ((gt_folder, "GT"), (pred_folder, "prediction")):
        if not os.path.isdir(folder):
            raise DatasetError(f"{what} PNG folder not found: {folder}")
    gt_data, pred_data = load_json(gt_json, "GT"), load_json(pred_json, "prediction")
    pairs = _image_pairs(gt_data, pred_data, gt_json, pred_json)
    categories = gt_data["categories"]
    jobs = [(g, p, str(gt_folder), str(pred_folder), categories, per_image) for g, p in pairs]
    if workers <= 0:  # auto: one per core
        workers = os.cpu_count() or 1
    workers = max(1, min(int(workers), len(jobs) or 1))
    if workers > 1 and processes and hasattr(os, "fork"):
        results = process_map(_evaluate_pair, jobs, workers)
    elif workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(_evaluate_pair, jobs))
    else:
        results = [_evaluate_pair(j) for j in jobs]
    return _summarise(results, categories, per_image)


def _summarise(results, categories, per_image: bool) -> dict:
    stat = PQStat(categories)
    images = {}
    for image_id, tp, fp, fn, iou, extra in results:
        stat.tp += tp
        stat.fp += fp
        stat.fn += fn
        stat.iou += iou
        if per_image:
            one = PQStat(categories, tp.copy(), fp.copy(), fn.copy(), iou.copy())
            images[image_id] = (
                one.average(None)
                | {"tp": int(tp.sum()), "fp": int(fp.sum()), "fn": int(fn.sum())}
                | (extra or {})
            )
    out = stat.summary()
    if per_image:
        out["per_image"] = images
    return out


def label_map_segments(
    label_map: np.ndarray, label_divisor: int, ignore_label: int, thing_class_ids, is_gt: bool
) -> tuple[np.ndarray, SegmentTable]:
    """Segments of a ``class * divisor + instance`` map: each distinct id is a segment; the ignore
    class and negative ids are VOID; in GT a thing id with instance 0 is crowd (COCO semantics)."""
    label_map = np.asarray(label_map, np.int64)
    semantic = label_map // label_divisor
    void = (label_map < 0) | (semantic == ignore_label)
    # Shift by 1 so that id 0 stays free for VOID.
    ids_map = np.where(void, 0, label_map + 1)
    ids, counts = np.unique(ids_map[ids_map > 0], return_counts=True)
    classes = (ids - 1) // label_divisor
    crowd = (
        np.isin(classes, list(thing_class_ids)) & ((ids - 1) % label_divisor == 0)
        if is_gt
        else np.zeros(len(ids), bool)
    )
    return ids_map, SegmentTable(ids, classes, crowd, counts if is_gt else None)


def spec_categories(spec) -> list[dict]:
    """GT categories of a DatasetSpec: category id = train id."""
    return [
        {"id": i, "name": n, "isthing": int(i in spec.thing_class_ids)}
        for i, n in enumerate(spec.class_names)
    ]


def pq_from_label_maps(gt_maps, pred_maps, spec, per_image: bool = False) -> dict:
    """PQ of in-memory label maps (same semantics as the files route; category id = train id)."""
    categories = spec_categories(spec)
    index = {c["id"]: i for i, c in enumerate(categories)}
    results = []
    for k, (g, p) in enumerate(zip(gt_maps, pred_maps, strict=True)):
        if np.shape(g) != np.shape(p):
            raise ValueError(f"image {k}: GT shape {np.shape(g)} != prediction shape {np.shape(p)}")
        gmap, gt = label_map_segments(
            g, spec.label_divisor, spec.ignore_label, spec.thing_class_ids, True
        )
        pmap, pred = label_map_segments(
            p, spec.label_divisor, spec.ignore_label, spec.thing_class_ids, False
        )
        unknown = set(pred.category_ids.tolist()) - set(index)
        if unknown:
            raise ValueError(
                f"image {k}: predicted classes {sorted(unknown)} are not in the spec '{spec.name}'"
            )
        m = match_image(gmap, gt, pmap, pred, index)
        extra = segment_details(m, _minus_one(gt), _minus_one(pred)) if per_image else None
        results.append((k, m.tp, m.fp, m.fn, m.iou, extra))
    return _summarise(results, categories, per_image)


def _minus_one(t: SegmentTable) -> SegmentTable:
    """Report label-map segments under their panoptic ids (undo the +1 shift)."""
    return SegmentTable(t.ids - 1, t.category_ids, t.iscrowd, t.areas)


__all__ = [
    "pq_from_files",
    "pq_from_label_maps",
    "read_panoptic_png",
    "write_panoptic_png",
    "label_map_segments",
    "spec_categories",
    "ImageMatch",
]
