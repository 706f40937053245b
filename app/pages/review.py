"""Review: fix a data set's labels with the model's help, most suspicious items first: ground-truth
segments the model disagrees with and objects nobody annotated. Decide (accept, reject, relabel,
crowd, ignore), fix the mask (take the model's segment, paint, smart region, merge, split), add a
missed object; every change is undoable and recorded with its reviewer; export a corrected
COCO-panoptic copy with a report.

All logic lives in panoptic_deeplab.review. The network never runs here: scoring is a background
job (``pdl review score``) that stores what review needs, and the page reads it back. The list and
the segment are one Streamlit fragment, so a decision or an edit redraws only them.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from panoptic_deeplab import settings as product_settings
from panoptic_deeplab.app import state
from panoptic_deeplab.app.components import figures, store_repair
from panoptic_deeplab.app.components import prediction_set_picker as picker
from panoptic_deeplab.app.components import review_view as rv
from panoptic_deeplab.errors import UserError
from panoptic_deeplab.review import (
    GT_SEGMENT,
    MISSING,
    PredictionFilesSource,
    StaleSegment,
    category_mapping_inverse,
    default_review_dir,
    default_reviewer,
    finished_exports,
    model_source_key,
)
from panoptic_deeplab.review.store import ReviewStore
from panoptic_deeplab.sqlite_store import DamagedStoreError

ACTIONS = {  # decision -> (button, help)
    "accept": ("Accept", "The annotation is right."),
    "reject": ("Reject", "Wrong and not fixable here: exported as VOID, listed for re-annotation."),
    "crowd": ("Crowd", "A group of things that cannot be told apart: exported with iscrowd = 1."),
    "ignore": ("Ignore", "Leave this region out of training and evaluation: exported as VOID."),
}
SHOW = {"All": None, "Segments": [GT_SEGMENT], "Missing objects": [MISSING]}
TABLE_COLUMNS = [
    "kind",
    "file_name",
    "ref_id",
    "category",
    "model_category",
    "area",
    "score",
    "best_iou",
    "status",
    "new_category",
    "reviewer",
]
POLL_S = 2.0  # how often the page looks at a running scoring job
ss = st.session_state


def _default_model() -> str | None:
    bundles = product_settings.shipped_models()
    return str(bundles[0]) if bundles else None


def _int(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _notice(level: str, text: str) -> None:
    ss["review_notice"] = (level, text)


# -- reviewer, data set, split -----------------------------------------------------------------

sess = state.session()
app_settings = sess.settings
workdir = app_settings.workdir
default_data = str(app_settings.data) if app_settings.data else None
model_path = str(app_settings.model) if app_settings.model else _default_model()

st.title("Review")
st.caption(
    "Fix the data set's labels, most suspicious first: segments the model disagrees with and "
    "objects nobody annotated. Every change is saved at once with your name, can be undone, and is "
    "exported as a corrected copy of the data set (the original files never change)."
)

ss.setdefault("review_reviewer", default_reviewer())
top = st.columns([1, 2, 1])
reviewer = (
    top[0]
    .text_input(
        "Reviewer",
        key="review_reviewer",
        help="Stored with every change ($PDL_REVIEWER by default).",
    )
    .strip()
)
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
picked_root = top[1].selectbox(
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
if not reviewer:
    st.warning("Give your name as the reviewer: it is stored with every change.")
    st.stop()
root = Path(data_root).expanduser()
splits = sorted(p.stem[len("panoptic_") :] for p in (root / "annotations").glob("panoptic_*.json"))
if not splits:
    st.warning(f"`{root / 'annotations'}` holds no `panoptic_<split>.json` file.")
    st.stop()
split = top[2].selectbox(
    "Split", splits, index=splits.index("val") if "val" in splits else 0, key="review_split"
)


def _open_store(repair: bool = False) -> ReviewStore:
    store_dir = default_review_dir(root, split, workdir)
    return ReviewStore(root, split, store_dir, reviewer=reviewer, repair=repair)


try:
    store = _open_store()
except DamagedStoreError as err:
    repair = lambda: _open_store(repair=True).set_aside_as  # noqa: E731 - a one-line callback
    if not store_repair.offer(err, repair, "an empty review", key="repair_review"):
        st.stop()
    store = _open_store()
except UserError as err:
    st.error(str(err), icon=":material/error:")
    st.stop()
st.caption(f"Data set `{root}` · {len(store.image_ids())} images · review store `{store.db_path}`")
has_model = bool(model_path) and Path(model_path).is_dir()
sess.uses(model=model_path if has_model else None, data=root)
spec = store.spec
train_of = category_mapping_inverse(spec)


# -- the model's view: a bundle, or another tool's prediction files ------------------------------


@st.cache_resource(show_spinner=False, max_entries=4, ttl=300)
def _files_source(json_path: str, folder: str, stamp: tuple) -> PredictionFilesSource:
    """The review library's source for prediction files, read once per file stamp."""
    return PredictionFilesSource(json_path, folder)


