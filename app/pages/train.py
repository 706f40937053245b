"""Train: fine-tune a model bundle on a data set as a background job, watch its loss curves, cancel
or resume it, read its log, and compare the bundles it produced with their base.

Every job is a `pdl train` process started by panoptic_deeplab.jobs (no shell, validated
arguments), or, with "Run on: Slurm", a batch job on a Slurm cluster (panoptic_deeplab.jobs.slurm);
its records live in SQLite under the work directory, so they survive an app restart.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from panoptic_deeplab import jobs as joblib
from panoptic_deeplab import settings as product_settings
from panoptic_deeplab.app import state
from panoptic_deeplab.app.components import eval_results as er
from panoptic_deeplab.app.components import joblog, slurm_form, store_repair, views
from panoptic_deeplab.app.components.error_analysis import ORACLES
from panoptic_deeplab.config import available_configs
from panoptic_deeplab.errors import UserError
from panoptic_deeplab.review import finished_exports
from panoptic_deeplab.sqlite_store import DamagedStoreError

LOSS_COLUMNS = ("loss", "semantic_loss", "center_loss", "offset_loss")
EVAL_COLUMNS = ("pq", "sq", "rq", "miou")
STATE_ICONS = {
    joblib.QUEUED: ":material/schedule:",
    joblib.RUNNING: ":material/progress_activity:",
    joblib.SUCCEEDED: ":material/check_circle:",
    joblib.FAILED: ":material/error:",
    joblib.CANCELLED: ":material/cancel:",
}
NO_BASE = "none: train from scratch"
MIN_TRAIN_IMAGES = 20  # below this a fine-tune is warned about before it starts
OTHER_DATA = "other…"


@dataclass
class Form:
    """What the "New fine-tune" form returned."""

    submitted: bool
    base_path: str | None
    config: str
    data_label: str
    data_other: str
    name: str
    steps: int
    overrides: str
    gpu_ids: list[int]
    slurm: slurm_form.SlurmChoice | None


def header() -> None:
    st.title("Train")
    st.caption(
        "Fine-tune a model on a data set (for example a corrected export from the Review page). "
        "Each job runs `pdl train` as its own process; close the browser and it keeps going."
    )


def base_models(sess: state.Session) -> dict[str, str]:
    """Bases a fine-tune can start from, by label: the app's model, the shipped ones and the
    registered ones whose folders still exist."""
    models: dict[str, str] = {}
    default = [str(sess.settings.model)] if sess.settings.model else []
    for path in default + [str(p) for p in product_settings.shipped_models()]:
        models.setdefault(f"{Path(path).name}  ({path})", path)
    for rec in sess.registered():  # never a model whose folder is gone
        models.setdefault(state.job_model_name(rec.name, rec.job_id), rec.path)
    return models


def data_sets(sess: state.Session) -> dict[str, str]:
    """The app's data set and the Review page's exports, by label."""
    found: dict[str, str] = {}
    if sess.settings.data:
        data = str(sess.settings.data)
        found[f"{Path(data).name}  ({data})"] = data
    # Complete exports only: a killed export's half-written folder is never offered.
    for path in finished_exports(sess.settings.workdir / "exports"):
        found.setdefault(f"{path.name}  (review export)", str(path))
    return found


@st.cache_data(ttl=60, show_spinner=False)
def _gpus() -> list:
    return joblib.detect_gpus()  # nvidia-smi takes a moment; GPUs rarely come and go


def new_job_form(sess: state.Session, models: dict, datasets: dict) -> Form:
    gpus = _gpus()
    run_on = st.radio(
        "Run on",
        [slurm_form.THIS_MACHINE, slurm_form.SLURM],
        horizontal=True,
        key="run_on",
        help="Slurm: a batch job on the cluster, one tf.distribute worker per task.",
    )
    slurm = None
    with st.form("new_job"):
        st.subheader("New fine-tune")
        left, right = st.columns(2)
        with left:
            base_label = st.selectbox(
                "Base model",
                list(models) + [NO_BASE],
                key="base_model",
                help="Its weights initialise the new model (`--init-from`).",
            )
            data_label = st.selectbox(
                "Data set", list(datasets) + [OTHER_DATA], key="dataset_choice"
            )
            data_other = st.text_input(
                f"Data set folder (for '{OTHER_DATA}')",
                key="dataset_other",
                placeholder="/path/to/coco-panoptic-root",
            )
            name = st.text_input("Job name", value="finetune", key="job_name")
        with right:
            base_path = models.get(base_label)
            bundle_config = str(Path(base_path) / "config.yaml") if base_path else None
            config_options = ([bundle_config] if bundle_config else []) + available_configs()
            config = st.selectbox(
                "Config",
                config_options,
                key="config",
                help="The base model's own config keeps the architecture its weights need.",
            )
            steps = st.number_input(
                "Steps", min_value=1, max_value=1_000_000, value=200, step=50, key="steps"
            )
            overrides = st.text_area(
                "Overrides (one `section.key=value` per line)",
                key="overrides",
                placeholder="train.batch_size=4\ntrain.base_learning_rate=0.001",
            )
            gpu_ids: list[int] = []
            if run_on == slurm_form.SLURM:
                slurm = slurm_form.settings(sess.settings.workdir / "runs")
            elif gpus:
                labels = [f"{g.index}: {g.name} ({g.memory_mib} MiB)" for g in gpus]
                chosen = st.multiselect("GPUs", labels, default=labels[:1], key="gpus")
                gpu_ids = [int(c.split(":", 1)[0]) for c in chosen]
            else:
                st.info("No GPU detected: the job runs on the CPU.", icon=":material/memory:")
        submitted = st.form_submit_button(
            "Start fine-tune", type="primary", icon=":material/play_arrow:"
        )
    return Form(
        submitted,
        base_path,
        config,
        data_label,
        data_other,
        name,
        int(steps),
        overrides,
        gpu_ids,
        slurm if run_on == slurm_form.SLURM else None,
    )


@st.cache_data(show_spinner=False, max_entries=32)
def split_sizes(root: str, mtime: float) -> dict[str, int]:
    """Images per split of a COCO-panoptic data set (the annotations' ``mtime`` keys the cache)."""
    sizes = {}
    for path in sorted((Path(root) / "annotations").glob("panoptic_*.json")):
        try:
            sizes[path.stem[len("panoptic_") :]] = len(json.loads(path.read_text())["images"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sizes


def too_small(dataset: str) -> str | None:
    """A warning with the numbers when the data set has too few training images to help."""
    annotations = Path(dataset).expanduser() / "annotations"
    if not annotations.is_dir():
        return None
    sizes = split_sizes(str(Path(dataset).expanduser()), annotations.stat().st_mtime)
    train = sizes.get("train")
    if train is None or train >= MIN_TRAIN_IMAGES:
        return None
    others = ", ".join(f"{n} {split}" for split, n in sizes.items() if split != "train")
    return (
        f"**{Path(dataset).name} has only {train} training image{'s' * (train != 1)}**"
        + (f" ({others})" if others else "")
        + f". Fine-tuning on fewer than {MIN_TRAIN_IMAGES} images mostly teaches the model those "
        "images: it usually gets worse on every other one (on the demo, 2 images lowered PQ from "
        "83.6 to 73.9). Add images, or start anyway."
    )


def small_data_question(dataset: str) -> bool:
    """The warning about a small data set, with a button to start anyway (True when clicked)."""
    st.warning(too_small(dataset), icon=":material/warning:")
    return st.button("Start anyway", key="start_anyway", icon=":material/play_arrow:")


def submit(sess: state.Session, form: Form, datasets: dict, confirmed: bool = False) -> None:
    """Start the form's job; a refused input is shown and starts nothing, and a data set too small
    to help is named with its numbers first (``confirmed``: the user chose to start anyway)."""
    on_slurm = sess.run_on == slurm_form.SLURM
    dataset = (
        form.data_other.strip() if form.data_label == OTHER_DATA else datasets.get(form.data_label)
    ) or ""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", form.name.strip() or "finetune").strip("-.")
    slug = slug or "finetune"
    runs = form.slurm.runs_dir if on_slurm and form.slurm else sess.settings.workdir / "runs"
    run_dir = runs / f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        if on_slurm and form.slurm is None:
            raise UserError(
                "Slurm cannot be reached from here (see above); run on this machine instead"
            )
        if not dataset:
            raise UserError(f"choose a data set (or type its folder under '{OTHER_DATA}')")
        if not Path(dataset).expanduser().is_dir():
            raise UserError(f"{dataset}: data set folder not found")
        if not confirmed and too_small(dataset):
            sess.seen["small_data"] = dataset  # the page asks first (small_data_question)
            return
        argv = joblib.train_command(
            form.config,
            Path(dataset).expanduser(),
            run_dir,
            steps=form.steps,
            init_from=form.base_path,
            overrides=[line.strip() for line in form.overrides.splitlines() if line.strip()],
        )
        if on_slurm:
            job = slurm_form.slurm_backend.submit(sess.jobs, argv, form.slurm.options, name=slug)
        else:
            job = sess.jobs.submit(argv, name=slug, gpus=form.gpu_ids)
        st.toast(f"Started job {job.id}: {job.name}", icon=":material/rocket_launch:")
    except UserError as err:
        st.error(str(err), icon=":material/error:")


# -- jobs -------------------------------------------------------------------------------------


def loss_weights(workdir: str | Path) -> tuple[dict[str, float], bool]:
    """The loss weights of a run (its config.yaml), and whether they were read from it (else the
    defaults)."""
    from panoptic_deeplab.config import Config, load_config

    try:
        loss = load_config(Path(workdir) / "config.yaml").loss
        found = True
    except (UserError, OSError, ValueError):
        loss, found = Config().loss, False
    weights = {
        "semantic_loss": loss.semantic_weight,
        "center_loss": loss.center_weight,
        "offset_loss": loss.offset_weight,
    }
    return weights, found


def loss_figure(
    df: pd.DataFrame, weights: dict[str, float], exact: bool = True
) -> go.Figure | None:
    """The total loss and its terms as they enter it (each times its weight, so the terms add up
    to the total), on axes from the data: a log scale only when the values span more than a
    decade, the step axis from the first to the last logged step."""
    cols = [c for c in LOSS_COLUMNS if c in df.columns and df[c].notna().any()]
    if "step" not in df.columns or not cols:
        return None
    fig = go.Figure()
    values = []
    for col in cols:
        rows = df[df[col].notna()]
        weight = 1.0 if col == "loss" else weights.get(col, 1.0)
        ys = rows[col].astype(float) * weight
        values.extend(float(v) for v in ys)
        name = "total" if col == "loss" else f"{col.removesuffix('_loss')} × {weight:g}"
        fig.add_trace(go.Scatter(x=rows["step"], y=ys, mode="lines+markers", name=name))
    positive = [v for v in values if v > 0]
    log_scale = (
        bool(positive) and len(positive) == len(values) and max(positive) > 10 * min(positive)
    )
    steps = df["step"].dropna().astype(float)
    pad = max(0.5, 0.02 * (steps.max() - steps.min()))
    fig.update_layout(
        height=300,
        margin=dict(l=10, r=10, t=30, b=10),
        title="Losses: the total is the sum of the weighted terms"
        + ("" if exact else " (default weights: the run's config.yaml is unreadable)"),
        xaxis=dict(title="step", range=[steps.min() - pad, steps.max() + pad]),
        yaxis_type="log" if log_scale else "linear",
        legend=dict(orientation="h"),
    )
    return fig


def _act(action, job_id: int, **kwargs) -> None:
    """Cancel or resume, then refresh the page; a refusal (e.g. from Slurm) is shown, not raised."""
    try:
        action(job_id, **kwargs)
    except UserError as err:
        st.error(str(err), icon=":material/error:")
        return
    st.rerun()


def phase_text(job: joblib.Job, progress: joblib.Progress) -> str | None:
    """What a running job does before its first step (the trainer's status.json phase)."""
    if job.state != joblib.RUNNING or progress.step > 0 and progress.state == "running":
        return None
    if progress.state is None:  # nothing written or printed by this attempt yet
        return "starting (loading TensorFlow)"
    if progress.state == "finished":
        return "finishing (the model bundle is written)"
    if progress.state in ("failed", "stopped"):
        return f"{progress.state}, ending"
    return progress.phase or progress.state


def last_checkpoint(workdir: str | Path) -> int:
    """The step of the run's newest checkpoint, what `pdl train` resumes from (0: none). Read
    from TensorFlow's ``checkpoints/checkpoint`` index file, without TensorFlow."""
    index = Path(workdir) / "checkpoints" / "checkpoint"
    try:
        found = re.search(r'^model_checkpoint_path:\s*"[^"]*?(\d+)"', index.read_text(), re.M)
    except OSError:
        return 0
    return int(found.group(1)) if found else 0


def resume_note(job: joblib.Job, progress: joblib.Progress) -> str:
    """What Resume will do, from the checkpoints the run left."""
    step = last_checkpoint(job.workdir)
    total = f" of {progress.total_steps}" if progress.total_steps else ""
    if step:
        return f"Resume continues from step {step}{total}, the run's last checkpoint."
    return (
        "Resume starts over at step 1: this run wrote no checkpoint"
        + (f" (it stopped at step {progress.step}{total})" if progress.step else "")
        + "."
    )


def seconds_per_step(df: pd.DataFrame) -> float | None:
    """Timed on the logged steps after the first (the first includes tracing and start-up)."""
    if not {"step", "elapsed_s"} <= set(df.columns):
        return None
    rows = df[["step", "elapsed_s"]].dropna().drop_duplicates("step")
    if len(rows) < 2:
        return None
    steps = float(rows["step"].iloc[-1] - rows["step"].iloc[0])
    seconds = float(rows["elapsed_s"].iloc[-1] - rows["elapsed_s"].iloc[0])
    return seconds / steps if steps > 0 and seconds >= 0 else None


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def progress_line(job: joblib.Job, progress: joblib.Progress, df: pd.DataFrame) -> str | None:
    """ "training: step 40/200, about 3m10s left" while a job trains, with the ETA from steps
    actually timed (none before two steps are logged)."""
    if not progress.total_steps:
        return None
    text = f"step {progress.step}/{progress.total_steps}"
    if job.state != joblib.RUNNING:
        return text
    text = f"training: {text}"
    per_step = seconds_per_step(df) if not df.empty else None
    if per_step is not None and progress.step < progress.total_steps:
        text += f", about {duration(per_step * (progress.total_steps - progress.step))} left"
    return text


def job_buttons(store, job: joblib.Job, column) -> None:
    if job.is_active:
        if column.button("Cancel", key=f"cancel-{job.id}", icon=":material/stop:"):
            _act(store.cancel, job.id, grace_s=5)
    elif job.kind == "train" and job.state != joblib.SUCCEEDED:  # nothing to resume when done
        if column.button(
            "Resume",
            key=f"resume-{job.id}",
            icon=":material/replay:",
            help="Start again in the same workdir (what it continues from is written below).",
        ):
            _act(store.resume, job.id)


def job_metrics(job: joblib.Job, df: pd.DataFrame) -> None:
    """Loss curves, periodic evaluations and the last step's numbers from metrics.csv."""
    fig = loss_figure(df, *loss_weights(job.workdir))
    if fig is not None:
        st.plotly_chart(fig, key=f"loss-{job.id}")
    if "step" in df.columns:
        score_cols = [c for c in EVAL_COLUMNS if c in df.columns]
        evals = df[["step", *score_cols]].dropna(subset=score_cols, how="all")
        if len(evals):
            shown = views.text_cells(evals.tail(10).astype({"step": int}))
            st.dataframe(shown, hide_index=True, key=f"evals-{job.id}")
    last = df[df["loss"].notna()].tail(1) if "loss" in df.columns else pd.DataFrame()
    if not len(last):
        return
    cols = st.columns(3)
    cols[0].metric("loss", f"{float(last['loss'].iloc[0]):.4g}")
    if "learning_rate" in last and pd.notna(last["learning_rate"].iloc[0]):
        cols[1].metric("learning rate", f"{float(last['learning_rate'].iloc[0]):.3g}")
    if "images_per_sec" in last and pd.notna(last["images_per_sec"].iloc[0]):
        cols[2].metric("images / s", f"{float(last['images_per_sec'].iloc[0]):.3g}")


def job_log(store, job: joblib.Job) -> None:
    text, hidden = joblog.clean_log(store.read_log(job))
    if hidden and st.toggle(
        f"Show {hidden} TensorFlow start-up line(s)",
        key=f"log-all-{job.id}",
        help="CUDA/oneDNN notices TensorFlow prints at start-up; harmless on a CPU.",
    ):
        text, hidden = store.read_log(job), 0
    elif hidden:
        st.caption(
            f"{hidden} TensorFlow start-up line(s) hidden (CUDA/oneDNN notices, harmless on a CPU)."
        )
    st.code(text or "(empty log)", language=None, wrap_lines=True)
    log_path = Path(job.log_path)
    if log_path.is_file():
        st.download_button(
            "Download the whole log",
            log_path.read_bytes(),
            file_name=f"job-{job.id}.log",
            mime="text/plain",
            key=f"download-log-{job.id}",
        )


def job_card(store, job: joblib.Job, newest: bool = False) -> None:
    progress = store.progress(job)
    df = store.metrics(job)
    label = f"#{job.id} {job.name} · {job.state}"
    phase = phase_text(job, progress)
    line = progress_line(job, progress, df)
    if phase:
        label += f" · {phase}"
    elif line:
        label += f" · {line}"
    icon = STATE_ICONS.get(job.state, "")
    with st.expander(label, icon=icon, expanded=newest or job.state == joblib.RUNNING):
        cols = st.columns([3, 1, 1, 1])
        if job.backend == joblib.SLURM:
            where = slurm_form.slurm_backend.describe(store, job)
        else:
            where = f"GPUs {job.gpus}" if job.gpus else "CPU"
        cols[0].caption(f"`pdl {' '.join(job.argv)}`  \nworkdir `{job.workdir}`  \n{where}")
        job_buttons(store, job, cols[1])
        show_log = cols[2].toggle("Log", key=f"log-{job.id}")
        if job.kind == "train" and not job.is_active and job.state != joblib.SUCCEEDED:
            st.caption(resume_note(job, progress))
        if job.message:
            (st.error if job.state == joblib.FAILED else st.caption)(job.message)
        if phase:
            st.progress(0.0, text=f"{phase.capitalize()}… (step 0 / {progress.total_steps or '?'})")
        elif progress.fraction is not None:
            st.progress(progress.fraction, text=line)
        if not df.empty:
            job_metrics(job, df)
        if show_log:
            job_log(store, job)


def jobs_section(sess: state.Session) -> None:
    """The job cards, refreshed every 2 s while a job is queued or running."""
    store = sess.jobs
    any_running = any(j.is_active for j in store.list())

    @st.fragment(run_every=2 if any_running else None)
    def jobs_panel() -> None:
        current = store.list()
        trainings = [j for j in current if j.kind == "train"]
        others = [j for j in current if j.kind != "train"]
        st.subheader("Fine-tunes")
        if not trainings:
            st.caption("No fine-tune yet. Start one above.")
        for k, job in enumerate(trainings):
            job_card(store, job, newest=k == 0)
        if others:
            st.subheader("Evaluations and other jobs")
            for job in others:
                job_card(store, job)
        if any_running and not any(j.is_active for j in current):
            sess.forget_registry()  # the finished job registered its model
            st.rerun()  # the last running job ended: refresh the whole page (models, run_every)

    jobs_panel()


# -- models -----------------------------------------------------------------------------------


def registered_models(sess: state.Session) -> None:
    """The registry, with models whose folder is gone marked missing and a way to forget them."""
    st.subheader("Registered models")
    registered = sess.registered(include_missing=True)
    if not registered:
        st.caption("A model appears here when a training job finishes.")
        return
    rows = [
        {
            "name": state.job_model_name(r.name, r.job_id),
            "folder": "missing" if r.missing else "ok",
            "job": str(r.job_id) if r.job_id is not None else views.MISSING,
            "base": sess.model_label(r.base_model) if r.base_model else views.MISSING,
            "data set": r.dataset or views.MISSING,
            "path": r.path,
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)),
        }
        for r in registered
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="models_table")
    for r in (r for r in registered if r.missing):
        cols = st.columns([4, 1])
        cols[0].warning(
            f"**{state.job_model_name(r.name, r.job_id)}** is missing: `{r.path}` is gone, so it "
            "is offered for no job.",
            icon=":material/folder_off:",
        )
        if cols[1].button("Forget it", key=f"forget-{r.id}", icon=":material/delete:"):
            sess.jobs.forget_model(r)
            sess.forget_registry()
            st.rerun()


def _eval_split(data: Path) -> str | None:
    splits = sorted(
        p.stem[len("panoptic_") :] for p in (data / "annotations").glob("panoptic_*.json")
    )
    return "val" if "val" in splits else (splits[0] if splits else None)


def _read_result(path: Path):
    from panoptic_deeplab.errors import UserError
    from panoptic_deeplab.evaluation.results import EvaluationResult

    try:
        return EvaluationResult.load(path)
    except UserError:
        return None


def delta_chart(rec, name: str, base_name: str, data: Path, split: str, results: dict) -> None:
    delta = er.compare(results["base"], results["fine-tuned"])
    delta = delta.rename(columns=lambda c: c.replace(" A", " base").replace(" B", " fine-tuned"))
    st.caption(
        f"On `{data.name}/{split}`: {name} − {base_name} (points; positive = better after "
        "fine-tuning)."
    )
    fig = go.Figure(
        go.Bar(
            x=delta["class"],
            y=delta["Δ PQ"],
            marker_color=["#2e7d32" if (v or 0) >= 0 else "#c62828" for v in delta["Δ PQ"]],
        )
    )
    fig.update_layout(
        height=280,
        margin=dict(l=10, r=10, t=30, b=10),
        title="Δ PQ per class",
        yaxis_title="points",
    )
    st.plotly_chart(fig, key=f"delta-{rec.id}")
    st.dataframe(delta, hide_index=True, key=f"delta-table-{rec.id}")


def existing_result(results_dir: Path, model: Path, data: Path, split: str, label: str) -> Path:
    """Where a model's result on a split is: one the Evaluate page made (with oracles: the same
    scores and more) is reused; else the file a new evaluation here writes."""
    plain = er.result_path(results_dir, model, data, split, 0, label=label)
    with_oracles = er.result_path(results_dir, model, data, split, 0, ORACLES, label=label)
    return with_oracles if with_oracles.is_file() and not plain.is_file() else plain


def comparison(sess: state.Session, rec: joblib.ModelRecord, active_outs: set[str]) -> None:
    """Per-class deltas of a fine-tuned model against its base, on its data set's val split, from
    the same cached `pdl evaluate` results the Evaluate page uses (launched here if missing)."""
    model, base = Path(rec.path), Path(rec.base_model)
    data = Path(rec.dataset or sess.settings.data or "")
    split = _eval_split(data) if data.is_dir() else None
    name, base_name = state.job_model_name(rec.name, rec.job_id), sess.model_label(base)
    with st.expander(f"{name} vs its base {base_name}", icon=":material/compare_arrows:"):
        if split is None:
            st.caption(f"No COCO-panoptic split found in `{data}` to compare on.")
            return
        results_dir = sess.settings.results_dir
        paths = {
            "base": existing_result(results_dir, base, data, split, base_name),
            "fine-tuned": existing_result(results_dir, model, data, split, name),
        }
        results = {k: _read_result(p) for k, p in paths.items()}
        if all(results.values()):
            delta_chart(rec, name, base_name, data, split, results)
            return
        missing = [k for k, r in results.items() if r is None]
        running = [k for k in missing if str(paths[k]) in active_outs]
        if running:
            st.caption(
                f"Evaluating {' and '.join(running)} on `{data.name}/{split}`… (see the job list)"
            )
        elif st.button(
            f"Evaluate {' and '.join(missing)} on {data.name}/{split}",
            key=f"evaluate-{rec.id}",
            icon=":material/analytics:",
        ):
            results_dir.mkdir(parents=True, exist_ok=True)
            for k in missing:
                src, src_name = (base, base_name) if k == "base" else (model, name)
                sess.jobs.submit(
                    er.evaluate_argv(src, data, split, 0, paths[k]), name=f"evaluate {src_name}"
                )
            st.rerun()


def comparisons(sess: state.Session) -> None:
    active_outs = {
        joblib.option_value(j.argv, "--out") for j in sess.jobs.list(kind="evaluate") if j.is_active
    }
    for rec in sess.registered():
        if rec.base_is_bundle:
            comparison(sess, rec, active_outs)
        elif rec.base_model:  # e.g. a deeplab2 checkpoint: nothing to evaluate it with here
            st.caption(
                f"{state.job_model_name(rec.name, rec.job_id)}: its base `{rec.base_model}` is not "
                "a model bundle here, so the two cannot be compared."
            )


def page() -> None:
    sess = state.session()
    header()
    try:
        sess.jobs.list()  # a damaged jobs.sqlite is named here, with its repair, before the form
    except DamagedStoreError as err:
        if not store_repair.offer(err, sess.repair_jobs, "an empty job list", key="repair_jobs"):
            st.stop()
    models = base_models(sess)
    datasets = data_sets(sess)
    form = new_job_form(sess, models, datasets)
    sess.uses(
        model=form.base_path,
        data=datasets.get(form.data_label) or form.data_other.strip() or None,
    )
    chosen = datasets.get(form.data_label) or form.data_other.strip()
    if form.submitted:
        submit(sess, form, datasets)
    if sess.seen.get("small_data") == chosen and small_data_question(chosen):
        sess.seen.pop("small_data")
        submit(sess, form, datasets, confirmed=True)
    jobs_section(sess)
    registered_models(sess)
    comparisons(sess)


page()
