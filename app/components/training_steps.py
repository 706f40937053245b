"""The Inspect page's "Over training" section: pick a training job or workdir, slide over its saved
steps (training/history.py), and see the same image's semantic / centers / offsets / panoptic at
that step next to the final model."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import streamlit as st

from panoptic_deeplab.app.components import figures, model_io, views
from panoptic_deeplab.errors import UserError

STAGES = ("Semantic", "Centers", "Offsets", "Panoptic")


def training_runs(store) -> dict[str, Path]:
    """Workdirs of the app's training jobs (``store``: the session's JobStore), newest first, by
    display name."""
    runs: dict[str, Path] = {}
    try:
        jobs = store.list("train")
    except Exception:  # noqa: BLE001 - an unreadable job database must not break the page
        return runs
    for job in sorted(jobs, key=lambda j: j.created_at, reverse=True):
        path = Path(job.workdir)
        if path.is_dir() and path not in runs.values():
            runs[f"job {job.id}: {job.name}"] = path
    return runs


_SWAP = (
    threading.Lock()
)  # one run predictor per workdir, shared by sessions: one step's weights at a time


@st.cache_resource(show_spinner="Loading the run's model…", max_entries=2)
def load_run_predictor(workdir: str, step: int):
    """A Predictor for a run, built once from ``step``; other steps swap their weights in (no new
    trace per step, so sliding is fast)."""
    from panoptic_deeplab.inference import Predictor
    from panoptic_deeplab.training.history import load_step_bundle

    return Predictor(load_step_bundle(workdir, step))


def step_heads(
    workdir: str, step: int, prefix: str, digest: str, _image: np.ndarray, _first: int
) -> model_io.Heads:
    """Head outputs of one saved step (``prefix`` keys the cache to that file), kept in the app's
    byte-bounded cache."""
    return model_io.cached(
        ("step", workdir, step, prefix, digest),
        lambda: _step_heads(workdir, prefix, _image, _first),
        "Running the saved step",
    )


def _step_heads(workdir: str, prefix: str, _image: np.ndarray, _first: int) -> model_io.Heads:
    from panoptic_deeplab.training.checkpoints import restore_model_weights

    predictor = load_run_predictor(workdir, _first)
    with _SWAP:
        restore_model_weights(predictor.bundle.model, prefix)
        prediction = predictor(_image, return_raw=True)
    return model_io.Heads(
        np.asarray(prediction.semantic_probs, np.float32),
        np.asarray(prediction.center_heatmap, np.float32).reshape(_image.shape[:2]),
        np.asarray(prediction.offsets, np.float32),
        list(prediction.notes),
    )


def render(sess, image: np.ndarray, digest: str, page_model: str, knobs, opacity: float) -> None:
    """The section, below the Inspect views. The final model is the run's own bundle
    (``WORKDIR/model``) once it exists, else the page's model; ``knobs``: the sidebar's
    PostProcessOptions."""
    from panoptic_deeplab.bundle import is_bundle
    from panoptic_deeplab.postprocess import PostProcessOptions
    from panoptic_deeplab.training.history import list_snapshots

    try:
        runs = training_runs(sess.jobs)
    except Exception:  # noqa: BLE001 - an unreadable job database must not break the page
        runs = {}
    c = st.columns([1.4, 1.6])
    options = [*runs, "a workdir path…"]
    choice = c[0].selectbox("Training run", options, key="steps_run")
    if choice == "a workdir path…" or not runs:
        text = c[1].text_input(
            "Workdir",
            value=st.session_state.get("steps_workdir", ""),
            key="steps_workdir",
            placeholder="the --workdir of a pdl train run",
        )
        workdir = Path(text).expanduser() if text else None
    else:
        workdir = runs[choice]
        c[1].text_input("Workdir", value=str(workdir), disabled=True, key=f"steps_shown_{choice}")
    if workdir is None:
        st.info(
            "Pick a training job, or give the workdir of a `pdl train` run, to step through its "
            "saved checkpoints."
        )
        return
    snapshots = list_snapshots(workdir)
    if not snapshots:
        st.info(
            f"{workdir}: no saved step yet (a run saves every train.checkpoint_every steps and "
            "keeps train.keep_history of them)."
        )
        return
    steps = [s.step for s in snapshots]
    step = (
        steps[0]
        if len(steps) == 1
        else st.select_slider("Step", steps, value=steps[-1], key="steps_step")
    )
    prefix = next(s.prefix for s in snapshots if s.step == step)
    try:
        heads = step_heads(str(workdir), int(step), prefix, digest, image, steps[-1])
    except UserError as err:
        st.error(f"Step {step} cannot be loaded: {err}")
        return
    run = load_run_predictor(str(workdir), steps[-1])
    spec = run.spec
    # The sidebar's settings, with the run's own classes.
    options = PostProcessOptions.from_config(
        run.config, spec, **{k: getattr(knobs, k) for k in knobs.TUNABLE}
    )
    final_path = str(workdir / "model") if is_bundle(workdir / "model") else page_model
    final_heads = model_io.run_heads(final_path, digest, image)
    fused = model_io.fuse(f"{workdir}@{step}", digest, options, heads)
    final_fused = model_io.fuse(
        final_path, digest, knobs if final_path == page_model else options, final_heads
    )
    st.caption(
        f"Step {step} of {steps[-1]} saved ({len(steps)} steps kept), next to the final model "
        f"({Path(final_path).name}); both with the post-processing settings of the sidebar."
    )
    for stage in STAGES:
        left, right = st.columns(2)
        at_step = views.build_view(stage, image, heads, fused, spec, opacity)
        final = views.build_view(stage, image, final_heads, final_fused, spec, opacity)
        left.plotly_chart(
            figures.image_figure(at_step.overlay, title=f"{stage}, step {step}"),
            key=f"steps_{stage}_step",
        )
        right.plotly_chart(
            figures.image_figure(final.overlay, title=f"{stage}, final model"),
            key=f"steps_{stage}_final",
        )
