"""Evaluate: run `pdl evaluate` as a background job, then analyse its results per class, drill down
to the worst images and their TP / FP / FN segments, and compare two models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from panoptic_deeplab import jobs as joblib
from panoptic_deeplab.app import state
from panoptic_deeplab.app.components import (
    error_analysis,
    figures,
    joblog,
    result_views,
    store_repair,
    why_tab,
)
from panoptic_deeplab.app.components import eval_results as er
from panoptic_deeplab.errors import UserError
from panoptic_deeplab.evaluation.results import EvaluationResult, PredictionSource
from panoptic_deeplab.prediction_sets import PredictionSet
from panoptic_deeplab.sqlite_store import DamagedStoreError

st.title("Evaluate")
st.caption(
    "PQ / SQ / RQ per class, mIoU and AP of a model or of any model's prediction files on a data "
    "set split, with a drill-down from a class to its worst images and the error type of every "
    "segment."
)

settings = state.settings()
results_dir = settings.results_dir
try:
    store = joblib.JobStore(settings.workdir)
except DamagedStoreError as err:  # evaluations run as jobs: named, with its repair, first
    repair = state.session().repair_jobs
    if not store_repair.offer(err, repair, "an empty job list", key="repair_jobs"):
        st.stop()
    store = joblib.JobStore(settings.workdir)
models = state.known_models()


@st.cache_resource(show_spinner=False, max_entries=4, ttl=300)
def open_reader(root: str, split: str):
    from panoptic_deeplab.datasets.readers import open_dataset

    return open_dataset(root, split)


@st.cache_data(show_spinner=False, max_entries=16)
def load_result(path: str, mtime: float) -> EvaluationResult:
    return EvaluationResult.load(path)


def _load(path: Path) -> EvaluationResult | None:
    try:
        return load_result(str(path), path.stat().st_mtime)
    except OSError as err:
        st.error(f"{path}: cannot read these results ({err}). Delete the file and evaluate again.")
    except UserError as err:
        st.error(str(err))
    return None


@st.cache_resource(show_spinner=False, max_entries=4, ttl=300)
def _open_predictions(source: PredictionSource, root: str, split: str):
    return PredictionSet.from_source(source, open_reader(root, split).spec)


def open_predictions(result: EvaluationResult):
    """The prediction set a result was computed from, opened once (its JSON is read on use)."""
    return _open_predictions(result.predictions, result.dataset, result.split)


# -- run an evaluation --------------------------------------------------------------------------


def _lines(text: str) -> str:
    """A library message's line breaks kept in Markdown (each problem on its own line)."""
    return "  \n".join(line.strip() for line in text.splitlines())


def check_inputs(model_path: Path, data_root: Path, split: str) -> None:
    """What `pdl evaluate` checks first, in a second and without TensorFlow: the data set opens and
    uses the model's classes (names and ids). Raises a UserError with the library's message."""
    from panoptic_deeplab.bundle import read_bundle_metadata
    from panoptic_deeplab.datasets.class_check import require_matching_classes
    from panoptic_deeplab.datasets.readers import open_dataset

    open_dataset(data_root, split)  # a folder that is no data set says so first
    spec = read_bundle_metadata(model_path)[1]
    require_matching_classes(spec, data_root, split, state.model_label(model_path))


last_job = None
if st.session_state.get("eval_job") is not None:
    try:
        last_job = store.refresh(st.session_state["eval_job"])
    except UserError:
        st.session_state.pop("eval_job", None)
problem = st.session_state.get("eval_problem")


def _submit(argv: list[str], name: str, out: Path) -> None:
    """Start `pdl evaluate` as a job; the page follows it and selects its result when done."""
    results_dir.mkdir(parents=True, exist_ok=True)
    job = store.submit(argv, name=name)
    st.session_state["eval_job"] = job.id
    st.session_state["eval_out"] = str(out)
    st.session_state["eval_seen"] = None