def _prediction_files() -> tuple[PredictionFilesSource, str] | None:
    """The prediction set chosen on the page (COCO panoptic, what review scores from files),
    checked by the library, with its name; None (and the library's message) when unusable."""
    choice = picker.choose("review_set", workdir, formats=("coco_panoptic",))
    if choice is None:
        return None
    try:
        predictions = picker.open_set(choice, spec)
        files = _files_source(str(predictions.json_path), str(predictions.folder), choice.key)
    except UserError as err:
        picker.show_error(choice.name, err)
        return None
    picker.remember(workdir, predictions)
    return files, predictions.name


FROM_MODEL, FROM_FILES = "the model", "a prediction set"
ranked_by = st.radio(
    "Rank with",
    [FROM_MODEL, FROM_FILES],
    horizontal=True,
    key="review_source",
    captions=["runs the bundle once per image", "another tool's COCO-panoptic files"],
)
files = _prediction_files() if ranked_by == FROM_FILES else None
if files is not None:
    source = files[0].key
    source_name = f"Prediction set `{files[1]}` (from files)"
    source_argv = ["--predictions", files[0].path, "--pred-folder", str(files[0].png_dir)]
    seen_by = f"Prediction set {files[1]} (from files)"
    who = f"the prediction set {files[1]} (from files)"
elif ranked_by == FROM_MODEL and has_model:
    source = model_source_key(model_path)
    source_name = f"Model `{sess.model_label(model_path)}`"
    source_argv = ["--model", model_path]
    seen_by, who = "Model", "the model"
else:
    source = source_name = source_argv = None
    seen_by, who = "Model", "the model"


def _color(category_id: int):
    t = train_of.get(int(category_id))
    return spec.colors[t] if t is not None and t < len(spec.colors) else (0, 0, 0)


# -- scoring: a background job ------------------------------------------------------------------


def _scoring_job():
    """The newest `pdl review score` job of this store (None when there is none). A damaged job
    store raises DamagedStoreError (the page offers its repair)."""
    from panoptic_deeplab.jobs.arguments import option_value

    try:
        jobs = sess.jobs.list(kind="review")
    except DamagedStoreError:
        raise
    except UserError:
        return None
    mine = [j for j in jobs if option_value(j.argv, "--store") == str(store.workdir)]
    return mine[0] if mine else None


def _start_scoring() -> None:
    argv = ["review", "score", "--dataset", str(root), "--split", split, *source_argv]
    argv += ["--store", str(store.workdir)]
    try:
        started = sess.jobs.submit(argv, name=f"review score {root.name}/{split}")
    except UserError as err:
        ss["review_scoring_error"] = f"Scoring could not start: {err}"
        return
    ss["review_scoring_job"] = started.id


jobs_damaged = False  # the review works on; only scoring needs the job store
try:
    job = _scoring_job() if source else None
except DamagedStoreError as err:
    if store_repair.offer(err, sess.repair_jobs, "an empty job list", key="repair_jobs"):
        job = _scoring_job() if source else None
    else:
        jobs_damaged, job = True, None
active = job is not None and job.is_active


