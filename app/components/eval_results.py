"""Evaluation results for the Evaluate page: where `pdl evaluate` writes them, how a run is
launched as a job, and tables/pictures made from its results (no metric is computed here: the
result already holds PQ per class and image, mIoU with the confusion matrix, AP and per-segment
matches)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from panoptic_deeplab.evaluation.report import percent, pq_class_table
from panoptic_deeplab.evaluation.results import EvaluationResult, ImageResult

# Segment status -> highlight colour (RGB): true positives green, misses red, false positives
# orange.
STATUS_COLORS = {
    "matched": (0, 200, 83),
    "missed": (229, 57, 53),
    "false_positive": (255, 145, 0),
    "crowd": (158, 158, 158),
    "ignored": (158, 158, 158),
}
STATUS_LABELS = {
    "matched": "TP",
    "missed": "FN",
    "false_positive": "FP",
    "crowd": "crowd",
    "ignored": "ignored (void/crowd)",
}
SHORT_REASONS = {
    "wrong_class": "wrong class",
    "merged": "merged",
    "split": "split",
    "not_predicted": "not predicted",
    "low_iou": "low IoU",
    "background": "false (background)",
    "stuff_area_limit": "stuff dropped (area limit)",
}
REASONS = {
    "wrong_class": "wrong class",
    "merged": "merged with another segment",
    "split": "split off a matched segment",
    "not_predicted": "not predicted (void or missing)",
    "stuff_area_limit": "stuff dropped by the area limit (predicted, then voided as too small)",
    "low_iou": "overlap too small (IoU ≤ 0.5)",
    "background": "on background / another class",
}


def model_stamp(model: Path) -> str:
    weights = Path(model) / "model.weights.h5"
    return str(int(weights.stat().st_mtime)) if weights.is_file() else "0"


def result_path(
    results_dir: Path,
    model: Path,
    data: Path,
    split: str,
    limit: int,
    oracles: str = "",
    label: str | None = None,
    stamp: str | None = None,
) -> Path:
    """One cached results file per (model and its weights' time, data set, split, image limit,
    oracles asked for), named after the model's display ``label`` (a job's name and id) so two
    fine-tunes' files differ. A prediction set passes its folder as ``model`` and its
    :func:`prediction_stamp` as ``stamp``."""
    parts = [
        str(Path(model).resolve()),
        model_stamp(model) if stamp is None else stamp,
        str(Path(data).resolve()),
        split,
        int(limit),
    ]
    key = json.dumps(
        parts + [oracles] if oracles else parts
    )  # (results without oracles keep their names)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    existing = sorted(
        Path(results_dir).glob(f"*__{digest}.json")
    )  # the same result under another label
    if existing:
        return existing[0]
    name = re.sub(r"[^\w.-]+", "-", label or Path(model).name).strip("-.") or "model"
    return Path(results_dir) / f"{name}__{Path(data).name}__{split}__{digest}.json"


def evaluate_argv(
    model: Path, data: Path, split: str, limit: int, out: Path, oracles: str = ""
) -> list[str]:
    argv = [
        "evaluate",
        "--model",
        str(model),
        "--dataset",
        str(data),
        "--split",
        split,
        "--out",
        str(out),
    ]
    if limit > 0:
        argv += ["--limit", str(int(limit))]
    if oracles:
        argv += ["--oracle", oracles]
    return argv


def prediction_stamp(json_path: Path | None, folder: Path) -> str:
    """When a prediction set last changed (its JSON and its folder's listing)."""
    times = [p.stat().st_mtime for p in (json_path, folder) if p is not None and p.exists()]
    return str(int(max(times, default=0)))


def predictions_argv(
    json_path: Path | None, folder: Path, name: str, data: Path, split: str, limit: int, out: Path
) -> list[str]:
    """`pdl evaluate` of a prediction set (COCO panoptic: its JSON and PNG folder)."""
    argv = ["evaluate", "--pred-folder", str(folder), "--name", name]
    if json_path is not None:
        argv += ["--predictions", str(json_path)]
    argv += ["--dataset", str(data), "--split", split, "--out", str(out)]
    return argv + (["--limit", str(int(limit))] if limit > 0 else [])


PREDICTION_SETS_FILE = "prediction_sets.json"  # in the workdir: the sets the user added


def known_prediction_sets(workdir: Path) -> dict[str, dict]:
    """The prediction sets added on the Evaluate page, by name: ``{"json", "folder"}`` (newest
    first); an unreadable list is empty (the sets can be added again)."""
    try:
        data = json.loads((Path(workdir) / PREDICTION_SETS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, dict) and v.get("folder")}


def remember_prediction_set(
    workdir: Path,
    name: str,
    json_path: Path | None,
    folder: Path,
    *,
    format: str = "coco_panoptic",
    class_table: str | None = None,
) -> None:
    """Keep a prediction set under ``name`` (first in the list; an old entry of the same
    files under another name is renamed). deeplab2's raw PNGs also keep their format and class
    table (COCO-panoptic entries stay ``{"json", "folder"}``)."""
    from panoptic_deeplab.safe_files import write_json_atomic

    entry = {"json": str(json_path) if json_path else None, "folder": str(folder)}
    if format != "coco_panoptic":
        entry |= {"format": format, "class_table": class_table}
    sets = {k: v for k, v in known_prediction_sets(workdir).items() if k != name and v != entry}
    Path(workdir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(workdir) / PREDICTION_SETS_FILE, {name: entry, **sets})


def source_label(result: EvaluationResult, model_label) -> str:
    """How a result's source is called in lists: a prediction set by its name, a model by
    ``model_label(path)``."""
    if result.predictions is not None:
        return result.predictions.name
    return model_label(result.model or "?")


_PROGRESS = re.compile(r"(\d+)/(\d+) \[")


def parse_progress(log_tail: str) -> tuple[int, int] | None:
    """(done, total) from the last progress line `pdl evaluate` printed (tqdm), if any."""
    found = _PROGRESS.findall(log_tail)
    if not found:
        return None
    done, total = found[-1]
    return int(done), int(total)


# The phases `pdl evaluate` announces ("phase: ..." on stderr), in the order they come.
EVALUATE_PHASES = (
    "starting",
    "checking the data set",
    "loading TensorFlow and the model",
    "predicting",
    "reading the predictions",
    "computing AP and the error breakdown",
    "writing the results",
)
_IMAGE_PHASES = ("predicting", "reading the predictions")
_PHASE = re.compile(r"^phase: (.+?)\s*$", re.M)


def job_progress(log_tail: str, earlier: str | None = None) -> tuple[str, float, str]:
    """``(phase, fraction, text)`` of a running `pdl evaluate` from its log tail: the latest
    phase it announced, never one before ``earlier`` (the phase shown last: a log tail that no
    longer holds the phase line must not send the bar back), with the image count while images
    are read."""
    found = [p for p in _PHASE.findall(log_tail) if p in EVALUATE_PHASES]
    phase = found[-1] if found else "starting"
    if earlier in EVALUATE_PHASES and EVALUATE_PHASES.index(earlier) > EVALUATE_PHASES.index(phase):
        phase = earlier
    rank = EVALUATE_PHASES.index(phase)
    text = phase[0].upper() + phase[1:]
    fraction = 0.0 if rank < EVALUATE_PHASES.index("predicting") else 1.0
    if phase in _IMAGE_PHASES:
        done, total = parse_progress(log_tail) or (0, 0)
        fraction = done / total if total else 0.0
        text += f": {done}/{total} images" if total else ""
    return phase, fraction, text + "…"


def list_results(results_dir: Path) -> list[Path]:
    if not Path(results_dir).is_dir():
        return []
    return sorted(Path(results_dir).glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)


def describe(result: EvaluationResult, path: Path, model_name: str | None = None) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    name = model_name or Path(result.source or "?").name
    return (
        f"{name} on {Path(result.dataset or '?').name}/{result.split or '?'} "
        f"({result.num_images} images, {when})"
    )


def default_pair(results: dict[str, EvaluationResult], chosen: str, base_of) -> tuple[str, str]:
    """(A, B) for comparing: B the chosen result, A the result of the model B's model was fine-tuned
    from (``base_of(model path)``) on the same data set and split, newest first; without a known
    base, another result on the same data set and split (else any other)."""
    b = results[chosen]
    same = [
        k
        for k, r in results.items()
        if k != chosen and (r.dataset, r.split) == (b.dataset, b.split)
    ]
    models = {k: r.model for k, r in results.items() if r.model}  # prediction sets have no base
    base = base_of(b.model) if b.model else None
    if base:  # the chosen result is a fine-tune: its base is A
        resolved = str(Path(base).expanduser().resolve())
        for k in same:
            if k in models and str(Path(models[k]).expanduser().resolve()) == resolved:
                return k, chosen
    mine = str(Path(b.model).expanduser().resolve()) if b.model else None
    for k in same:  # the chosen result is the base of another: that one is the new side
        base = base_of(models[k]) if k in models and mine else None
        if base and str(Path(base).expanduser().resolve()) == mine:
            return chosen, k
    others = same or [k for k in results if k != chosen]
    return (others[0] if others else chosen), chosen


def summary(result: EvaluationResult) -> dict:
    pan = result.panoptic
    out = {
        "PQ": percent(pan.all.pq),
        "SQ": percent(pan.all.sq),
        "RQ": percent(pan.all.rq),
        "PQ things": percent(pan.things.pq),
        "PQ stuff": percent(pan.stuff.pq),
        "mIoU": percent(result.semantic.miou),
    }
    for style, r in result.instance.items():
        short = AP_LABELS[style]  # short: eight metrics share a row, a long label is cut
        out[f"AP{short}"] = percent(r.ap)
        out[f"AP50{short}"] = percent(r.ap50)
    return out


AP_LABELS = {"coco": "", "cityscapes": " (CS)"}
METRIC_HELP = {
    "AP": "Instance AP of things, COCO style (IoU 0.50:0.95)",
    "AP50": "Instance AP of things at IoU 0.5, COCO style",
    "AP (CS)": "Instance AP of things, Cityscapes style (IoU 0.50:0.95)",
    "AP50 (CS)": "Instance AP of things at IoU 0.5, Cityscapes style",
}
NOT_APPLICABLE = "–"  # shown for a number that does not exist (AP of a stuff class), never "None"


def shown(value: float | None) -> str:
    """A percentage as a table shows it: one decimal, or a dash when there is none."""
    return NOT_APPLICABLE if value is None or value != value else f"{value:.1f}"


def class_table(result: EvaluationResult) -> pd.DataFrame:
    """Per class: kind, PQ/SQ/RQ, TP/FP/FN (from the library's report table), IoU and AP."""
    table = pq_class_table(result.panoptic).reset_index()
    table["id"] = table["id"].astype(int)
    ious = result.semantic.per_class_iou
    table["IoU"] = [percent(ious[i]) if i < len(ious) else None for i in table["id"]]
    coco = result.instance.get("coco")
    ap = coco.per_class if coco else {}
    table["AP"] = [shown(percent(ap[c].ap)) if c in ap else NOT_APPLICABLE for c in table["id"]]
    return table.rename(columns={"name": "class"})


def worst_images(result: EvaluationResult, class_id: int) -> pd.DataFrame:
    """Images holding the class, worst first: most errors (FN + FP) of that class, then lowest
    IoU."""
    rows = []
    for index, image in enumerate(result.per_image):
        gts = [s for s in image.gt_segments if s.category_id == class_id and s.status != "crowd"]
        preds = [s for s in image.pred_segments if s.category_id == class_id]
        if not gts and not preds:
            continue
        tp = [s for s in gts if s.status == "matched"]
        fn = [s for s in gts if s.status == "missed"]
        fp = [s for s in preds if s.status == "false_positive"]
        reasons = pd.Series([s.reason for s in fn + fp if s.reason]).value_counts()
        rows.append(
            {
                "index": index,
                "image": image.file_name,
                "errors": len(fn) + len(fp),
                "TP": len(tp),
                "FN": len(fn),
                "FP": len(fp),
                "mean IoU (TP)": round(float(np.mean([s.iou for s in tp])), 3) if tp else None,
                "image PQ": percent(image.pq),
                "error types": ", ".join(
                    f"{SHORT_REASONS.get(k, k)} ×{v}" for k, v in reasons.items()
                ),
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "index",
            "image",
            "errors",
            "TP",
            "FN",
            "FP",
            "mean IoU (TP)",
            "image PQ",
            "error types",
        ],
    )
    if frame.empty:
        return frame
    frame["_iou"] = frame["mean IoU (TP)"].fillna(-1.0)
    return (
        frame.sort_values(["errors", "_iou"], ascending=[False, True])
        .drop(columns="_iou")
        .reset_index(drop=True)
    )


def shown_id(value: int | None) -> str:
    return NOT_APPLICABLE if value is None else str(value)


def segment_rows(image: ImageResult, class_names, class_id: int | None = None) -> pd.DataFrame:
    """Every GT and predicted segment of an image with its status and error type (class filter
    optional)."""

    def name(cid):
        return class_names[cid] if 0 <= cid < len(class_names) else str(cid)

    rows = []
    for side, segments, other in (
        ("ground truth", image.gt_segments, "best_pred"),
        ("prediction", image.pred_segments, "best_gt"),
    ):
        for s in segments:
            if class_id is not None and s.category_id != class_id:
                continue
            rows.append(
                {
                    "side": side,
                    "segment": s.id,
                    "class": name(s.category_id),
                    "area": s.area,
                    "result": STATUS_LABELS.get(s.status, s.status),
                    "error type": REASONS.get(s.reason, s.reason or ""),
                    "IoU": round(s.iou or 0.0, 3),
                    "best overlap": shown_id(getattr(s, other)),
                }
            )
    return pd.DataFrame(rows)


def status_picture(
    image_rgb: np.ndarray,
    label_map: np.ndarray,
    segments: list,
    class_id: int | None,
    alpha: float = 0.55,
) -> tuple[np.ndarray, dict]:
    """The image with each segment tinted by its status (segments of other classes left faint) and
    ``{segment id: record}`` for hover text."""
    from panoptic_deeplab import visualize

    tint = np.zeros_like(image_rgb)
    weight = np.zeros(label_map.shape, np.float32)
    by_id = {}
    for s in segments:
        mask = label_map == s.id
        by_id[s.id] = s
        tint[mask] = STATUS_COLORS.get(s.status, (158, 158, 158))
        weight[mask] = alpha if class_id is None or s.category_id == class_id else 0.12
    out = (
        image_rgb.astype(np.float32) * (1 - weight[..., None])
        + tint.astype(np.float32) * weight[..., None]
    )
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    out[visualize.segment_boundaries(label_map)] = (255, 255, 255)
    return out, by_id


def compare(result_a: EvaluationResult, result_b: EvaluationResult) -> pd.DataFrame:
    """Per-class PQ / SQ / RQ / IoU of two results side by side with B − A deltas (in points)."""
    a, b = class_table(result_a).set_index("id"), class_table(result_b).set_index("id")
    out = pd.DataFrame({"class": a["class"], "kind": a["kind"]})
    for metric in ("PQ", "SQ", "RQ", "IoU"):
        out[f"{metric} A"] = a[metric]
        out[f"{metric} B"] = b[metric].reindex(a.index)
        out[f"Δ {metric}"] = (
            out[f"{metric} B"].astype(float) - out[f"{metric} A"].astype(float)
        ).round(2)
    return out.reset_index()