def _select_cached(inputs: tuple, out: Path | None) -> None:
    """New settings select their cached result (once), and say so while it exists."""
    if st.session_state.get("_eval_inputs") != inputs:
        st.session_state["_eval_inputs"] = inputs
        if out is not None and out.is_file():
            st.session_state["eval_pick"] = str(out)
    if out is not None and out.is_file():
        st.success(
            f"A result for these settings exists ({out.name}); it is selected below. "
            "Evaluate again to refresh it."
        )


def _data_inputs(columns) -> tuple[str, Path, str, int]:
    data_text = columns[0].text_input(
        "Data set root", value=str(settings.data or ""), key="eval_data"
    )
    split = columns[1].selectbox("Split", ["val", "train", "test"], key="eval_split")
    limit = columns[2].number_input("Images (0 = all)", 0, 100_000, 0, key="eval_limit")
    return data_text, Path(data_text).expanduser(), split, int(limit)


def _require_folder(data_root: Path) -> None:
    if not data_root.is_dir():
        raise UserError(
            f"{data_root}: no such data set folder. Give the root of a COCO-panoptic or "
            "Cityscapes set."
        )


def model_form() -> None:
    """A model bundle on a split, optionally with oracles."""
    c = st.columns([1.2, 2, 0.8, 0.8])
    model_name = c[0].selectbox("Model", list(models), key="eval_model")
    data_text, data_root, split, limit = _data_inputs(c[1:])
    with_oracles = st.checkbox(
        "With oracles (which head costs the PQ: semantic, center, offset, all)",
        value=True,
        key="eval_oracles",
    )
    oracles = error_analysis.ORACLES if with_oracles else ""
    model_path = models[model_name]
    out = (
        er.result_path(results_dir, model_path, data_root, split, limit, oracles, label=model_name)
        if data_text
        else None
    )
    _select_cached((model_name, data_text, split, limit, oracles), out)
    if st.button("Evaluate", type="primary", key="eval_start", disabled=not data_text):
        st.session_state.pop("eval_problem", None)
        try:
            _require_folder(data_root)
            check_inputs(model_path, data_root, split)
            argv = er.evaluate_argv(model_path, data_root, split, limit, out, oracles)
            _submit(argv, f"{model_name} on {data_root.name}/{split}", out)
        except UserError as err:
            st.session_state["eval_problem"] = (f"{model_name} on {data_text} ({split})", str(err))
        st.rerun()


NEW_SET = "New prediction set…"


