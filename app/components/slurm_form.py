"""The Train page's Slurm settings: partition (read from the cluster), nodes, tasks, GPUs, time
limit and the run folder, which must be on storage every node sees."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from panoptic_deeplab.jobs import slurm as slurm_backend
from panoptic_deeplab.jobs.slurm import SlurmError, SlurmOptions

THIS_MACHINE, SLURM = "this machine", "Slurm"


@st.cache_data(ttl=30, show_spinner=False)
def _partitions() -> tuple[list[slurm_backend.Partition], str]:
    try:
        return slurm_backend.partitions(), ""
    except SlurmError as err:
        return [], str(err)


@dataclass
class SlurmChoice:
    options: SlurmOptions
    runs_dir: Path


def settings(default_runs_dir: Path) -> SlurmChoice | None:
    """The Slurm fields of the form; None (with the reason shown) when the cluster cannot be
    reached."""
    parts, error = _partitions()
    if error:
        st.error(error, icon=":material/error:")
        return None
    if not parts:
        st.error("Slurm lists no partition this account can use.", icon=":material/error:")
        return None
    labels = {p.label: p.name for p in parts}
    partition = labels[st.selectbox("Partition", list(labels), key="slurm_partition")]
    cols = st.columns(4)
    nodes = cols[0].number_input("Nodes", min_value=1, max_value=1024, value=1, key="slurm_nodes")
    gpus = cols[1].number_input(
        "GPUs per node",
        min_value=0,
        max_value=slurm_backend.MAX_TASKS_PER_NODE,
        value=0,
        key="slurm_gpus",
        help="Requested as --gres=gpu:N; one worker per GPU.",
    )
    tasks = cols[2].number_input(
        "Tasks per node",
        min_value=1,
        max_value=slurm_backend.MAX_TASKS_PER_NODE,
        value=1,
        key="slurm_tasks",
        help="Workers per node without GPUs (with GPUs: one per GPU).",
    )
    cpus = cols[3].number_input(
        "CPUs per task",
        min_value=0,
        max_value=1024,
        value=0,
        key="slurm_cpus",
        help="0: Slurm's default (usually one).",
    )
    time_limit = st.text_input(
        "Time limit", key="slurm_time", placeholder="HH:MM:SS (empty: the partition's)"
    )
    runs_dir = st.text_input(
        "Run folder (on storage every node sees)",
        value=str(default_runs_dir),
        key="slurm_runs_dir",
        help=slurm_backend.SHARED_STORAGE_NOTE,
    )
    st.caption(slurm_backend.SHARED_STORAGE_NOTE)
    options = SlurmOptions(
        partition=partition,
        nodes=int(nodes),
        gpus_per_node=int(gpus),
        tasks_per_node=None if gpus else int(tasks),
        cpus_per_task=int(cpus) or None,
        time=time_limit.strip() or None,
    )
    return SlurmChoice(options, Path(runs_dir.strip() or default_runs_dir).expanduser())
