"""The task side of a Slurm job: ``python -m panoptic_deeplab.jobs.slurm_task``, one per worker,
started by ``srun`` from the batch script ``.backends.slurm`` writes. It checks that the task sees
the job's workdir and data set, sets ``TF_CONFIG`` and the task's GPU, then becomes ``pdl``."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from .arguments import option_value, validate_command
from .backends.slurm import (
    MAX_TASKS_PER_NODE,
    PORT_FIRST,
    PORT_SLOTS,
    SHARED_STORAGE_NOTE,
    TOKEN_FILE,
    _slurm,
)
from .errors import JobError
from .gpus import quiet_start_up


def expand_hostnames(nodelist: str) -> list[str]:
    """``node[01-03],gpu7`` -> the host names, as Slurm itself expands them."""
    return _slurm("scontrol", "show", "hostnames", nodelist).split()


def tasks_per_node(text: str) -> list[int]:
    """Slurm's compressed task counts, ``2(x3),1`` -> [2, 2, 2, 1]."""
    counts: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if not m:
            raise JobError(f"cannot read SLURM_STEP_TASKS_PER_NODE '{text}'")
        counts += [int(m.group(1))] * int(m.group(2) or 1)
    return counts


def tf_config(env: dict[str, str], hostnames: list[str]) -> dict:
    """``TF_CONFIG`` of this task: every task is a worker; tasks fill the nodes in order (srun's
    block distribution), each listening on the job's port base + its index on the node."""
    counts = tasks_per_node(env["SLURM_STEP_TASKS_PER_NODE"])
    if len(counts) != len(hostnames):
        raise JobError(f"{len(hostnames)} node(s) in the step but task counts for {len(counts)}")
    base = PORT_FIRST + (int(env["SLURM_JOB_ID"]) % PORT_SLOTS) * MAX_TASKS_PER_NODE
    workers = [
        f"{host}:{base + local}" for host, count in zip(hostnames, counts) for local in range(count)
    ]
    total = int(env.get("SLURM_STEP_NUM_TASKS") or env["SLURM_NTASKS"])
    if len(workers) != total:
        raise JobError(f"the step has {total} tasks but its node list gives {len(workers)}")
    return {
        "cluster": {"worker": workers},
        "task": {"type": "worker", "index": int(env["SLURM_PROCID"])},
    }


def task_gpus(env: dict[str, str], gpus_per_node: int) -> str:
    """CUDA_VISIBLE_DEVICES of this task: none without GPUs (the job asked for none, so any GPU on
    the node is someone else's), else the SLURM_LOCALID-th of the node's allocated GPUs."""
    if gpus_per_node <= 0:
        return "-1"
    visible = [g for g in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    if len(visible) <= 1:
        return ",".join(visible)  # Slurm already bound one GPU to this task (or the node has none)
    return visible[int(env.get("SLURM_LOCALID", "0")) % len(visible)]


def _task_main(args: list[str]) -> int:
    """One Slurm task: check that it sees what it needs, set TF_CONFIG and the GPU, become pdl."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m panoptic_deeplab.jobs.slurm_task")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--gpus-per-node", type=int, default=0)
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    ns = parser.parse_args(args)
    argv = ns.argv[1:] if ns.argv[:1] == ["--"] else ns.argv
    env = quiet_start_up(dict(os.environ))
    node = env.get("SLURMD_NODENAME") or os.uname().nodename
    where = f"task {env.get('SLURM_PROCID', '?')} on {node}"
    try:
        validate_command(argv)
        token = Path(ns.workdir) / TOKEN_FILE
        try:
            seen = token.read_text().strip()
        except OSError:
            seen = None
        if seen != ns.token:
            raise JobError(
                f"{where} cannot see the job's workdir {ns.workdir} (or sees another folder of "
                f"that name). {SHARED_STORAGE_NOTE}"
            )
        for name, kind in (
            ("--dataset", "data set"),
            ("--init-from", "base model"),
            ("--model", "model bundle"),
        ):
            value = option_value(argv, name)
            if value and not Path(value).exists():
                raise JobError(f"{where} cannot find the {kind} {value}. {SHARED_STORAGE_NOTE}")
        ntasks = int(env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or 1)
        if argv[0] == "train" and ntasks > 1:
            env["TF_CONFIG"] = json.dumps(
                tf_config(env, expand_hostnames(env["SLURM_STEP_NODELIST"]))
            )
            if option_value(argv, "--strategy") is None:
                argv = [*argv, "--strategy", "multi_worker"]
        env["CUDA_VISIBLE_DEVICES"] = task_gpus(env, ns.gpus_per_node)
    except JobError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    os.chdir(ns.workdir)
    # exec, not a child: srun's signals (SIGTERM on scancel, preemption, time limit) reach pdl.
    os.execve(sys.executable, [sys.executable, "-m", "panoptic_deeplab", *argv], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(_task_main(sys.argv[1:]))
