"""The Evaluate page's "Why" tab: which head costs each class its PQ (oracle ablations) and where
the PQ points go (error breakdown), with a drill-down from a class and an error type to the images
where it happens most. Every number comes from the results JSON of `pdl evaluate` (the CLI prints
the same tables: evaluation/report.py); docs/error-analysis.md defines them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from panoptic_deeplab.evaluation.error_breakdown import ERROR_TYPES, LABELS, REMAINDER
from panoptic_deeplab.evaluation.report import oracle_class_table, single_head_oracles
from panoptic_deeplab.evaluation.results import EvaluationResult, ImageResult

ORACLES = "semantic,center,offset,all"  # what the page asks `pdl evaluate --oracle` for
HEAD_WORDS = {"semantic": "the semantic head", "center": "the centers", "offset": "the offsets"}
TYPE_COLORS = {
    "missed": "#e53935",
    "spurious": "#fb8c00",
    "wrong_class": "#8e24aa",
    "merge": "#3949ab",
    "split": "#00acc1",
    "low_iou": "#fdd835",
    "stuff_area_limit": "#6d4c41",
    REMAINDER: "#bdbdbd",
}
PQ_COLOR = "#43a047"
HIGHLIGHT = (255, 23, 68)


def has_oracles(result: EvaluationResult) -> bool:
    return bool(result.oracles)


def oracle_table(result: EvaluationResult) -> pd.DataFrame:
    """Per class: model PQ, PQ with each oracle, and the largest single-head gain (as the CLI
    prints)."""
    return oracle_class_table(result).reset_index()


def gain_sentences(table: pd.DataFrame, result: EvaluationResult, limit: int = 5) -> list[str]:
    """ "The centers cost bus 23.0 PQ points." for the classes with the largest single-head
    gains."""
    singles = set(single_head_oracles(result.oracles))
    rows = []
    for _, row in table.iterrows():
        best = str(row["largest gain"]).split(" ")[0] if row["largest gain"] else None
        if best in singles and row["gain"] and row["gain"] > 0:
            heads = result.oracles[best].heads
            rows.append(
                (
                    row["gain"],
                    f"{HEAD_WORDS.get(heads[0], best).capitalize()} cost **{row['class']}** "
                    f"{row['gain']:.1f} PQ points (PQ {row['model']:.1f} → {row[best]:.1f} with "
                    f"the {best} oracle).",
                )
            )
    return [text for _, text in sorted(rows, key=lambda r: -r[0])[:limit]]


def breakdown_frame(result: EvaluationResult, values: str = "points") -> pd.DataFrame:
    """One row per evaluated class: its PQ and, per error type and for the IoU shortfall, the points
    lost (``values="points"``) or the PQ with that type fixed (``"pq_if_fixed"``)."""
    rows = []
    for cid, r in sorted(result.errors.per_class.items()):
        rows.append(
            {
                "id": cid,
                "class": r.name,
                "kind": "thing" if r.isthing else "stuff",
                "PQ": round(r.pq, 2),
                **{t: round(getattr(r, values)[t], 2) for t in (*ERROR_TYPES, REMAINDER)},
            }
        )
    return pd.DataFrame(rows, columns=["id", "class", "kind", "PQ", *ERROR_TYPES, REMAINDER])


def breakdown_figure(frame: pd.DataFrame, height: int = 380) -> go.Figure:
    """Stacked bars per class (to 100): PQ, then the points lost to each error type. A bar segment
    carries its error type in customdata, so a click names (class, type)."""
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=frame["class"],
            y=frame["PQ"],
            name="PQ",
            marker_color=PQ_COLOR,
            customdata=[["PQ"]] * len(frame),
            hovertemplate="%{x}: PQ %{y:.1f}<extra></extra>",
        )
    )
    for key in (*ERROR_TYPES, REMAINDER):
        if not frame[key].any():
            continue
        fig.add_trace(
            go.Bar(
                x=frame["class"],
                y=frame[key],
                name=LABELS[key],
                marker_color=TYPE_COLORS[key],
                customdata=[[key]] * len(frame),
                hovertemplate="%{x}: %{y:.1f} PQ points lost to " + LABELS[key] + "<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="stack",
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        title="Where the PQ of each class goes (stacks to 100; click a segment)",
        yaxis=dict(title="PQ points", range=[0, 100]),
        legend=dict(orientation="h", y=-0.15),
        clickmode="event+select",
    )
    return fig


def clicked_bar(event) -> tuple[str, str] | None:
    """(class name, error type) of a clicked bar segment, from st.plotly_chart's selection event."""
    try:
        points = (
            event.selection.points if hasattr(event, "selection") else event["selection"]["points"]
        )
    except (KeyError, TypeError, AttributeError):
        return None
    for point in points or []:
        data = point.get("customdata")
        key = data[0] if isinstance(data, (list, tuple)) and data else data
        if key in (*ERROR_TYPES, REMAINDER):
            return str(point.get("x")), str(key)
    return None