@st.fragment(run_every=POLL_S if active else None)
def scoring_status() -> None:
    """The scoring's progress, polled while its job runs; the page reloads when it ends."""
    if jobs_damaged:
        return
    if source is None and ranked_by == FROM_FILES:
        st.info(
            "No prediction set yet: segments are listed in file order. Give a COCO-panoptic JSON "
            "and its PNG folder above to rank them against another tool's predictions.",
            icon=":material/info:",
        )
        return
    if source is None:
        st.info(
            "No model: segments are listed in file order. Start the app with `--model BUNDLE` to "
            "rank them by how strongly the model disagrees, and to see missed objects.",
            icon=":material/info:",
        )
        return
    progress = store.scoring_progress(source)
    try:
        current = _scoring_job()
    except DamagedStoreError:  # damaged since the page was drawn: its next run offers the repair
        current = None
    running = current is not None and current.is_active
    cols = st.columns([3, 1])
    cols[0].caption(f"{source_name}: {progress.scored} of {progress.total} images scored.")
    if running:
        share = progress.scored / max(progress.total, 1)
        cols[0].progress(share, text=f"Scoring in job {current.id}… ({progress.scored} done)")
    elif current is not None and current.state == "failed":
        cols[0].error(
            f"Scoring job {current.id} failed: {current.message or 'see its log'} "
            f"(`{current.log_path}`)",
            icon=":material/error:",
        )
    if "review_scoring_error" in ss:
        cols[0].error(ss.pop("review_scoring_error"), icon=":material/error:")
    cols[1].button(
        "Score with the model" if ranked_by == FROM_MODEL else "Score with the prediction set",
        icon=":material/sort:",
        key="score",
        on_click=_start_scoring,
        disabled=running or progress.scored >= progress.total,
        help="Runs the model once per image (or reads the prediction files) in a background job "
        "(`pdl review score`); decisions and edits afterwards never run it again.",
    )
    started = ss.get("review_scoring_job")
    if started is not None and not (running and active):
        # Started just now (poll it) or ended (show its ranking): reload the whole page.
        if not running:
            ss.pop("review_scoring_job")
            ss.pop("review_cursor", None)  # a new ranking: start at its top
        st.rerun()


scoring_status()

# -- changes: each runs in a button's callback, before the fragment redraws ------------------------


def _cursor_of(row) -> tuple[str, str, int]:
    return (str(row["image_id"]), str(row["kind"]), int(row["ref_id"]))


class Done:
    """What a decision reports (an edit returns the store's ``EditResult``)."""

    def __init__(self, message: str):
        self.seq, self.message = None, message


def _change(cursor, do, *, advance: bool = False) -> None:
    """Run one store change; on success remember which item it was made on (Undo goes back to
    it) and move on if asked; a refusal becomes the message above the item."""
    started = time.perf_counter()
    try:
        result = do()
        ss["review_change_s"] = time.perf_counter() - started
    except StaleSegment as err:  # someone else changed it since it was shown: reload it
        _notice("warning", f"{err}")
        return
    except UserError as err:
        _notice("error", str(err))
        return
    seq = getattr(result, "seq", None)
    if seq is not None:
        ss.setdefault("review_cursor_of_change", {})[int(seq)] = cursor
    message = getattr(result, "message", "")
    _notice("success", (message[:1].upper() + message[1:]) if message else "Saved.")
    if advance and ss.get("review_advance", True):
        nxt = store.next_item(
            source,
            after=cursor,
            only_open=ss.get("review_only_open", False),
            kinds=SHOW[ss.get("review_show", "All")],
            wrap=False,
        )
        if nxt is not None:
            ss["review_cursor"] = _cursor_of(nxt)


def _decide(cursor, action: str, version, category_key: str | None = None) -> None:
    image_id, _, sid = cursor
    category = ss[category_key] if category_key else None
    done = {
        "accept": "Accepted",
        "reject": "Rejected",
        "crowd": "Marked as a crowd region:",
        "ignore": "Ignored",
        "relabel": "Relabelled",
    }[action]

    def do():
        store.decide(image_id, sid, action, category, version=version)
        return Done(
            f"{done} segment {sid}"
            + (f" → {store.category_name(category)}" if category is not None else "")
        )

    _change(cursor, do, advance=True)


def _comment(cursor, key: str, version) -> None:
    image_id, _, sid = cursor

    def do():
        store.comment(image_id, sid, ss[key], version=version)
        return Done(f"Comment saved on segment {sid}")

    _change(cursor, do)


