"""`pdl jobs`: the background jobs the app started (or `pdl jobs submit` did), from the terminal.

    pdl jobs [list]                 every job: id, state, progress, name
    pdl jobs show ID | log ID       one job's record / the end of its log
    pdl jobs cancel ID | resume ID
    pdl jobs [--name N] [--gpus 0,1] submit train --config ...   (a validated `pdl` command)
    pdl jobs --backend slurm [--partition P] [--nodes N] [--tasks-per-node T] [--gpus-per-node G]
             [--cpus-per-task C] [--time HH:MM:SS] submit train --config ... --dataset ... --workdir /shared/run1

Options go before the action. On Slurm the workdir, the data set and this Python installation must be on
storage every node sees (see docs/distributed-training.md).
"""

from __future__ import annotations

import argparse
import time

ACTIONS = ("list", "show", "log", "cancel", "resume", "submit")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", default="list", choices=ACTIONS)
    parser.add_argument("--root", help="job records folder (default: the app's work directory)")
    parser.add_argument("--name", help="job name (submit)")
    parser.add_argument(
        "--gpus", default="", help="comma-separated GPU indices for submit (default: CPU)"
    )
    slurm = parser.add_argument_group(
        "Slurm (submit --backend slurm)",
        "A batch job with one srun task per tf.distribute worker. The --workdir (evaluate: the --root), the "
        "data set and this Python installation must be on storage every node sees (NFS, Lustre, GPFS...).",
    )
    slurm.add_argument(
        "--backend",
        choices=("local", "slurm"),
        default="local",
        help="local: a process on this machine (default); slurm: sbatch on the cluster",
    )
    slurm.add_argument("--partition", help="Slurm partition (default: the cluster's default)")
    slurm.add_argument("--nodes", type=int, default=1, help="nodes (default 1)")
    slurm.add_argument(
        "--tasks-per-node", type=int, help="workers per node (default: --gpus-per-node, or 1)"
    )
    slurm.add_argument(
        "--gpus-per-node",
        type=int,
        default=0,
        help="GPUs per node, requested as --gres=gpu:G, one per task (default 0: CPU)",
    )
    slurm.add_argument(
        "--cpus-per-task", type=int, help="CPUs per worker (default: Slurm's, usually 1)"
    )
    slurm.add_argument(
        "--time", help="time limit, HH:MM:SS or D-HH:MM:SS (default: the partition's)"
    )
    parser.add_argument(
        "--follow", "-f", action="store_true", help="log: keep printing until the job ends"
    )
    parser.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="ID | COMMAND",
        help="the job id (show, log, cancel, resume), or the pdl command to submit",
    )


def run(args) -> int:
    from ..jobs.errors import JobError
    from ..jobs.store import JobStore, default_root

    store = JobStore(args.root or default_root())
    slurm_only = [
        f"--{n.replace('_', '-')}"
        for n in ("partition", "tasks_per_node", "cpus_per_task", "time")
        if getattr(args, n)
    ]
    slurm_only += [
        f"--{n.replace('_', '-')}"
        for n, default in (("nodes", 1), ("gpus_per_node", 0))
        if getattr(args, n) != default
    ]
    if slurm_only and (args.backend != "slurm" or args.action != "submit"):
        raise JobError(
            f"{', '.join(slurm_only)} only apply to `pdl jobs --backend slurm submit ...`"
        )
    if args.action == "list":
        for job in store.list():
            p = store.progress(job)
            step = f"{p.step}/{p.total_steps}" if p.total_steps else "-"
            where = "  [slurm]" if job.backend == "slurm" else ""
            print(
                f"{job.id:>4}  {job.state:<9}  {step:>11}  {job.name}{where}  ({time.strftime('%Y-%m-%d %H:%M', time.localtime(job.created_at))})"
            )
        return 0
    if args.action == "submit":
        command = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
        gpus = [int(g) for g in args.gpus.split(",") if g.strip()]
        if args.backend == "slurm":
            from ..jobs.slurm import SlurmOptions, describe, submit

            options = SlurmOptions(
                partition=args.partition,
                nodes=args.nodes,
                tasks_per_node=args.tasks_per_node,
                gpus_per_node=args.gpus_per_node,
                cpus_per_task=args.cpus_per_task,
                time=args.time,
            )
            job = submit(store, command, options, name=args.name)
            print(f"submitted job {job.id}: {describe(store, job)}; log: {job.log_path}")
            return 0
        job = store.submit(command, name=args.name, gpus=gpus)
        print(f"started job {job.id} (pid {job.pid}); log: {job.log_path}")
        return 0
    if len(args.rest) != 1 or not args.rest[0].isdigit():
        raise JobError(f"`pdl jobs {args.action}` needs one job id; `pdl jobs list` shows them")
    args.job = int(args.rest[0])
    if args.action == "show":
        job = store.refresh(args.job)
        p = store.progress(job)
        print(
            f"job {job.id} {job.name}: {job.state}" + (f" ({job.message})" if job.message else "")
        )
        print(f"  command  pdl {' '.join(job.argv)}")
        if job.backend == "slurm":
            from ..jobs.slurm import describe

            print(f"  on       {describe(store, job)}")
        print(f"  workdir  {job.workdir}\n  log      {job.log_path}")
        if p.total_steps:
            print(f"  progress {p.step}/{p.total_steps}")
    elif args.action == "log":
        print(store.read_log(store.get(args.job)), end="", flush=True)
        if args.follow:
            _follow(store, args.job)
    elif args.action == "cancel":
        print(f"job {args.job}: {store.cancel(args.job).state}")
    elif args.action == "resume":
        job = store.resume(args.job)
        print(
            f"job {job.id}: {job.state} (attempt {job.attempts}"
            + (f", pid {job.pid})" if job.pid else ")")
        )
    return 0


def _follow(store, job_id: int) -> None:
    """Print what is appended to the job's log until the job ends (Ctrl-C stops watching, not the job)."""
    from pathlib import Path

    job = store.get(job_id)
    path = Path(job.log_path)
    offset = path.stat().st_size if path.is_file() else 0
    while True:
        active = store.refresh(job_id).is_active
        if path.is_file() and path.stat().st_size > offset:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
            print(chunk.decode("utf-8", errors="replace"), end="", flush=True)
        if not active:
            print(f"# job {job_id}: {store.get(job_id).state}")
            return
        time.sleep(1)
