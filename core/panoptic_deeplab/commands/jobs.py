"""`pdl jobs`: the background jobs the app started (or `pdl jobs submit` did), from the terminal.

    pdl jobs [list]                 every job: id, state, progress, name
    pdl jobs show ID | log ID       one job's record / the end of its log
    pdl jobs cancel ID | resume ID
    pdl jobs [--name N] [--gpus 0,1] submit train --config ...   (a validated `pdl` command)

Options (--root, --name, --gpus) go before the action.
"""
from __future__ import annotations

import argparse
import time

ACTIONS = ("list", "show", "log", "cancel", "resume", "submit")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", default="list", choices=ACTIONS)
    parser.add_argument("--root", help="job records folder (default: the app's work directory)")
    parser.add_argument("--name", help="job name (submit)")
    parser.add_argument("--gpus", default="", help="comma-separated GPU indices for submit (default: CPU)")
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="ID | COMMAND",
                        help="the job id (show, log, cancel, resume), or the pdl command to submit")


def run(args) -> int:
    from ..jobs import JobError, JobStore, default_root

    store = JobStore(args.root or default_root())
    if args.action == "list":
        for job in store.list():
            p = store.progress(job)
            step = f"{p.step}/{p.total_steps}" if p.total_steps else "-"
            print(f"{job.id:>4}  {job.state:<9}  {step:>11}  {job.name}  ({time.strftime('%Y-%m-%d %H:%M', time.localtime(job.created_at))})")
        return 0
    if args.action == "submit":
        command = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
        gpus = [int(g) for g in args.gpus.split(",") if g.strip()]
        job = store.submit(command, name=args.name, gpus=gpus)
        print(f"started job {job.id} (pid {job.pid}); log: {job.log_path}")
        return 0
    if len(args.rest) != 1 or not args.rest[0].isdigit():
        raise JobError(f"`pdl jobs {args.action}` needs one job id; `pdl jobs list` shows them")
    args.job = int(args.rest[0])
    if args.action == "show":
        job = store.refresh(args.job)
        p = store.progress(job)
        print(f"job {job.id} {job.name}: {job.state}" + (f" ({job.message})" if job.message else ""))
        print(f"  command  pdl {' '.join(job.argv)}")
        print(f"  workdir  {job.workdir}\n  log      {job.log_path}")
        if p.total_steps:
            print(f"  progress {p.step}/{p.total_steps}")
    elif args.action == "log":
        print(store.read_log(store.get(args.job)), end="")
    elif args.action == "cancel":
        print(f"job {args.job}: {store.cancel(args.job).state}")
    elif args.action == "resume":
        job = store.resume(args.job)
        print(f"job {job.id}: {job.state} (attempt {job.attempts}, pid {job.pid})")
    return 0