def images_with_error(result: EvaluationResult, class_id: int, error: str) -> pd.DataFrame:
    """Images with the most segments of ``class_id`` whose error type is ``error`` (GT and predicted
    sides counted), most first. ``matched_iou``: matched GT segments ranked by IoU lost."""
    rows = []
    for index, image in enumerate(result.per_image):
        gts = [s for s in image.gt_segments if s.category_id == class_id]
        preds = [s for s in image.pred_segments if s.category_id == class_id]
        if error == REMAINDER:
            hit = [s for s in gts if s.status == "matched"]
            if hit:
                rows.append(
                    {
                        "index": index,
                        "image": image.file_name,
                        "count": len(hit),
                        "IoU lost": round(sum(1.0 - s.iou for s in hit), 3),
                        "image PQ": _pct(image.pq),
                    }
                )
            continue
        gt_hits = sum(s.error == error for s in gts)
        pred_hits = sum(s.error == error for s in preds)
        if gt_hits + pred_hits:
            rows.append(
                {
                    "index": index,
                    "image": image.file_name,
                    "count": gt_hits + pred_hits,
                    "GT segments": gt_hits,
                    "predicted segments": pred_hits,
                    "image PQ": _pct(image.pq),
                }
            )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    by = ["IoU lost"] if error == REMAINDER else ["count"]
    return frame.sort_values(by, ascending=False, kind="stable").reset_index(drop=True)


def error_segments(record: ImageResult, class_id: int, error: str) -> tuple[set[int], set[int]]:
    """Ids (panoptic values) of the GT and predicted segments of the class with that error type.
    A split's GT segment and a merge's predicted segment are shown too: they may be matched
    (no error of their own) while the pieces split off or merged in are the errors."""

    def pick(segments):
        if error == REMAINDER:
            return {s.id for s in segments if s.category_id == class_id and s.status == "matched"}
        return {s.id for s in segments if s.category_id == class_id and s.error == error}

    gt_ids, pred_ids = pick(record.gt_segments), pick(record.pred_segments)
    if error == "split":
        gt_ids |= {s.best_gt for s in record.pred_segments if s.id in pred_ids and s.best_gt}
    if error == "merge":
        pred_ids |= {s.best_pred for s in record.gt_segments if s.id in gt_ids and s.best_pred}
    return gt_ids, pred_ids


def highlight_picture(
    image_rgb: np.ndarray, label_map: np.ndarray, ids: set[int], alpha: float = 0.6
) -> np.ndarray:
    """The image, faded, with the segments ``ids`` tinted and outlined: the drill-down's
    highlight."""
    from panoptic_deeplab import visualize

    mask = np.isin(label_map, list(ids)) if ids else np.zeros(label_map.shape, bool)
    out = image_rgb.astype(np.float32) * 0.55
    out[mask] = (
        image_rgb[mask].astype(np.float32) * (1 - alpha) + np.asarray(HIGHLIGHT, np.float32) * alpha
    )
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    edges = visualize.segment_boundaries(label_map)
    out[edges & mask] = (255, 255, 255)
    return out


def _pct(x):
    return None if x is None else round(100.0 * float(x), 2)