def _undo() -> None:
    started = time.perf_counter()
    try:
        result = store.undo()
        ss["review_change_s"] = time.perf_counter() - started
    except StaleSegment as err:
        _notice("warning", str(err))
        return
    if result is None:
        _notice("info", "Nothing of yours left to undo.")
        return
    back = ss.get("review_cursor_of_change", {}).get(int(result.seq))
    if back is None and result.segment_id is not None:
        back = (str(result.image_id), GT_SEGMENT, int(result.segment_id))
    if back is not None:
        ss["review_cursor"] = back
    _notice("success", result.message[:1].upper() + result.message[1:])


def _shape(cursor) -> dict | None:
    drawn = ss.get("review_shape")
    return drawn["shape"] if drawn and tuple(drawn["on"]) == tuple(cursor) else None


def _paint(cursor, version, mode: str, smart: bool) -> None:
    image_id, _, sid = cursor
    shape = _shape(cursor)
    if shape is None:
        _notice("error", "Draw on the annotation first (a click, a box or a lasso).")
        return
    size = store.gt_ids(image_id).shape

    def do():
        if smart:
            if shape["kind"] == "lasso":
                raise UserError("a smart region starts from a click or a box, not a lasso")
            mask = store.smart_region(
                image_id,
                click=shape["points"][0] if shape["kind"] == "click" else None,
                box=shape["box"] if shape["kind"] == "box" else None,
            )
            tool = "region"
        else:
            mask = rv.shape_mask(shape, size, ss.get("review_brush", 3))
            tool = {"lasso": "polygon", "box": "polygon"}.get(shape["kind"], "brush")
            tool = "eraser" if mode == "remove" and tool == "brush" else tool
        return store.paint(image_id, sid, mask, mode, tool=tool, version=version)

    _change(cursor, do)
    ss.pop("review_shape", None)


def _split(cursor, version, along_line: bool) -> None:
    image_id, _, sid = cursor
    shape = _shape(cursor)
    line = None
    if along_line:
        line = shape.get("points") if shape else None
        if not line or len(line) < 2:
            _notice("error", "Draw the split line first: a lasso across the segment, or 2 clicks.")
            return
    _change(
        cursor,
        lambda: store.split_segment(
            image_id, sid, line=line, source=None if line else source, version=version
        ),
    )
    ss.pop("review_shape", None)


# -- the list and the item: one fragment ---------------------------------------------------------


def _table(view: pd.DataFrame) -> None:
    shown = view[TABLE_COLUMNS] if len(view) else view
    event = st.dataframe(
        shown,
        hide_index=True,
        height=240,
        key="review_table",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "kind": st.column_config.TextColumn(
                "kind", help="gt_segment, or missing: a possible object nobody annotated"
            ),
            "ref_id": st.column_config.NumberColumn(
                "segment", help="GT segment id (for a missing object: the model's segment id)"
            ),
            "score": st.column_config.ProgressColumn(
                "suspicion", min_value=0.0, max_value=1.0, format="%.2f"
            ),
            "best_iou": st.column_config.NumberColumn("best IoU", format="%.2f"),
        },
    )
    rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    if rows and rows != ss.get("_review_rows") and rows[0] < len(view):
        ss["review_cursor"] = _cursor_of(view.iloc[rows[0]])
    ss["_review_rows"] = rows


