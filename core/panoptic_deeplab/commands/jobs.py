"""`pdl jobs`: the background jobs the app started (or `pdl jobs submit` did), from the terminal.

    pdl jobs [list]                 every job: id, state, progress, name
    pdl jobs show ID | log ID       one job's record / the end of its log
    pdl jobs cancel ID | resume ID
    pdl jobs [--name N] [--gpus 0,1] submit train --config ...   (a validated `pdl` command)
    pdl jobs --backend slurm [--partition P] [--nodes N] [--tasks-per-node T] [--gpus-per-node G]
             [--cpus-per-task C] [--time HH:MM:SS] submit train --config ... --workdir /shared/run1
    pdl jobs models | forget-model ID   the work directory's registered models
    pdl jobs --repair [ACTION]          set a damaged jobs.sqlite aside and start an empty one

Options go before the action. On Slurm the workdir, the data set and this Python installation must
be on storage every node sees (see docs/distributed-training.md). None of this imports TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
import time

ACTIONS = ("list", "show", "log", "cancel", "resume", "submit", "models", "forget-model")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from ..jobs.backends import backend_names, get_backend

    parser.add_argument("action", nargs="?", default="list", choices=ACTIONS)
    parser.add_argument("--root", help="job records folder (default: the app's work directory)")
    parser.add_argument("--name", help="job name (submit)")
    parser.add_argument(
        "--gpus", default="", help="comma-separated GPU indices for submit (default: CPU)"
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="when jobs.sqlite is damaged: keep it aside (renamed with the time) and start an "
        "empty job list (job folders, logs and models on disk are kept)",
    )
    names = backend_names()
    parser.add_argument(
        "--backend",
        choices=names,
        default="local",
        help="; ".join(f"{n}: {get_backend(n).help}" for n in names),
    )
    for name in names:
        backend = get_backend(name)
        if backend.cli_options:
            group = parser.add_argument_group(f"{name} (submit --backend {name})")
            for flag, kwargs in backend.cli_options:
                group.add_argument(flag, **kwargs)
    parser.add_argument(
        "--follow", "-f", action="store_true", help="log: keep printing until the job ends"
    )
    parser.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="ID | COMMAND",
        help="the job id (show, log, cancel, resume), the model id or path (forget-model), or the "
        "pdl command to submit",
    )


def _backend_options(args):
    """The chosen backend's options from the command line; a refusal for another backend's."""
    from ..jobs.backends import backend_names, get_backend
    from ..jobs.errors import JobError

    chosen = None
    for name in backend_names():
        backend = get_backend(name)
        values = {}
        given = []
        for flag, kwargs in backend.cli_options:
            dest = flag.lstrip("-").replace("-", "_")
            values[dest] = getattr(args, dest)
            if values[dest] != kwargs.get("default"):
                given.append(flag)
        if name == args.backend:
            chosen = backend.options_from_cli(values)
        if given and (name != args.backend or args.action != "submit"):
            raise JobError(
                f"{', '.join(given)} only apply to `pdl jobs --backend {name} submit ...`"
            )
    return chosen


def _open_store(args):
    """The job store; a damaged one is set aside with --repair, or after the user agrees."""
    from ..jobs.store import JobStore, default_root
    from ..sqlite_store import DamagedStoreError

    root = args.root or default_root()
    try:
        store = JobStore(root, repair=args.repair)
    except DamagedStoreError as err:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise
        print(f"error: {err}", file=sys.stderr)
        answer = input("Keep it aside and start an empty job list? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise SystemExit(2) from None
        store = JobStore(root, repair=True)
    if store.set_aside_as is not None:
        print(
            f"{store.db_path} was damaged: kept as {store.set_aside_as}; the job list starts "
            "empty (job folders, logs and models on disk are as they were)",
            file=sys.stderr,
        )
    return store


def run(args) -> int:
    from ..jobs.errors import JobError

    options = _backend_options(args)
    store = _open_store(args)
    if args.action == "list":
        for job in store.list():
            p = store.progress(job)
            step = f"{p.step}/{p.total_steps}" if p.total_steps else "-"
            where = f"  [{job.backend}]" if job.backend != "local" else ""
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at))
            doing = f"  {p.text}" if job.is_active else ""
            print(f"{job.id:>4}  {job.state:<9}  {step:>11}  {job.name}{where}  ({when}){doing}")
        return 0
    if args.action == "models":
        for m in store.models(include_missing=True):
            note = (
                "  MISSING: its folder is gone (pdl jobs forget-model {m.id})" if m.missing else ""
            )
            print(f"{m.id:>4}  {m.name}  {m.path}{note.format(m=m)}")
        return 0
    if args.action == "submit":
        command = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
        gpus = [int(g) for g in args.gpus.split(",") if g.strip()]
        job = store.submit(
            command, name=args.name, gpus=gpus, backend=args.backend, options=options
        )
        if job.backend == "local":
            print(f"started job {job.id} (pid {job.pid}); log: {job.log_path}")
        else:
            print(f"submitted job {job.id}: {store.describe(job)}; log: {job.log_path}")
        return 0
    if args.action == "forget-model":
        if len(args.rest) != 1:
            raise JobError("`pdl jobs forget-model` needs one model id or path (pdl jobs models)")
        target = int(args.rest[0]) if args.rest[0].isdigit() else args.rest[0]
        if not store.forget_model(target):
            raise JobError(f"no registered model {args.rest[0]} in {store.db_path}")
        print(f"forgot model {args.rest[0]} (its folder, if any, is untouched)")
        return 0
    if len(args.rest) != 1 or not args.rest[0].isdigit():
        raise JobError(f"`pdl jobs {args.action}` needs one job id; `pdl jobs list` shows them")
    job_id = int(args.rest[0])
    if args.action == "show":
        job = store.refresh(job_id)
        p = store.progress(job)
        print(
            f"job {job.id} {job.name}: {job.state}" + (f" ({job.message})" if job.message else "")
        )
        print(f"  command  pdl {' '.join(job.argv)}")
        print(f"  on       {store.describe(job)}")
        print(f"  workdir  {job.workdir}\n  log      {job.log_path}")
        print(f"  progress {p.text}")
    elif args.action == "log":
        print(store.read_log(store.get(job_id)), end="", flush=True)
        if args.follow:
            _follow(store, job_id)
    elif args.action == "cancel":
        print(f"job {job_id}: {store.cancel(job_id).state}")
    elif args.action == "resume":
        job = store.resume(job_id)
        print(
            f"job {job.id}: {job.state} (attempt {job.attempts}"
            + (f", pid {job.pid})" if job.pid else ")")
        )
    return 0


def _follow(store, job_id: int) -> None:
    """Print what is appended to the job's log until the job ends (Ctrl-C stops watching, not the
    job)."""
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
