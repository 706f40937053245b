"""Inspect: run a model on one image and step through every head's output, click pixels to see how
they voted, and tune the post-processing live on the cached head outputs; or show a prediction
set's maps (any model's files) beside the ground truth (components/prediction_set_view)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
import streamlit as st

from panoptic_deeplab import model_card, visualize
from panoptic_deeplab.app import state
from panoptic_deeplab.app.components import downloads, figures, model_io, training_steps, views
from panoptic_deeplab.app.components.pixel_vote import PixelVote, explain_pixel
from panoptic_deeplab.app.components.uploads import (
    LoadedImage,
    read_image,
    read_image_file,
    safe_stem,
)
from panoptic_deeplab.errors import UserError

NO_SAMPLE = state.NO_SAMPLE


@dataclass
class Inputs:
    """What the top row chose: the image, whether it is an upload, and the model."""

    loaded: LoadedImage
    uploaded: bool
    model_name: str
    model_path: str
    card: model_card.ModelCard


def header() -> None:
    st.title("Inspect")
    st.caption(
        "Upload an image or pick a sample, then step through the model's outputs. Click a pixel to "
        "see where it voted; the post-processing knobs re-run only the grouping, not the network."
    )


def no_model() -> None:
    st.warning(
        "**No model yet.** The app was started without a model bundle and none ships in "
        "`assets/models/`. Train one (`pdl train --config synthetic/tiny ...`, or the Train page) "
        "and restart with `pdl app --model PATH/TO/BUNDLE`."
    )


def choose_inputs(sess: state.Session, models: dict) -> Inputs | None:
    """The uploader, the sample picker and the model picker; None when no image is usable."""

    def on_upload() -> None:
        sess.sample = NO_SAMPLE  # the picker shows that the upload, not a sample, is displayed

    def on_sample() -> None:
        if sess.sample != NO_SAMPLE and st.session_state.get(sess.upload_key) is not None:
            sess.upload_generation += 1  # a new uploader: empty

    top = st.columns([1.2, 1.2, 1])
    with top[0]:
        uploaded = st.file_uploader(
            "Upload an image",
            type=None,
            key=sess.upload_key,
            on_change=on_upload,
            help="PNG, JPEG, TIFF, BMP, WebP… Large images are downscaled for inspection.",
        )
    with top[1]:
        samples = model_io.available_samples(sess.settings.data)
        # The first sample is shown at once: a new user sees the demo model's output unasked.
        sess.set_default("sample", next(iter(samples)) if samples else NO_SAMPLE)
        if sess.sample not in (NO_SAMPLE, *samples):
            sess.sample = NO_SAMPLE
        sample_name = st.selectbox(
            "…or pick a sample",
            [NO_SAMPLE, *samples],
            key="sample",
            on_change=on_sample,
            format_func=lambda k: (
                f"{NO_SAMPLE} (showing the upload)" if k == NO_SAMPLE and uploaded else k
            ),
        )
    with top[2]:
        model_name = st.selectbox("Model", list(models), key="model")
        card = model_card.read_model_card(models[model_name])
        st.caption(f"**Trained on:** {card.domain}")
    model_path = str(models[model_name])
    sess.uses(model=model_path)

    loaded = None
    try:
        if uploaded is not None:
            loaded = read_image(uploaded.getvalue(), uploaded.name)
        elif sample_name != NO_SAMPLE:
            loaded = read_image_file(samples[sample_name])
    except UserError as err:
        st.error(f"**This file cannot be used.** {err}", icon=":material/broken_image:")
    if loaded is None:
        if uploaded is None:
            st.info("Upload an image or pick a sample to start.")
        return None
    if loaded.notice:
        st.info(loaded.notice, icon=":material/photo_size_select_large:")
    return Inputs(loaded, uploaded is not None, model_name, model_path, card)


def knobs_sidebar(sess: state.Session, defaults, model_path: str):
    """The post-processing knobs (sidebar), starting at the model's own settings; returns the
    options they apply."""
    model_values = {
        "pp_threshold": defaults.center_threshold,
        "pp_nms": defaults.nms_kernel,
        "pp_topk": defaults.keep_k_centers,
        "pp_stuff": defaults.stuff_area_limit,
    }
    if sess.is_new("knobs_for", model_path):
        st.session_state.update(model_values)

    with st.sidebar:
        st.subheader("Post-processing")
        # The knobs applied are the values these widgets return in this run (what their thumbs
        # show), and the caption repeats them: a shown and an applied value cannot drift apart.
        threshold = st.slider(
            "Center threshold",
            0.0,
            1.0,
            step=0.01,
            key="pp_threshold",
            help="Heatmap values at or below this are not centers.",
        )
        nms = st.select_slider(
            "NMS kernel",
            options=list(range(1, 52, 2)),
            key="pp_nms",
            help="A center must be the maximum of this window.",
        )
        topk = st.number_input("Keep top-k centers", 1, 1000, step=1, key="pp_topk")
        stuff = st.number_input(
            "Stuff area limit (px)",
            0,
            10_000_000,
            step=64,
            key="pp_stuff",
            help="Stuff classes with this many pixels or fewer become void (0 = off).",
        )
        st.button(
            "Reset to the model's settings",
            on_click=lambda: st.session_state.update(model_values),
        )
        knobs = defaults.replace(
            center_threshold=float(threshold),
            nms_kernel=int(nms),
            keep_k_centers=int(topk),
            stuff_area_limit=int(stuff),
        )
        st.caption(
            f"Applied: threshold {knobs.center_threshold:.2f}, "
            f"NMS {knobs.nms_kernel}×{knobs.nms_kernel}, top-{knobs.keep_k_centers}, "
            f"stuff limit {knobs.stuff_area_limit} px"
            + ("" if knobs == defaults else " (changed from the model's settings)")
        )
    return knobs


def summary(inputs: Inputs, fused, spec, scene_score: float, fuse_ms: float) -> None:
    height, width = inputs.loaded.array.shape[:2]
    segment_rows = views.segment_table(fused, spec)
    n_instances = sum(1 for row in segment_rows if row["kind"] == "thing" and row["instance"] > 0)
    st.caption(
        f"Showing **{inputs.loaded.name}** ({'upload' if inputs.uploaded else 'sample'}) with "
        f"model **{inputs.model_name}**."
    )
    cols = st.columns(5)
    cols[0].metric("Image", f"{width}×{height}")
    cols[1].metric("Centers", len(fused.center_points))
    cols[2].metric("Instances", n_instances)
    cols[3].metric("Post-processing", f"{fuse_ms:.0f} ms")
    reference = inputs.card.reference
    cols[4].metric(
        "Scene confidence",
        f"{scene_score:.2f}",
        help="Mean over pixels of the largest class probability. "
        + (
            f"On the model's own validation images: mean {reference['mean']:.2f}, 5th percentile "
            f"{reference['low']:.2f} ({reference.get('data', '')})."
            if reference
            else "This bundle has no reference figure to compare it with."
        ),
    )


def clamp_pixel(sess: state.Session, height: int, width: int) -> None:
    """The inspected pixel starts at the image's middle and stays inside the image."""
    sess.set_default("pixel_y", height // 2)
    sess.set_default("pixel_x", width // 2)
    sess.pixel_y = int(min(max(sess.pixel_y, 0), height - 1))
    sess.pixel_x = int(min(max(sess.pixel_x, 0), width - 1))


def decorate(fig, stage: str, fused, heads, spec, vote: PixelVote, show_vote: bool) -> None:
    """Centers on the center/offset/panoptic views; the clicked pixel's vote on every view."""
    if stage in ("Centers", "Offsets", "Panoptic") and len(fused.center_points):
        pts = fused.center_points
        figures.add_points(
            fig,
            pts[:, 0],
            pts[:, 1],
            labels=[f"{s:.2f}" for s in fused.center_scores],
            name="center",
            hover="center %{text}<br>x=%{x} y=%{y}<extra></extra>",
        )
    if stage == "Offsets":
        y0, x0, y1, x1 = figures.subsample_arrows(
            views.thing_mask(fused.semantic, spec), heads.offsets
        )
        figures.add_arrows(fig, y0, x0, y1, x1, name="offsets")
    if not show_vote:
        return
    figures.add_points(
        fig, [vote.y], [vote.x], color="#ffea00", symbol="circle-open", size=12, name="pixel"
    )
    figures.add_arrows(
        fig,
        [vote.y],
        [vote.x],
        [vote.vote[0]],
        [vote.vote[1]],
        color="#ffea00",
        width=2.5,
        name="vote",
        head=10,
    )
    if not spec.is_thing(int(fused.semantic[vote.y, vote.x])):
        return  # stuff joins no center
    if vote.center is not None:
        figures.add_arrows(
            fig,
            [vote.vote[0]],
            [vote.vote[1]],
            [vote.center[0]],
            [vote.center[1]],
            color="#00ff6a",
            width=1.5,
            name="joined center",
            head=8,
        )
    if vote.runner_up_index is not None:
        ry, rx = fused.center_points[vote.runner_up_index]
        figures.add_arrows(
            fig,
            [vote.vote[0]],
            [vote.vote[1]],
            [ry],
            [rx],
            color="#ff6e40",
            width=1,
            name="runner-up",
            head=6,
        )


def pixel_chart(sess: state.Session, fig, key: str, shape, zoom: bool) -> None:
    """A figure whose clicked grid point becomes the inspected pixel."""

    def on_select() -> None:
        pixel = figures.selected_pixel(st.session_state.get(key), shape)
        if pixel is not None:
            sess.pixel_y, sess.pixel_x = pixel
            sess.show_vote = True

    st.plotly_chart(
        fig,
        key=key,
        on_select=on_select,
        selection_mode="points",
        config={"scrollZoom": True, "displaylogo": False} if zoom else {"displaylogo": False},
    )


def heatmap_range(heatmap: np.ndarray) -> str:
    """What the centers view's colours span. The head is a regression, so a raw value may be
    below 0; the colours start at 0, and the caption says so rather than hide such values."""
    low, high = float(heatmap.min(initial=0.0)), float(heatmap.max(initial=0.0))
    text = f"raw center heatmap, 0 … {views.number(high, 3)}"
    if views.number(low, 3).startswith("-"):
        text += f" (its values go down to {views.number(low, 3)}; below 0 is drawn as 0)"
    return text


def main_view(sess, inputs: Inputs, stage, mode, opacity, heads, fused, spec, knobs, vote):
    image = inputs.loaded.array
    shape = image.shape[:2]
    view = views.build_view(stage, image, heads, fused, spec, opacity)
    if mode == "Overlay" or stage == "Input":
        fig = figures.image_figure(view.overlay, view.hover, title=stage)
        decorate(fig, stage, fused, heads, spec, vote, sess.show_vote)
        pixel_chart(sess, fig, f"chart_{stage}", shape, zoom=True)
    else:
        left, right = st.columns(2)
        with left:
            fig_in = figures.image_figure(image, view.hover, title="Input", height=None)
            pixel_chart(sess, fig_in, f"chart_in_{stage}", shape, zoom=False)
        with right:
            fig = figures.image_figure(view.alone, view.hover, title=stage)
            decorate(fig, stage, fused, heads, spec, vote, sess.show_vote)
            pixel_chart(sess, fig, f"chart_{stage}", shape, zoom=False)
    if stage == "Semantic":
        st.html(views.legend_html(spec, fused.semantic))
    elif stage == "Centers":
        st.caption(
            f"Colour: {heatmap_range(heads.center_heatmap)}. Markers: "
            f"the {len(fused.center_points)} centers kept after threshold "
            f"{knobs.center_threshold:.2f}, NMS {knobs.nms_kernel}×{knobs.nms_kernel} and "
            f"top-{knobs.keep_k_centers}, with their scores."
        )
    elif stage == "Offsets":
        st.caption(
            "Colour: direction and length of each thing pixel's offset (legend on the right); "
            "arrows: a sub-sampled set of offsets, from the pixel to where it votes for its center."
        )
    elif stage == "Panoptic":
        st.caption(
            "Each thing instance has its own shade of its class colour; white lines are segment "
            "borders."
        )
    return view


def pixel_panel(
    sess: state.Session, stage, shape, heads, fused, spec, vote: PixelVote, view
) -> None:
    """The inspected pixel: its class, probabilities, offset, vote and the center it joined, and a
    close-up around it where every pixel can be clicked."""
    height, width = shape
    if stage == "Offsets":
        st.image(
            visualize.offset_color_wheel(129),
            caption="Offset colour wheel: hue = direction "
            "(→ red, ↓ yellow-green, ← cyan, ↑ violet), saturation = length, white = 0.",
            width=160,
        )
    st.markdown("**Pixel**")
    c1, c2 = st.columns(2)
    c1.number_input("x", 0, width - 1, step=1, key="pixel_x")
    c2.number_input("y", 0, height - 1, step=1, key="pixel_y")
    if figures.grid_step(height, width) > 1:  # the big view's grid skips pixels: pick exactly here
        st.caption("Close-up: click any pixel")
        close = figures.close_up(view.overlay, sess.pixel_y, sess.pixel_x, view.hover)
        pixel_chart(sess, close, f"chart_close_{stage}", shape, zoom=False)
    sess.set_default("show_vote", True)
    st.checkbox("Draw its vote", key="show_vote")
    y, x = sess.pixel_y, sess.pixel_x
    label = int(fused.semantic[y, x])
    prob = heads.semantic_probs[y, x]
    best = np.argsort(prob)[::-1][:3]
    thing = spec.is_thing(label)
    rows = {
        "class": f"{views.class_name(spec, label)} ({'thing' if thing else 'stuff'})",
        "probability": views.number(prob[label], 3),
        "runner-up classes": ", ".join(
            f"{views.class_name(spec, int(c))} {views.number(prob[c], 2)}" for c in best[1:]
        ),
        "offset (dy, dx)": (
            f"({views.number(vote.offset[0], 2)}, {views.number(vote.offset[1], 2)})"
        ),
        "votes for (y, x)": f"({views.number(vote.vote[0], 1)}, {views.number(vote.vote[1], 1)})",
        "heatmap here": views.number(heads.center_heatmap[y, x], 3),
        "panoptic segment": int(fused.panoptic[y, x]),
    }
    if not thing:
        rows["grouping"] = "stuff pixel: not grouped (instance 0); its vote joins no center"
    elif vote.center is not None:
        rows["joined center"] = (
            f"#{vote.center_index} at {vote.center}, score "
            f"{views.number(fused.center_scores[vote.center_index], 2)}, "
            f"distance {views.number(vote.distance, 1)}"
        )
        rows["runner-up center"] = (
            f"#{vote.runner_up_index} at distance {views.number(vote.runner_up_distance, 1)} "
            f"(margin {views.number(vote.margin, 1)})"
            if vote.runner_up_index is not None
            else "none"
        )
    else:
        merged = views.class_name(spec, int(fused.panoptic[y, x]) // spec.label_divisor)
        rows["joined center"] = (
            "no center detected: all thing pixels of the image form one instance, which takes "
            f"the majority class ({merged})"
        )
    # A static table: long values wrap instead of being cut off at the column's edge.
    st.table(pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=list(rows)))


def _png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return buf.tobytes() if ok else b""


def download_row(inputs: Inputs, spec, digest, fused, knobs, defaults, stage, view) -> None:
    loaded = inputs.loaded
    stem = safe_stem(loaded.name)  # an upload's name may carry a path ("../../x.png")
    png_bytes, annotation = downloads.panoptic_files(
        loaded.name,
        stem,
        spec,
        inputs.model_name,
        prediction=model_io.predict(inputs.model_path, digest, loaded.array),
        fused=fused,
        knobs=knobs,
        model_knobs=defaults,
    )
    d = st.columns(3)
    d[0].download_button(
        "Panoptic PNG",
        png_bytes,
        annotation["annotations"][0]["file_name"],
        "image/png",
        help="COCO panoptic: segment ids 1..n (0 = void), id = R + 256 G + 256² B; the same file "
        "`pdl predict` writes (at the model's own post-processing settings).",
    )
    d[1].download_button(
        "Segments JSON",
        json.dumps(annotation, indent=1),
        f"{stem}_panoptic.json",
        "application/json",
        help="COCO-panoptic JSON (images, annotations with segments_info, categories), like "
        "`pdl predict`'s panoptic.json; `pdl pq` reads it.",
    )
    d[2].download_button(
        f"{stage} overlay PNG",
        _png(view.overlay),
        f"{stem}_{stage.lower()}_overlay.png",
        "image/png",
    )


def page() -> None:
    sess = state.session()
    header()
    what = st.radio(
        "Inspect",
        ["a model", "a prediction set"],
        horizontal=True,
        key="inspect_what",
        captions=["runs a bundle on an image", "any model's prediction files, no model run"],
    )
    if what == "a prediction set":
        from panoptic_deeplab.app.components import prediction_set_view

        prediction_set_view.render(sess.settings.workdir, str(sess.settings.data or ""))
        return
    models = sess.models()
    if not models:
        no_model()
        return
    inputs = choose_inputs(sess, models)
    if inputs is None:
        return
    try:
        predictor = model_io.load_predictor(inputs.model_path)
    except UserError as err:
        st.error(f"**The model cannot be loaded.** {err}")
        return
    spec = model_io.model_spec(predictor)
    st.caption(f"Network: {predictor.describe()}")
    image = inputs.loaded.array
    digest = model_io.image_digest(image)
    heads = model_io.run_heads(inputs.model_path, digest, image)
    for note in heads.notes:
        st.info(note)
    scene_score = model_card.scene_confidence(heads.semantic_probs)
    domain_warning = model_card.domain_warning(scene_score, inputs.card)
    if domain_warning:
        st.warning(domain_warning, icon=":material/travel_explore:")

    defaults = model_io.default_options(predictor)
    knobs = knobs_sidebar(sess, defaults, inputs.model_path)
    started = time.perf_counter()
    fused = model_io.fuse(inputs.model_path, digest, knobs, heads)
    fuse_ms = (time.perf_counter() - started) * 1000

    controls = st.columns([3, 1.3, 1.3])
    with controls[0]:
        stage = st.radio("Step", views.STAGES, horizontal=True, key="stage")
    with controls[1]:
        mode = st.radio("Layout", ["Overlay", "Side by side"], horizontal=True, key="layout")
    with controls[2]:
        opacity = st.slider("Opacity", 0.0, 1.0, 0.6, 0.05, key="opacity")
    summary(inputs, fused, spec, scene_score, fuse_ms)

    clamp_pixel(sess, *image.shape[:2])
    vote = explain_pixel(sess.pixel_y, sess.pixel_x, heads.offsets, fused.center_points)
    left, right = st.columns([2.6, 1.2])
    with left:
        view = main_view(sess, inputs, stage, mode, opacity, heads, fused, spec, knobs, vote)
    with right:
        pixel_panel(sess, stage, image.shape[:2], heads, fused, spec, vote, view)

    with st.expander("Over training: this image at any saved step of a run", expanded=False):
        training_steps.render(sess, image, digest, inputs.model_path, knobs, opacity)
    with st.expander(f"Segments ({len(np.unique(fused.panoptic))})", expanded=False):
        st.dataframe(
            pd.DataFrame(views.segment_table(fused, spec)), hide_index=True, width="stretch"
        )
    download_row(inputs, spec, digest, fused, knobs, defaults, stage, view)


page()