def _views(row, image_id: str, sid: int | None, proposal: np.ndarray | None) -> None:
    """The annotation (a Plotly figure to draw on) and the model, zoomed to the item."""
    image = store.image(image_id)
    labels = store.image_state(image_id)
    pred = store.prediction(source, image_id) if source else None
    focus = proposal if proposal is not None else labels.ids == sid
    seg = labels.segments.get(sid) if sid is not None else None
    bbox = seg.bbox if seg is not None and seg.area else [row["x"], row["y"], row["w"], row["h"]]
    opts = st.columns([1, 1.4, 1.6])
    whole = opts[0].toggle("Whole image", key="review_whole")
    mode = opts[1].radio(
        "View", ["Side by side", "One overlay"], key="review_mode", horizontal=True
    )
    alpha = opts[2].slider("Opacity", 0.0, 1.0, 0.45, 0.05, key="review_alpha")
    h, w = labels.ids.shape
    x0, y0, x1, y1 = (0, 0, w, h) if whole else rv.crop_box(bbox, (h, w))
    crop = (slice(y0, y1), slice(x0, x1))
    cats = {s.id: s.category_id for s in labels.active().values()}
    pred_focus = None
    if pred is not None and pred.panoptic is not None:
        pid = _int(row.get("pred_segment_id"))
        if pid is not None:
            pred_focus = np.asarray(pred.panoptic)[crop] == pid
    gt_rgb = rv.label_view(
        image[crop],
        labels.ids[crop],
        cats,
        _color,
        focus[crop],
        alpha=alpha,
        outline_of=pred_focus if mode == "One overlay" else None,
    )
    fig = figures.image_figure(gt_rgb, title=f"Annotation · {row['file_name']}", height=420)
    fig.update_layout(dragmode="lasso", xaxis=dict(range=[-0.5, x1 - x0 - 0.5]))
    cursor = _cursor_of(row)
    key = f"review_draw_{image_id}_{row['kind']}_{row['ref_id']}_{labels.pixel_version}"
    left, right = st.columns(2) if mode == "Side by side" and pred is not None else (st, None)
    with left if right is not None else st.container():
        event = st.plotly_chart(
            fig, key=key, on_select="rerun", selection_mode=("points", "box", "lasso")
        )
    drawn = rv.drawn_shape(event, (x0, y0))
    if drawn is not None:
        ss["review_shape"] = {"on": list(cursor), "shape": drawn}
    if right is not None:
        model_rgb = rv.label_view(
            image[crop],
            np.asarray(pred.panoptic)[crop],
            pred.segments or {},
            _color,
            pred_focus,
            alpha=alpha,
        )
        right.image(rv.zoom(model_rgb), caption=seen_by, width="stretch")


def _metrics(row) -> None:
    info = st.columns(6)
    info[0].metric("Class", row["new_category"] or row["category"])
    info[1].metric("Area", f"{int(row['area'])} px")
    info[2].metric(f"{seen_by} says", row["model_category"] or "–")
    conf = row["confidence"]
    info[3].metric("Confidence", "–" if pd.isna(conf) else f"{conf:.2f}")
    iou = row["best_iou"]
    info[4].metric("Best IoU", "–" if pd.isna(iou) else f"{iou:.2f}")
    info[5].metric("Status", row["status"] or "open")


