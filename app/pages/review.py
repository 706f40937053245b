"""Review: browse a data set's annotations beside the model's prediction, most suspicious segments
first, decide on each (accept, reject, relabel, crowd, ignore, comment; undoable), and export a
corrected copy of the data set with a review report.

All logic lives in panoptic_deeplab.review (scoring, store, export); decisions are stored in SQLite
under the work directory.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import streamlit as st

from panoptic_deeplab import settings as product_settings
from panoptic_deeplab import visualize
from panoptic_deeplab.app import state
from panoptic_deeplab.app.components import figures, model_io
from panoptic_deeplab.errors import UserError
from panoptic_deeplab.review import finished_exports
from panoptic_deeplab.review.errors import DecisionConflict
from panoptic_deeplab.review.scoring import category_mapping, prediction_from_model
from panoptic_deeplab.review.store import ReviewStore, default_review_dir

HIGHLIGHT = (255, 230, 0)
ACTION_LABELS = {"accept": "Accept", "reject": "Reject", "crowd": "Mark crowd", "ignore": "Ignore"}
ACTION_HELP = {
    "accept": "The annotation is right.",
    "reject": "The annotation is wrong: exported as VOID and listed in the report for re-annotation.",
    "crowd": "A group of things that cannot be told apart: exported with iscrowd = 1.",
    "ignore": "Leave this region out of training and evaluation: exported as VOID.",
}


def _default_model() -> str | None:
    bundles = product_settings.shipped_models()
    return str(bundles[0]) if bundles else None


def _model_key(path: str | None) -> str | None:
    """Identifies a model's scores: its folder and the time its weights were written."""
    if not path:
        return None
    weights = Path(path) / "model.weights.h5"
    stamp = int(weights.stat().st_mtime) if weights.is_file() else 0
    return f"{Path(path).resolve()}@{stamp}"


def _predict(model_path: str, image: np.ndarray) -> SimpleNamespace:
    """The model's semantic map, probabilities and panoptic map for an image, through the app's caches
    (shared with the Inspect page)."""
    predictor = model_io.load_predictor(model_path)
    digest = model_io.image_digest(image)
    heads = model_io.run_heads(model_path, digest, image)
    fused = model_io.fuse(model_path, digest, model_io.default_options(predictor), heads)
    return SimpleNamespace(
        semantic=fused.semantic, semantic_probs=heads.semantic_probs, panoptic=fused.panoptic
    )


app_settings = state.settings()
workdir = app_settings.workdir
default_data = str(app_settings.data) if app_settings.data else None
model_path = str(app_settings.model) if app_settings.model else _default_model()

st.title("Review")
st.caption(
    "Find annotation mistakes: segments where the model confidently disagrees with the ground truth come "
    "first. Decide on each; decisions are saved as you go, can be undone, and are exported as a corrected copy "
    "of the data set (the original files are never changed)."
)

# Like the Evaluate page: any data set root, the app's own by default; review exports are offered too.
exports = workdir / "exports"
choices = list(
    dict.fromkeys(
        [
            *([default_data] if default_data else []),
            *(str(p) for p in finished_exports(exports)),
        ]
    )
)
OTHER = "other folder…"
picked_root = st.selectbox(
    "Data set",
    [*choices, OTHER],
    key="review_dataset",
    format_func=lambda v: v if v == OTHER else f"{Path(v).name}  ({v})",
)
data_root = (
    st.text_input(
        "Data set root", key="review_data_other", placeholder="/path/to/coco-panoptic-root"
    )
    if picked_root == OTHER
    else picked_root
)

if not data_root or not (Path(data_root).expanduser() / "annotations").is_dir():
    st.warning(
        "**No COCO-panoptic data set.** Start the app with `pdl app --data ROOT`, where ROOT holds "
        "`annotations/panoptic_<split>.json`."
        + (f" (`{data_root}` has no `annotations/` folder.)" if data_root else "")
    )
    st.stop()
root = Path(data_root).expanduser()
splits = sorted(p.stem[len("panoptic_") :] for p in (root / "annotations").glob("panoptic_*.json"))
if not splits:
    st.warning(f"`{root / 'annotations'}` holds no `panoptic_<split>.json` file.")
    st.stop()