def prediction_set_form() -> None:
    """Any model's predictions from files (COCO panoptic: a JSON and its PNG folder), named and
    remembered in the workdir."""
    from panoptic_deeplab.prediction_sets import default_name

    known = er.known_prediction_sets(settings.workdir)
    # Raw deeplab2 sets (remembered by Inspect) are evaluated with the command, not this form.
    known = {k: v for k, v in known.items() if v.get("format", "coco_panoptic") == "coco_panoptic"}
    if known:
        pick = st.selectbox("Prediction set", [*known, NEW_SET], key="eval_pred_pick")
        if state.session().is_new("eval_pred_pick", pick) and pick != NEW_SET:
            st.session_state["eval_pred_json"] = known[pick].get("json") or ""
            st.session_state["eval_pred_folder"] = known[pick]["folder"]
            st.session_state["eval_pred_name"] = pick
    c = st.columns([2, 2, 1.2])
    json_text = (
        c[0]
        .text_input(
            "Predictions JSON (COCO panoptic)",
            key="eval_pred_json",
            help="As panopticapi, detectron2's COCOPanopticEvaluator, mmdetection or `pdl predict` "
            "write it: annotations with image_id, file_name and segments_info (optional 'score').",
        )
        .strip()
    )
    folder_text = (
        c[1]
        .text_input("PNG folder (empty: the JSON's path without .json)", key="eval_pred_folder")
        .strip()
    )
    json_path = Path(json_text).expanduser() if json_text else None
    folder = Path(folder_text).expanduser() if folder_text else None
    folder = folder or (json_path.with_suffix("") if json_path else None)
    default = default_name(folder, json_path) if folder else ""
    name = c[2].text_input("Name", key="eval_pred_name", placeholder=default).strip() or default
    c = st.columns([2, 0.8, 0.8])
    data_text, data_root, split, limit = _data_inputs(c)
    ready = bool(data_text and folder)
    out = None
    if ready:
        stamp = er.prediction_stamp(json_path, folder)
        out = er.result_path(results_dir, folder, data_root, split, limit, label=name, stamp=stamp)
    _select_cached((json_text, folder_text, name, data_text, split, limit), out)
    if st.button("Evaluate", type="primary", key="eval_start", disabled=not ready):
        st.session_state.pop("eval_problem", None)
        try:
            from panoptic_deeplab.datasets.readers import open_dataset

            _require_folder(data_root)
            spec = open_dataset(data_root, split).spec
            predictions = PredictionSet.open(spec, predictions=json_path, folder=folder, name=name)
            json_path, folder = predictions.json_path, predictions.folder
            er.remember_prediction_set(settings.workdir, predictions.name, json_path, folder)
            argv = er.predictions_argv(
                json_path, folder, predictions.name, data_root, split, limit, out
            )
            _submit(argv, f"{predictions.name} on {data_root.name}/{split}", out)
        except UserError as err:
            st.session_state["eval_problem"] = (f"{name} on {data_text} ({split})", str(err))
        st.rerun()


with st.expander(
    "Run an evaluation",
    expanded=not er.list_results(results_dir)
    or bool(problem)
    or (last_job is not None and last_job.state != joblib.SUCCEEDED),
):
    # No help icon here: its "Help for ..." button would share the Evaluate button's name.
    what = st.radio(
        "What to evaluate",
        ["a model", "a prediction set"],
        horizontal=True,
        key="eval_what",
        captions=["a bundle", "any model's prediction files (detectron2, mmdetection, ...)"],
    )
    if what == "a prediction set":
        prediction_set_form()
    elif not models:
        st.warning(
            "No model yet: start the app with `pdl app --model PATH/TO/BUNDLE`, or train one on "
            "the Train page."
        )
    else:
        model_form()

problem = st.session_state.get("eval_problem")
if problem:
    st.error(f"**Cannot evaluate {problem[0]}.**\n\n{_lines(problem[1])}", icon=":material/error:")


@st.fragment(run_every=2.0)
def job_panel() -> None:
    """The evaluation this session started: its progress while it runs, then its outcome (a failure
    with the job's own message) until another one starts."""
    job_id = st.session_state.get("eval_job")
    if job_id is None:
        return
    try:
        job = store.refresh(job_id)
    except UserError:
        st.session_state.pop("eval_job", None)
        return
    if last_job is not None and job.state != last_job.state:
        st.rerun(
            scope="app"
        )  # the page below was drawn for the old state: redraw it all, not just this panel
    log = store.read_log(job, 4000)
    if job.state == joblib.RUNNING:
        earlier = st.session_state.get("eval_phase")
        phase, fraction, text = er.job_progress(
            log, earlier[1] if earlier and earlier[0] == job.id else None
        )
        st.session_state["eval_phase"] = (job.id, phase)  # the bar only moves forward
        st.progress(fraction, text=f"{job.name} — {text}")
        if st.button("Cancel", key="eval_cancel"):
            store.cancel(job.id)
            st.rerun()
        return
    if job.state == joblib.SUCCEEDED:
        if (
            st.session_state.get("eval_seen") != job.id
        ):  # select the new result once, then leave the choice to the user
            st.session_state["eval_seen"] = job.id
            st.session_state["eval_pick"] = st.session_state.get("eval_out")
            st.rerun(scope="app")
    elif job.state == joblib.CANCELLED:
        st.info(f"Evaluation cancelled: {job.name}.")
    else:
        st.error(
            f"**Evaluation failed: {job.name}.**\n\n{_lines(job.message)}", icon=":material/error:"
        )
        with st.expander("Job log"):
            st.code(
                joblog.clean_log(log[-3000:])[0] or "(empty log)", language=None, wrap_lines=True
            )