def _segment_tools(row, cursor, version) -> None:
    image_id, _, sid = cursor
    thing = store.is_thing(int(row["category_id"]))
    buttons = st.columns(len(ACTIONS) + 1)
    for col, (action, (label, tip)) in zip(buttons, ACTIONS.items()):
        col.button(
            label,
            key=f"do_{action}",
            help=tip,
            on_click=_decide,
            args=(cursor, action, version),
            disabled=action == "crowd" and not thing,
            type="primary" if row["action"] == action else "secondary",
        )
    buttons[-1].button(
        "Undo",
        key="undo",
        icon=":material/undo:",
        on_click=_undo,
        disabled=store.history_size() == 0,
        help="Revert your last change (and go back to it)",
    )
    names = {f"{c['name']} ({cid})": cid for cid, c in store.categories.items()}
    labels = list(names)
    suggested = _int(row["suggested_category_id"])
    default = next((k for k, v in names.items() if v == suggested), labels[0])
    relabel = st.columns([2, 1, 3, 1])
    relabel_key = f"relabel_{image_id}_{sid}"
    relabel[0].selectbox("Relabel to", labels, index=labels.index(default), key=relabel_key)
    ss[f"{relabel_key}_id"] = names[ss[relabel_key]]
    relabel[1].button(
        "Relabel",
        key="do_relabel",
        on_click=_decide,
        args=(cursor, "relabel", version, f"{relabel_key}_id"),
    )
    comment_key = f"comment_{image_id}_{sid}"
    relabel[2].text_input("Comment", value=row["comment"], key=comment_key)
    relabel[3].button(
        "Save comment",
        key="do_comment",
        on_click=_comment,
        args=(cursor, comment_key, version),
    )

    st.markdown("**Fix the mask**")
    shape = _shape(cursor)
    st.caption(
        f"Drawn: {rv.describe_shape(shape)}. Draw on the annotation with the chart's lasso "
        "(a polygon), box select (a box) or a click (brush / smart region; pick *Pan* in the "
        "chart's toolbar first: the chart takes clicks only in that mode)."
    )
    fix = st.columns(4)
    fix[0].button(
        "Take the model's segment",
        key="take_model",
        disabled=source is None,
        on_click=lambda: _change(
            cursor,
            lambda: store.take_model(
                image_id,
                sid,
                source=source,
                take_class=ss.get("take_class", False),
                version=version,
            ),
        ),
        help="Replace the mask by the predicted segment overlapping it most.",
    )
    fix[0].checkbox("and its class", key="take_class")
    fix[1].button(
        "Add drawn pixels", key="paint_add", on_click=_paint, args=(cursor, version, "add", False)
    )
    fix[1].button(
        "Erase drawn pixels",
        key="paint_remove",
        on_click=_paint,
        args=(cursor, version, "remove", False),
    )
    fix[1].number_input("Brush radius", 0, 50, 3, key="review_brush")
    fix[2].button(
        "Smart region: add",
        key="region_add",
        on_click=_paint,
        args=(cursor, version, "add", True),
        help="GrabCut from the clicked point or the box: the object there joins it.",
    )
    fix[2].button(
        "Smart region: subtract",
        key="region_remove",
        on_click=_paint,
        args=(cursor, version, "remove", True),
    )
    others = {
        f"{s.id} · {store.category_name(s.category_id)}": s
        for s in store.image_state(image_id).active().values()
        if s.id != sid
    }
    if others:
        pick = fix[3].selectbox("Merge with", list(others), key=f"merge_{image_id}_{sid}")
        other = others[pick]
        fix[3].button(
            "Merge into this",
            key="merge",
            on_click=lambda: _change(
                cursor,
                lambda: store.merge(
                    image_id, sid, other.id, versions={sid: version, other.id: other.version}
                ),
            ),
        )
    split = st.columns(2)
    split[0].button(
        "Split along the model's instances",
        key="split_model",
        disabled=source is None or not thing,
        on_click=_split,
        args=(cursor, version, False),
    )
    split[1].button(
        "Split along the drawn line",
        key="split_line",
        disabled=not thing,
        on_click=_split,
        args=(cursor, version, True),
    )


def _missing_tools(row, cursor, version) -> None:
    image_id, _, pid = cursor
    names = {f"{c['name']} ({cid})": cid for cid, c in store.categories.items()}
    labels = list(names)
    model_cat = _int(row["category_id"])
    default = next((k for k, v in names.items() if v == model_cat), labels[0])
    cols = st.columns([2, 1, 1, 1])
    class_key = f"missing_class_{image_id}_{pid}"
    cols[0].selectbox(
        "Class of the new segment", labels, index=labels.index(default), key=class_key
    )
    use_drawn = cols[0].checkbox("Use the drawn polygon as its mask", key="missing_drawn")

    def add():
        mask = None
        if use_drawn:
            shape = _shape(cursor)
            if shape is None:
                raise UserError("draw the object's outline with the lasso first")
            mask = rv.shape_mask(shape, store.gt_ids(image_id).shape, ss.get("review_brush", 3))
        return store.add_missed(
            image_id,
            pid,
            source=source,
            category_id=names[ss[class_key]],
            mask=mask,
            version=version,
        )

    cols[1].button(
        "Add as a new segment",
        key="add_missed",
        type="primary",
        on_click=lambda: _change(cursor, add, advance=True),
    )
    cols[2].button(
        "Not an object",
        key="dismiss",
        on_click=lambda: _change(
            cursor,
            lambda: store.dismiss_missing(image_id, pid, source=source, version=version),
            advance=True,
        ),
    )
    cols[3].button(
        "Undo",
        key="undo",
        icon=":material/undo:",
        on_click=_undo,
        disabled=store.history_size() == 0,
    )