top = st.columns([1, 2])
split = top[0].selectbox(
    "Split", splits, index=splits.index("val") if "val" in splits else 0, key="review_split"
)
try:
    store = ReviewStore(root, split, default_review_dir(root, split, workdir))
except UserError as err:
    st.error(str(err), icon=":material/error:")
    st.stop()
top[1].caption(
    f"Data set `{root}` · {len(store.image_ids())} images · decisions in `{store.db_path}`"
)

# -- ranking with the model -------------------------------------------------------------------

model_key = _model_key(model_path) if model_path and Path(model_path).is_dir() else None
if model_key is None:
    st.info(
        "No model: segments are listed in file order. Start the app with `--model BUNDLE` to rank them by "
        "how strongly the model disagrees.",
        icon=":material/info:",
    )
else:
    scored = store.scored_images(model_key)
    total = len(store.image_ids())
    cols = st.columns([2, 1])
    cols[0].caption(f"Model `{Path(model_path).name}`: {len(scored)} of {total} images scored.")
    if len(scored) < total and cols[1].button(
        "Score with the model", icon=":material/sort:", key="score"
    ):
        try:
            model_spec = model_io.model_spec(model_io.load_predictor(model_path))
            mapping = category_mapping(model_spec, store.coco["categories"])
            if (mapping < 0).all():
                raise UserError(
                    f"the model's classes ({', '.join(model_spec.class_names)}) share none with "
                    "this data set's categories; choose a model trained on these classes"
                )
            bar = st.progress(0.0, text="Scoring…")

            def _predict_for_review(image, image_id):
                return prediction_from_model(_predict(model_path, image), model_spec, mapping)

            store.score_images(
                model_key,
                _predict_for_review,
                progress=lambda n, k: bar.progress(n / k, text=f"Scored {n} / {k} images"),
            )
            bar.empty()
        except UserError as err:
            st.error(str(err), icon=":material/error:")

# -- the segment list ---------------------------------------------------------------------------

ranked = store.ranked(model_key)
ranked = ranked[ranked["kind"] == "gt_segment"].reset_index(drop=True)  # missing objects: next page
filters = st.columns([1, 2, 1])
only_open = filters[0].toggle("Only undecided", key="only_open")
category_names = sorted(ranked["category"].unique()) if len(ranked) else []
chosen_categories = filters[1].multiselect(
    "Classes", category_names, key="class_filter", placeholder="all classes"
)
advance = filters[2].toggle("Next after a decision", value=True, key="advance")
view = ranked
if only_open:
    view = view[view["status"] == ""]
if chosen_categories:
    view = view[view["category"].isin(chosen_categories)]
view = view.reset_index(drop=True)
if view.empty:
    st.success("Nothing left to review with these filters.", icon=":material/done_all:")

shown = (
    view[
        [
            "image_id",
            "file_name",
            "segment_id",
            "category",
            "area",
            "disagreement",
            "suggested",
            "best_iou",
            "action",
            "new_category",
            "comment",
        ]
    ]
    if len(view)
    else view
)
event = st.dataframe(
    shown,
    hide_index=True,
    height=260,
    key="segments_table",
    on_select="rerun",
    selection_mode="single-row",
    column_config={
        "disagreement": st.column_config.ProgressColumn(
            "disagreement",
            min_value=0.0,
            max_value=1.0,
            format="%.2f",
            help="share of the segment the model confidently labels as another class",
        ),
        "best_iou": st.column_config.NumberColumn(
            "best IoU",
            format="%.2f",
            help="best overlap with a predicted segment of the same class",
        ),
    },
)
if len(view) == 0:
    st.stop()

# A click in the table moves the cursor (only when the click is new: the selection persists).
rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
if rows and rows != st.session_state.get("_review_last_rows"):
    st.session_state["review_rank"] = rows[0] + 1
st.session_state["_review_last_rows"] = rows
if st.session_state.get("_review_started_for") != (str(root), split):
    # A new session (or data set) starts where the reviewer left off: the first undecided segment.
    st.session_state["_review_started_for"] = (str(root), split)
    undecided = np.flatnonzero((view["status"] == "").to_numpy())
    st.session_state["review_rank"] = int(undecided[0]) + 1 if len(undecided) else 1
st.session_state["review_rank"] = int(
    min(max(1, st.session_state.get("review_rank", 1)), len(view))
)


def _step(delta: int) -> None:
    st.session_state["review_rank"] = int(
        min(max(1, st.session_state["review_rank"] + delta), len(view))
    )