job_panel()

# -- choose a result ----------------------------------------------------------------------------

available = er.list_results(results_dir)
if not available:
    st.info(
        "No evaluation yet: run one above. Results are kept in "
        f"`{results_dir}` and reused while the model and data set are unchanged."
    )
    st.stop()
labels, loaded = {}, {}
for path in available:
    data = _load(path)
    if data is not None:
        loaded[str(path)] = data
        labels[str(path)] = er.describe(data, path, er.source_label(data, state.model_label))
if not labels:
    st.stop()
picked = st.session_state.pop("eval_pick", None)
if picked in labels:  # a new evaluation or a cached one for new settings: shown, not just announced
    st.session_state["eval_result"] = picked
if st.session_state.get("eval_result") not in labels:
    st.session_state["eval_result"] = next(iter(labels))
choice = st.selectbox(
    "Result",
    list(labels),
    index=state.index_in_use("eval_result", list(labels)),
    format_func=labels.get,
    key="eval_result",
)
if problem:
    st.warning(
        f"The evaluation of {problem[0]} did not start: the result shown is an earlier one, "
        f"{labels[choice]}.",
        icon=":material/history:",
    )
elif last_job is not None and last_job.state in (joblib.RUNNING, joblib.FAILED, joblib.CANCELLED):
    doing = {"running": "is still running", "failed": "failed", "cancelled": "was cancelled"}[
        last_job.state
    ]
    st.warning(
        f"The evaluation you started ({last_job.name}) {doing}: the result shown is an earlier "
        f"one, {labels[choice]}.",
        icon=":material/history:",
    )
result = _load(Path(choice))
class_names = [r.name for _, r in sorted(result.panoptic.per_class.items())]

tab_classes, tab_why, tab_drill, tab_compare = st.tabs(
    ["Per class", "Why (oracles, errors)", "Drill down", "Compare models"]
)

# -- per-class analysis -------------------------------------------------------------------------

with tab_classes:
    numbers = er.summary(result)
    cols = st.columns(len(numbers))
    for col, (name, value) in zip(cols, numbers.items()):
        col.metric(name, er.shown(value), help=er.METRIC_HELP.get(name))
    table = er.class_table(result)
    st.markdown("**Per class** (click a row to drill down; click a header to sort)")
    event = st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        key="class_table",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "id": st.column_config.NumberColumn("id", width="small"),
            "kind": st.column_config.TextColumn("thing/stuff", width="small"),
            "PQ": st.column_config.ProgressColumn("PQ", min_value=0, max_value=100, format="%.1f"),
            "SQ": st.column_config.NumberColumn("SQ", format="%.1f"),
            "RQ": st.column_config.NumberColumn("RQ", format="%.1f"),
            "IoU": st.column_config.NumberColumn("IoU", format="%.1f"),
            "AP": st.column_config.TextColumn(
                "AP (COCO)", help="Instance AP of the class, COCO style; – for stuff classes"
            ),
        },
    )
    rows = event.selection.rows if event is not None and hasattr(event, "selection") else []
    if rows and rows != st.session_state.get("_class_rows"):  # a new click, not a stale selection
        st.session_state["drill_class"] = str(table.iloc[rows[0]]["class"])
    st.session_state["_class_rows"] = rows
    kind_colors = ["#1e88e5" if k == "thing" else "#8d6e63" for k in table["kind"]]
    c1, c2 = st.columns(2)
    c1.plotly_chart(
        figures.bar_chart(
            table["class"],
            table["PQ"].fillna(0),
            title="PQ per class (blue: things, brown: stuff)",
            colors=kind_colors,
            yaxis="PQ",
        ),
        key="pq_bars",
    )
    c2.plotly_chart(
        figures.bar_chart(
            table["class"],
            table["IoU"].fillna(0),
            title="IoU per class",
            colors=kind_colors,
            yaxis="IoU",
        ),
        key="iou_bars",
    )
    normalize = st.toggle(
        "Normalise the confusion matrix per ground-truth row", value=True, key="cm_norm"
    )
    st.markdown("**Semantic confusion matrix** (rows: ground truth, columns: prediction)")
    st.plotly_chart(
        figures.confusion_figure(
            np.asarray(result.semantic.confusion), class_names, normalize=normalize
        ),
        key="confusion",
    )
    ap_rows = [
        {"style": style, "AP": er.shown(er.percent(r.ap)), "AP50": er.shown(er.percent(r.ap50))}
        for style, r in result.instance.items()
    ]
    if ap_rows:
        st.markdown("**Instance AP** (things)")
        st.dataframe(pd.DataFrame(ap_rows), hide_index=True)