@st.fragment
def review_panel() -> None:
    started = time.perf_counter()
    ranked = store.ranked(source)
    filters = st.columns([1, 1.5, 2, 1])
    only_open = filters[0].toggle("Only open", key="review_only_open")
    show = filters[1].radio("Show", list(SHOW), key="review_show", horizontal=True)
    categories = sorted(ranked["category"].unique()) if len(ranked) else []
    chosen = filters[2].multiselect(
        "Classes", categories, key="review_classes", placeholder="all classes"
    )
    filters[3].toggle("Next after a decision", value=True, key="review_advance")
    view = ranked
    if only_open:
        view = view[view["status"] == ""]
    if SHOW[show]:
        view = view[view["kind"].isin(SHOW[show])]
    if chosen:
        view = view[view["category"].isin(chosen)]
    view = view.reset_index(drop=True)
    _table(view)
    if view.empty:
        st.success("Nothing left to review with these filters.", icon=":material/done_all:")
        return
    keys = list(
        zip(view["image_id"].astype(str), view["kind"].astype(str), view["ref_id"].astype(int))
    )
    cursor = tuple(ss.get("review_cursor") or ())
    if cursor not in keys:
        # Filtered out (decided, with "only open") or a new session: the next open item.
        nxt = store.next_item(
            source,
            after=cursor or None,
            only_open=True,
            kinds=SHOW[show],
            categories=[int(v) for v in view["category_id"].unique()],
        )
        cursor = _cursor_of(nxt) if nxt is not None and _cursor_of(nxt) in keys else keys[0]
    ss["review_cursor"] = cursor
    at = keys.index(cursor)

    nav = st.columns([1, 1, 4])
    nav[0].button(
        "Previous",
        icon=":material/arrow_back:",
        key="prev",
        disabled=at == 0,
        on_click=lambda: ss.update(review_cursor=keys[at - 1]),
    )
    nav[1].button(
        "Next",
        icon=":material/arrow_forward:",
        key="next",
        disabled=at + 1 >= len(keys),
        on_click=lambda: ss.update(review_cursor=keys[at + 1]),
    )
    nav[2].caption(f"Item {at + 1} of {len(keys)}")

    row = view.iloc[at]
    image_id, kind, ref = cursor
    version = _int(row["version"]) or 0
    notice = ss.pop("review_notice", None)
    if notice:
        getattr(st, notice[0])(notice[1])
    try:
        if kind == MISSING:
            proposal, _ = store.missing_proposal(image_id, ref, source=source)
            st.caption(
                f"A possible **missing object**: {who} sees a {row['category']} here that "
                "matches no annotated segment."
            )
            _metrics(row)
            _views(row, image_id, None, proposal)
            _missing_tools(row, cursor, version)
        else:
            _metrics(row)
            _views(row, image_id, ref, None)
            _segment_tools(row, cursor, version)
    except UserError as err:
        st.error(str(err), icon=":material/error:")
    ss["review_server_s"] = time.perf_counter() - started


review_panel()

# -- export ------------------------------------------------------------------------------------

st.subheader("Export")
st.caption(
    "A complete COCO-panoptic data set (all splits, images copied) with this split's labels "
    "corrected, plus `review_report.csv` and `.json` listing every decision and edit."
)
ex = st.columns([3, 1, 1])
out_dir = ex[0].text_input(
    "Export folder", value=str(workdir / "exports" / f"{root.name}-reviewed"), key="export_dir"
)
overwrite = ex[1].checkbox("Replace an earlier export", key="export_overwrite")
if ex[2].button("Export", type="primary", icon=":material/save:", key="export"):
    try:
        result = store.export(out_dir, overwrite=overwrite)
        ss["review_export"] = str(result.report_path)
        st.success(
            f"Exported to `{result.root}`: {result.images_changed} images changed, "
            f"{result.segments_relabelled} relabelled, {result.segments_added} added, "
            f"{result.segments_removed} removed, {result.segments_dropped} made VOID; "
            f"{result.changes} changes in the report. Fine-tune on it from the Train page.",
            icon=":material/check_circle:",
        )
    except UserError as err:
        st.error(str(err), icon=":material/error:")
report = ss.get("review_export")
if report and Path(report).is_file():
    st.download_button(
        "Download the review report (CSV)",
        Path(report).read_bytes(),
        file_name="review_report.csv",
        mime="text/csv",
        key="download_report",
    )