nav = st.columns([1.4, 1.4, 1.6, 3])
nav[0].button(
    "Previous",
    icon=":material/arrow_back:",
    on_click=_step,
    args=(-1,),
    key="prev",
    disabled=st.session_state["review_rank"] <= 1,
)
nav[1].button(
    "Next",
    icon=":material/arrow_forward:",
    on_click=_step,
    args=(1,),
    key="next",
    disabled=st.session_state["review_rank"] >= len(view),
)
nav[2].number_input(
    "Segment", min_value=1, max_value=len(view), key="review_rank", label_visibility="collapsed"
)
nav[3].caption(f"of {len(view)} segments")

row = view.iloc[st.session_state["review_rank"] - 1]
image_id, segment_id = str(row["image_id"]), int(row["segment_id"])

# -- the segment: ground truth beside the prediction -----------------------------------------

try:
    image = store.image(image_id)
    gt_ids = store.gt_ids(image_id)
except UserError as err:
    st.error(str(err), icon=":material/error:")
    st.stop()
spec = store.spec
mask = gt_ids == segment_id
outline = visualize.segment_boundaries(mask.astype(np.uint8), thickness=2)
gt_view = visualize.panoptic_overlay(
    image,
    store.gt_panoptic(image_id),
    spec.colors,
    label_divisor=spec.label_divisor,
    ignore_label=spec.ignore_label,
    alpha=0.45,
)
gt_view[outline] = HIGHLIGHT
gt_names = {int(s["id"]): store.category_name(s["category_id"]) for s in store.segments(image_id)}


def _gt_hover(ys, xs):
    names = np.array([gt_names.get(int(v), "void") for v in gt_ids[ys, xs]], dtype=object)
    return names[:, None], "annotation: %{customdata[0]}"


left, right = st.columns(2)
with left:
    st.plotly_chart(
        figures.image_figure(gt_view, _gt_hover, title=f"Annotation · {row['file_name']}"),
        key="gt_figure",
    )
with right:
    if model_key is not None:
        try:
            pred = _predict(model_path, image)
            pspec = model_io.model_spec(model_io.load_predictor(model_path))
            pred_view = visualize.panoptic_overlay(
                image,
                pred.panoptic,
                pspec.colors,
                label_divisor=pspec.label_divisor,
                ignore_label=pspec.ignore_label,
                alpha=0.45,
            )
            pred_view[outline] = HIGHLIGHT
            conf = pred.semantic_probs.max(axis=-1) if pred.semantic_probs is not None else None

            def _pred_hover(ys, xs):
                cls = pred.semantic[ys, xs]
                names = np.array(
                    [pspec.class_names[c] if 0 <= c < pspec.num_classes else "void" for c in cls],
                    dtype=object,
                )
                probs = conf[ys, xs] if conf is not None else np.ones(len(ys))
                return np.stack(
                    [names, probs.round(2)], axis=1
                ), "model: %{customdata[0]} (p=%{customdata[1]})"

            st.plotly_chart(
                figures.image_figure(pred_view, _pred_hover, title="Model prediction"),
                key="pred_figure",
            )
        except UserError as err:
            st.error(str(err), icon=":material/error:")
    else:
        st.image(image, caption="Image (no model)")

# -- decisions --------------------------------------------------------------------------------

info = st.columns(5)
info[0].metric("Class", row["category"])
info[1].metric("Area", f"{int(row['area'])} px")
info[2].metric(
    "Disagreement", "–" if pd.isna(row["disagreement"]) else f"{row['disagreement']:.2f}"
)
info[3].metric("Model says", row["suggested"] or "–")
info[4].metric("Best IoU", "–" if pd.isna(row["best_iou"]) else f"{row['best_iou']:.2f}")
current = store.decision(image_id, segment_id)
if current and current.action:
    label = current.action + (
        f" → {store.category_name(current.category_id)}" if current.category_id is not None else ""
    )
    when = current.updated_at.replace("T", " ")[:16]  # ISO 8601, to the minute
    st.caption(
        f"Current decision: **{label}** (saved {when}); a different one asks before replacing it."
    )