# -- which head costs the PQ, where the PQ goes ----------------------------------------------------

with tab_why:
    why_tab.render(result, open_reader, open_predictions)

# -- drill down ---------------------------------------------------------------------------------

with tab_drill:
    names = list(table["class"])
    st.session_state.setdefault(
        "drill_class", names[int(np.nanargmin(table["PQ"].fillna(np.inf)))] if names else None
    )
    class_label = st.selectbox(
        "Class", names, index=state.index_in_use("drill_class", names), key="drill_class"
    )
    class_id = int(table.loc[table["class"] == class_label, "id"].iloc[0])
    worst = er.worst_images(result, class_id)
    if worst.empty:
        st.info(
            f"No image of this split holds {class_label}, in the ground truth or the prediction."
        )
    else:
        st.markdown(
            f"**Images with {class_label}, worst first** (errors = missed + false segments of "
            "this class)"
        )
        pick = st.dataframe(
            worst.drop(columns="index"),
            hide_index=True,
            width="stretch",
            key="worst_table",
            on_select="rerun",
            selection_mode="single-row",
        )
        picked_rows = pick.selection.rows if pick is not None and hasattr(pick, "selection") else []
        st.session_state.setdefault("drill_image", worst["image"].iloc[0])
        if picked_rows and picked_rows != st.session_state.get("_image_rows"):
            st.session_state["drill_image"] = worst["image"].iloc[picked_rows[0]]
        st.session_state["_image_rows"] = picked_rows
        if st.session_state["drill_image"] not in set(worst["image"]):
            st.session_state["drill_image"] = worst["image"].iloc[0]
        images = list(worst["image"])
        image_name = st.selectbox(
            "Image", images, index=state.index_in_use("drill_image", images), key="drill_image"
        )
        record = result.per_image[int(worst.loc[worst["image"] == image_name, "index"].iloc[0])]
        only_class = st.toggle(f"Highlight only {class_label}", value=True, key="drill_only")
        focus = class_id if only_class else None

        try:
            image, gt, pred = result_views.image_views(
                result, record, open_reader, open_predictions
            )
        except UserError as err:
            st.error(str(err))
            st.stop()

        def hover_for(label_map, by_id):
            def hover(ys, xs):
                ids = label_map[ys, xs]
                rows = []
                for v in ids.tolist():
                    s = by_id.get(v)
                    if s is None:
                        rows.append(["void", "", "", "", ""])
                        continue
                    cid = s.category_id
                    rows.append(
                        [
                            class_names[cid] if 0 <= cid < len(class_names) else cid,
                            v,
                            er.STATUS_LABELS.get(s.status, s.status),
                            er.REASONS.get(s.reason, ""),
                            f"{s.iou or 0:.2f}",
                        ]
                    )
                return np.asarray(rows, dtype=object), (
                    "%{customdata[0]} (segment %{customdata[1]})<br>"
                    "%{customdata[2]} %{customdata[3]}<br>IoU %{customdata[4]}"
                )

            return hover

        gt_pic, gt_by_id = er.status_picture(image, gt, record.gt_segments, focus)
        pred_pic, pred_by_id = er.status_picture(image, pred, record.pred_segments, focus)
        left, right = st.columns(2)
        left.plotly_chart(
            figures.image_figure(gt_pic, hover_for(gt, gt_by_id), title="Ground truth"),
            key="drill_gt",
        )
        right.plotly_chart(
            figures.image_figure(pred_pic, hover_for(pred, pred_by_id), title="Prediction"),
            key="drill_pred",
        )
        st.html(
            " ".join(
                '<span style="margin-right:14px"><span style="display:inline-block;'
                f"width:12px;height:12px;"
                f'background:rgb{er.STATUS_COLORS[s]}"></span> {er.STATUS_LABELS[s]}</span>'
                for s in ("matched", "missed", "false_positive", "ignored")
            )
        )
        st.dataframe(
            er.segment_rows(record, class_names, focus),
            hide_index=True,
            width="stretch",
            key="drill_rows",
        )

