"""Rendering of the Evaluate page's "Why" tab (numbers and pictures from
components.error_analysis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from panoptic_deeplab.app import state
from panoptic_deeplab.app.components import error_analysis as ea
from panoptic_deeplab.app.components import figures, result_views
from panoptic_deeplab.errors import UserError
from panoptic_deeplab.evaluation.error_breakdown import ERROR_TYPES, LABELS, REMAINDER
from panoptic_deeplab.evaluation.results import EvaluationResult, ImageResult


def render(result: EvaluationResult, open_reader, open_predictions) -> None:
    """``open_reader(root, split)``, ``open_predictions(result)``: the page's cached openers."""
    _oracles(result)
    st.divider()
    frame = ea.breakdown_frame(result)
    if frame.empty:
        st.info(
            "These results have no error breakdown (written by an older `pdl evaluate`): "
            "evaluate again."
        )
        return
    _breakdown(result, frame, (open_reader, open_predictions))


def _oracles(result: EvaluationResult) -> None:
    st.markdown(
        "**Which head costs the PQ** (PQ per class with ground truth in place of a head, same "
        "post-processing)"
    )
    if result.kind == "predictions":
        st.info(
            "Oracles replace a model's heads by ground truth; a prediction set has only its "
            "panoptic maps, so there are none for it. The error breakdown below is complete."
        )
        return
    if not ea.has_oracles(result):
        st.info(
            "This result was computed without oracles. Tick **With oracles** under "
            "*Run an evaluation* and "
            "evaluate again (or run `pdl evaluate --oracle semantic,center,offset,all`)."
        )
        return
    table = ea.oracle_table(result)
    for sentence in ea.gain_sentences(table, result):
        st.markdown(f"- {sentence}")
    oracle_names = list(result.oracles)
    st.dataframe(
        table.drop(columns=["id", "gain"]),
        hide_index=True,
        width="stretch",
        key="oracle_table",
        column_config={
            "kind": None,
            "model": st.column_config.NumberColumn("model", format="%.1f"),
            **{
                n: st.column_config.NumberColumn(n, format="%.1f", help=f"PQ with the {n} oracle")
                for n in oracle_names
            },
            "largest gain": st.column_config.TextColumn("largest gain (one head)"),
        },
    )
    full = next((o for o in result.oracles.values() if len(o.heads) == 3), None)
    if full and full.why_below_100:
        st.caption("Full oracle: " + " ".join(line.strip() for line in full.why_below_100))


def _breakdown(result: EvaluationResult, frame: pd.DataFrame, openers) -> None:
    overall = result.errors.all
    if overall:
        parts = sorted(((v, k) for k, v in overall.points.items() if v >= 0.05), reverse=True)
        st.markdown(
            f"**Where the PQ goes** — overall PQ {overall.pq:.1f}; lost: "
            + ", ".join(f"{LABELS[k]} {v:.1f}" for v, k in parts)
        )
    event = st.plotly_chart(
        ea.breakdown_figure(frame), key="why_bars", on_select="rerun", selection_mode="points"
    )
    clicked = ea.clicked_bar(event)
    if clicked and clicked != st.session_state.get(
        "_why_clicked"
    ):  # a new click, not a stale selection
        st.session_state["why_class"], st.session_state["why_type"] = clicked
    st.session_state["_why_clicked"] = clicked
    with st.expander("The numbers (PQ points lost per error type; each row adds up to 100)"):
        st.dataframe(
            frame.drop(columns="id").rename(columns=LABELS),
            hide_index=True,
            width="stretch",
            key="why_numbers",
        )
        st.markdown(
            "PQ if one error type were fixed (its errors left out of the counts, TIDE-style; "
            "for the IoU of matches: every match at IoU 1). These do not add up."
        )
        st.dataframe(
            ea.breakdown_frame(result, "pq_if_fixed").drop(columns="id").rename(columns=LABELS),
            hide_index=True,
            width="stretch",
            key="why_fixed",
        )

    classes = list(frame["class"])
    if st.session_state.get("why_class") not in classes:
        st.session_state["why_class"] = classes[int(np.argmin(frame["PQ"].to_numpy()))]
    types = [*ERROR_TYPES, REMAINDER]
    if st.session_state.get("why_type") not in types:
        row = frame.loc[frame["class"] == st.session_state["why_class"]].iloc[0]
        st.session_state["why_type"] = max(ERROR_TYPES, key=lambda t: row[t])
    c = st.columns(2)
    # The pickers are in a tab and set by clicks: their default index is the value in use.
    class_name = c[0].selectbox(
        "Class", classes, index=state.index_in_use("why_class", classes), key="why_class"
    )
    error = c[1].selectbox(
        "Error type",
        types,
        index=state.index_in_use("why_type", types),
        format_func=LABELS.get,
        key="why_type",
    )
    class_id = int(frame.loc[frame["class"] == class_name, "id"].iloc[0])
    images = ea.images_with_error(result, class_id, error)
    if images.empty:
        st.info(f"No image has a {class_name} segment with this error ({LABELS[error]}).")
        return
    st.markdown(f"**Images where {class_name} has the most “{LABELS[error]}”** (click a row)")
    pick = st.dataframe(
        images.drop(columns="index"),
        hide_index=True,
        width="stretch",
        key="why_images",
        on_select="rerun",
        selection_mode="single-row",
    )
    rows = pick.selection.rows if pick is not None and hasattr(pick, "selection") else []
    names = list(images["image"])
    if rows and rows != st.session_state.get("_why_rows"):
        st.session_state["why_image"] = names[rows[0]]
    st.session_state["_why_rows"] = rows
    if st.session_state.get("why_image") not in names or st.session_state.get("_why_for") != (
        class_id,
        error,
    ):
        st.session_state["why_image"] = names[
            0
        ]  # a new class or error type starts at its worst image
    st.session_state["_why_for"] = (class_id, error)
    image_name = st.selectbox(
        "Image", names, index=state.index_in_use("why_image", names), key="why_image"
    )
    record = result.per_image[int(images.loc[images["image"] == image_name, "index"].iloc[0])]
    _show_image(result, record, class_id, class_name, error, openers)


def _show_image(
    result: EvaluationResult,
    record: ImageResult,
    class_id: int,
    class_name: str,
    error: str,
    openers,
) -> None:
    try:
        image, gt, pred = result_views.image_views(result, record, *openers)
    except UserError as err:
        st.error(str(err))
        return
    gt_ids, pred_ids = ea.error_segments(record, class_id, error)
    left, right = st.columns(2)
    left.plotly_chart(
        figures.image_figure(
            ea.highlight_picture(image, gt, gt_ids),
            title=f"Ground truth: {len(gt_ids)} highlighted",
        ),
        key="why_gt",
    )
    right.plotly_chart(
        figures.image_figure(
            ea.highlight_picture(image, pred, pred_ids),
            title=f"Prediction: {len(pred_ids)} highlighted",
        ),
        key="why_pred",
    )
    if record.oracle_pq:
        st.caption(
            f"This image: PQ {100 * (record.pq or 0):.1f}; with oracles "
            + ", ".join(f"{k} {100 * v:.1f}" for k, v in record.oracle_pq.items() if v is not None)
        )
    st.caption(
        f"Highlighted: the {class_name} segments with “{LABELS[error]}” (GT ids {sorted(gt_ids)}, "
        f"predicted ids {sorted(pred_ids)})."
    )