def _apply(fn, *args, replace: bool = False) -> None:
    """Run a store change; a decision never silently replaces another one (``replace`` after asking)."""
    try:
        if fn == store.decide:
            fn(*args, replace=replace)
        else:
            fn(*args)
    except DecisionConflict as err:  # decided meanwhile (another tab, an earlier session)
        st.session_state["_review_conflict"] = {"args": args, "message": str(err)}
        return
    except UserError as err:
        st.session_state["_review_error"] = str(err)
        return
    st.session_state.pop("_review_conflict", None)
    if advance and not only_open:  # with "only undecided" the list itself moves on
        _step(1)


actions = st.columns(len(ACTION_LABELS) + 1)
thing = store.is_thing(int(row["category_id"]))
for col, (action, label) in zip(actions, ACTION_LABELS.items()):
    col.button(
        label,
        key=f"do_{action}",
        help=ACTION_HELP[action],
        on_click=_apply,
        args=(store.decide, image_id, segment_id, action),
        disabled=(action == "crowd" and not thing),
        type="primary" if current and current.action == action else "secondary",
    )
actions[-1].button(
    "Undo",
    key="undo",
    icon=":material/undo:",
    disabled=store.history_size() == 0,
    on_click=lambda: store.undo(),
    help="Revert the last change (any segment)",
)

categories = {f"{c['name']} ({cid})": cid for cid, c in store.categories.items()}
suggested = row["suggested_category_id"]
labels = list(categories)
default_label = next(
    (
        k
        for k, v in categories.items()
        if suggested is not None and not pd.isna(suggested) and v == int(suggested)
    ),
    labels[0],
)
relabel = st.columns([2, 1, 3, 1])
new_label = relabel[0].selectbox(
    "Relabel to", labels, index=labels.index(default_label), key=f"relabel_{image_id}_{segment_id}"
)
relabel[1].button(
    "Relabel",
    key="do_relabel",
    on_click=_apply,
    args=(store.decide, image_id, segment_id, "relabel", categories[new_label]),
)
comment = relabel[2].text_input(
    "Comment", value=current.comment if current else "", key=f"comment_{image_id}_{segment_id}"
)
relabel[3].button(
    "Save comment",
    key="do_comment",
    on_click=lambda: store.comment(
        image_id, segment_id, st.session_state[f"comment_{image_id}_{segment_id}"]
    ),
)
if "_review_error" in st.session_state:
    st.error(st.session_state.pop("_review_error"), icon=":material/error:")
conflict = st.session_state.get("_review_conflict")
if conflict and tuple(conflict["args"][0:2]) == (image_id, segment_id):
    st.warning(f"{conflict['message']} Replace it?", icon=":material/warning:")
    ask = st.columns([1, 1, 4])
    ask[0].button(
        "Replace",
        key="conflict_replace",
        type="primary",
        on_click=_apply,
        args=(store.decide, *conflict["args"]),
        kwargs={"replace": True},
    )
    ask[1].button(
        "Keep it",
        key="conflict_keep",
        on_click=lambda: st.session_state.pop("_review_conflict", None),
    )

# -- export -----------------------------------------------------------------------------------

st.subheader("Export")
decided = int((ranked["status"] != "").sum())
st.caption(
    f"{decided} of {len(ranked)} segments decided. The export is a complete COCO-panoptic data set (all "
    "splits, images copied) with this split's annotations corrected, plus `review_report.csv`."
)
ex = st.columns([3, 1, 1])
out_dir = ex[0].text_input(
    "Export folder", value=str(workdir / "exports" / f"{root.name}-reviewed"), key="export_dir"
)
overwrite = ex[1].checkbox("Replace an earlier export", key="export_overwrite")
if ex[2].button("Export", type="primary", icon=":material/save:", key="export"):
    try:
        result = store.export(out_dir, model_key=model_key, overwrite=overwrite)
        st.session_state["review_export"] = str(result.report_path)
        st.success(
            f"Exported to `{result.root}`: {result.images_changed} images changed, "
            f"{result.segments_dropped} segments made VOID, {result.segments_relabelled} relabelled. "
            "Fine-tune on it from the Train page.",
            icon=":material/check_circle:",
        )
    except UserError as err:
        st.error(str(err), icon=":material/error:")
report = st.session_state.get("review_export")
if report and Path(report).is_file():
    st.download_button(
        "Download the review report (CSV)",
        Path(report).read_bytes(),
        file_name="review_report.csv",
        mime="text/csv",
        key="download_report",
    )