# -- compare two models -------------------------------------------------------------------------

with tab_compare:
    if len(labels) < 2:
        st.info(
            "Evaluate a second model (for example a fine-tuned one) on the same split to compare."
        )
    else:
        keys = list(labels)
        pair = er.default_pair(loaded, choice, state.base_of)
        if st.session_state.get("_cmp_for") != choice:  # a new result: A = its base, B = it
            st.session_state["_cmp_for"] = choice
            st.session_state["cmp_a"], st.session_state["cmp_b"] = pair
        c1, c2 = st.columns(2)
        # This tab is often closed when the pair is set: the pickers' default index is the pair
        # in use, so the browser draws them right whenever the tab is opened.
        a = c1.selectbox(
            "A (base)",
            keys,
            index=state.index_in_use("cmp_a", keys),
            format_func=labels.get,
            key="cmp_a",
        )
        b = c2.selectbox(
            "B (new)",
            keys,
            index=state.index_in_use("cmp_b", keys),
            format_func=labels.get,
            key="cmp_b",
        )
        ra, rb = _load(Path(a)), _load(Path(b))
        name_a = er.source_label(ra, state.model_label)
        name_b = er.source_label(rb, state.model_label)
        if (ra.dataset, ra.split) != (rb.dataset, rb.split):
            st.warning(
                "These results come from different data sets or splits; the deltas mix two test "
                "sets."
            )
        st.caption(
            f"Changes read **B − A**: {name_b} minus {name_a} (points; positive = B is better)."
        )
        deltas = er.compare(ra, rb)
        sa, sb = er.summary(ra), er.summary(rb)
        cols = st.columns(4)
        for col, name in zip(cols, ("PQ", "PQ things", "PQ stuff", "mIoU")):
            va, vb = sa.get(name), sb.get(name)
            col.metric(
                f"{name} of B ({name_b})",
                "–" if vb is None else f"{vb:.1f}",
                None if va is None or vb is None else f"{vb - va:+.1f} vs A ({name_a})",
            )
        st.plotly_chart(
            figures.bar_chart(
                deltas["class"],
                deltas["Δ PQ"].fillna(0),
                title=f"Per-class PQ change: B ({name_b}) − A ({name_a}), points",
                colors=[
                    "#43a047" if (v or 0) >= 0 else "#e53935" for v in deltas["Δ PQ"].fillna(0)
                ],
                yaxis="Δ PQ",
            ),
            key="delta_bars",
        )
        st.dataframe(deltas, hide_index=True, width="stretch", key="delta_table")
