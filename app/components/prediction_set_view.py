"""The Inspect page for a prediction set: any model's predictions of a data set split, read from
files by the library (panoptic_deeplab.prediction_sets), shown beside the ground truth with a
pixel inspector and a segment table. No model and no TensorFlow: the views are the files' maps,
so there are no head views (heatmap, offsets) and every caption says the view comes from files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from panoptic_deeplab import visualize
from panoptic_deeplab.app.components import figures, views
from panoptic_deeplab.app.components import prediction_set_picker as picker
from panoptic_deeplab.errors import UserError

PREFIX = "inspect_set"
INPUT, GROUND_TRUTH = "Input", "Ground truth"
PANOPTIC = "Panoptic (from files)"
RAW_STAGES = ("Semantic (from the raw PNGs)", "Instances (from the raw PNGs)")
SHOWN_PROBLEMS = 5


@st.cache_resource(show_spinner=False, max_entries=4, ttl=300)
def open_reader(root: str, split: str):
    from panoptic_deeplab.datasets.readers import open_dataset

    return open_dataset(Path(root).expanduser(), split)


@st.cache_resource(show_spinner=False, max_entries=4, ttl=300)
def open_matched(root: str, split: str, key: tuple, _choice: picker.SetChoice):
    """``(set, [(reader index, entry)], problems)``: the set opened and paired with the split once
    per choice and file stamp (``key``); a UserError is not kept, so a fixed file is read again."""
    reader = open_reader(root, split)
    predictions = picker.open_set(_choice, reader.spec)
    pairs, problems = predictions.match(reader)
    return predictions, pairs, problems


def _ground_truth(reader, index: int) -> np.ndarray | None:
    try:
        return np.asarray(reader.load_panoptic(index))
    except (UserError, OSError, KeyError, ValueError):
        return None  # a split without labels (test): the prediction is shown alone


def _segment_rows(prediction, spec) -> list[dict]:
    return [
        {
            "segment": s.id,
            "id in the file": s.file_id,
            "class": views.class_name(spec, s.train_id),
            "kind": "thing" if s.isthing else "stuff",
            "area": s.area,
            "score": views.MISSING if s.score is None else f"{s.score:.3f}",
        }
        for s in sorted(prediction.segments, key=lambda s: s.id)
    ]


def _panoptic_view(image, panoptic, spec, segments: dict, opacity: float, what: str):
    """A panoptic map blended on the image, its borders white; hover: class, segment, area,
    score (``segments``: panoptic value -> PredictedSegment, empty for the ground truth)."""
    _, overlay, area = views.panoptic_overlay(image, panoptic, spec, opacity)

    def hover(ys, xs):
        values = panoptic[ys, xs]
        names = [views.class_name(spec, int(v) // spec.label_divisor) for v in values]
        extra = []
        for v in values.tolist():
            seg = segments.get(v)
            score = seg.score if seg is not None else None
            extra.append(
                f"id in the file {seg.file_id}, score "
                f"{views.MISSING if score is None else f'{score:.3f}'}"
                if seg is not None
                else what
            )
        data = np.stack([names, values, area[ys, xs], extra], axis=1).astype(object)
        return data, (
            "class: %{customdata[0]}<br>segment %{customdata[1]} (%{customdata[2]} px)"
            "<br>%{customdata[3]}"
        )

    return overlay, hover


def _raw_view(image, prediction, spec, stage: str, opacity: float):
    """What deeplab2's raw PNGs hold, as read by the library: the class of each pixel (R through
    the class table) or its instance number (G, or G·256 + B)."""
    semantic = prediction.semantic
    instance = np.where(semantic >= 0, prediction.panoptic % spec.label_divisor, 0)
    if stage == RAW_STAGES[0]:
        colored = visualize.semantic_to_color(
            np.where(semantic < 0, spec.ignore_label, semantic), spec.colors, spec.ignore_label
        )
    else:
        colored = visualize.instance_map_to_color(instance)

    def hover(ys, xs):
        names = [views.class_name(spec, int(t)) for t in semantic[ys, xs]]
        data = np.stack([names, instance[ys, xs]], axis=1).astype(object)
        return data, "class: %{customdata[0]}<br>instance: %{customdata[1]}"

    return visualize.blend(image, colored, opacity), hover


def _chart(fig, key: str, shape) -> None:
    """A figure whose clicked grid point becomes the inspected pixel."""

    def on_select() -> None:
        pixel = figures.selected_pixel(st.session_state.get(key), shape)
        if pixel is not None:
            st.session_state[f"{PREFIX}_y"], st.session_state[f"{PREFIX}_x"] = pixel

    st.plotly_chart(
        fig,
        key=key,
        on_select=on_select,
        selection_mode="points",
        config={"scrollZoom": True, "displaylogo": False},
    )


def _pixel_table(prediction, gt, spec, y: int, x: int) -> None:
    value = int(prediction.panoptic[y, x])
    seg = next((s for s in prediction.segments if s.id == value), None)
    rows = {
        "predicted class (from files)": views.class_name(spec, value // spec.label_divisor),
        "predicted segment": (
            f"{value} (id {seg.file_id} in {prediction.png_path.name}, {seg.area} px)"
            if seg
            else "void (no segment in the file)"
        ),
        "score in the file": (
            views.MISSING if seg is None or seg.score is None else f"{seg.score:.3f}"
        ),
    }
    if gt is not None:
        truth = int(gt[y, x])
        rows["ground-truth class"] = views.class_name(spec, truth // spec.label_divisor)
        rows["ground-truth segment"] = str(truth)
    st.table(pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=list(rows)))


def render(workdir: Path, default_data: str) -> None:
    """The whole prediction-set view of the Inspect page."""
    c = st.columns([2, 1])
    st.session_state.setdefault(f"{PREFIX}_data", default_data)
    data_text = c[0].text_input("Data set root", key=f"{PREFIX}_data").strip()
    split = c[1].selectbox("Split", ["val", "train", "test"], key=f"{PREFIX}_split")
    choice = picker.choose(PREFIX, workdir)
    if not data_text or choice is None:
        st.info(
            "Give the data set the predictions are of and the prediction files (a COCO-panoptic "
            "JSON and its PNG folder, as `pdl predict`, detectron2 or mmdetection write them, or "
            "deeplab2's raw PNGs)."
        )
        return
    try:
        reader = open_reader(data_text, split)
        predictions, pairs, problems = open_matched(data_text, split, choice.key, choice)
    except UserError as err:
        picker.show_error(choice.name or "", err)
        return
    picker.remember(workdir, predictions)
    if problems:
        listed = "  \n".join(str(p) for p in problems[:SHOWN_PROBLEMS])
        more = len(problems) - SHOWN_PROBLEMS
        st.warning(
            f"**{len(problems)} problem(s) pairing {predictions.name} with {split}:**  \n{listed}"
            + (f"  \n… and {more} more (`pdl evaluate` lists them all)" if more > 0 else ""),
            icon=":material/warning:",
        )
    if not pairs:
        st.error(f"No image of split '{split}' has a prediction in {predictions.name}.")
        return
    entries = dict(pairs)
    index = st.selectbox(
        f"Image ({len(pairs)} with a prediction)",
        list(entries),
        format_func=lambda i: Path(reader[i].image_path).name,
        key=f"{PREFIX}_image",
    )
    example = reader[index]
    image = reader.load_image(index)
    gt = _ground_truth(reader, index)
    prediction, image_problems = predictions.read(entries[index], example.image_id, image.shape[:2])
    if image_problems:
        picker.show_error(predictions.name, "\n".join(str(p) for p in image_problems))
        return
    _show(predictions, prediction, image, gt, reader.spec, Path(example.image_path).name)


def _show(predictions, prediction, image, gt, spec, file_name: str) -> None:
    raw = predictions.format != "coco_panoptic"
    stages = [INPUT, PANOPTIC, *(RAW_STAGES if raw else ())]
    controls = st.columns([3, 1])
    stage = controls[0].radio("View", stages, index=1, horizontal=True, key=f"{PREFIX}_stage")
    opacity = controls[1].slider("Opacity", 0.0, 1.0, 0.6, 0.05, key=f"{PREFIX}_opacity")
    shape = image.shape[:2]
    where = predictions.folder if raw else predictions.json_path
    st.caption(
        f"**{file_name}** predicted by **{predictions.name}**, read from files ({where}); "
        "a prediction set has no head outputs, so there are no heatmap or offset views."
    )
    segments = {s.id: s for s in prediction.segments}
    if stage == INPUT:
        picture, hover = image, None
    elif stage == PANOPTIC:
        picture, hover = _panoptic_view(image, prediction.panoptic, spec, segments, opacity, "")
    else:
        picture, hover = _raw_view(image, prediction, spec, stage, opacity)
    left, right = st.columns(2)
    with left:
        _chart(figures.image_figure(picture, hover, title=stage), f"{PREFIX}_chart", shape)
    with right:
        if gt is None:
            st.info("This split has no ground truth for the image.")
        else:
            truth, hover = _panoptic_view(image, gt, spec, {}, opacity, "ground truth")
            _chart(figures.image_figure(truth, hover, title=GROUND_TRUTH), f"{PREFIX}_gt", shape)
    height, width = shape
    st.session_state.setdefault(f"{PREFIX}_y", height // 2)
    st.session_state.setdefault(f"{PREFIX}_x", width // 2)
    for axis, size in (("y", height), ("x", width)):
        key = f"{PREFIX}_{axis}"
        st.session_state[key] = int(min(max(st.session_state[key], 0), size - 1))
    st.markdown("**Pixel** (click a view)")
    c = st.columns([1, 1, 4])
    x = c[0].number_input("x", 0, width - 1, step=1, key=f"{PREFIX}_x")
    y = c[1].number_input("y", 0, height - 1, step=1, key=f"{PREFIX}_y")
    with c[2]:
        _pixel_table(prediction, gt, spec, int(y), int(x))
    with st.expander(f"Segments in the file ({len(prediction.segments)})", expanded=False):
        st.dataframe(pd.DataFrame(_segment_rows(prediction, spec)), hide_index=True)
