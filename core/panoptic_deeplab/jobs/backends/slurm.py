"""The Slurm backend of the jobs: ``pdl train`` / ``pdl evaluate`` as a Slurm batch job.

A job is a generated batch script handed to ``sbatch`` (kept beside the log in the workdir, so what
ran can be read and re-run by hand); it starts one task per worker with ``srun``. Each task runs
``python -m panoptic_deeplab.jobs.slurm_task`` (``..slurm_task``), which checks that it sees the
job's workdir and data set (both must be on storage every node mounts), builds ``TF_CONFIG`` from
Slurm's environment (``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS``, the step's node list expanded with
``scontrol show hostnames``, a port range derived from the job id) and then becomes ``pdl``. That
works on CPU-only nodes too, unlike TF's ``SlurmClusterResolver``, which refuses tasks without GPUs.

The record lives in the same store as local jobs (``backend = 'slurm'``; Slurm's job id, the
options and the workdir token in ``job.backend_data``). Its state comes from Slurm: ``scontrol
show job`` while Slurm remembers the job,
``sacct`` when the cluster keeps accounting, else the exit status the batch script writes to the
workdir. Cancel is ``scancel`` (Slurm sends SIGTERM, which stops ``pdl train`` at the current step);
resume submits the same script again, and the trainer continues from the newest checkpoint.
Training jobs are submitted with ``--requeue``: a preempted or failed-node job is queued again and
resumes the same way, so preemption costs at most one checkpoint interval.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..arguments import ALLOWED_COMMANDS, option_value
from ..errors import JobError
from ..process import read_exit_file
from ..records import CANCELLED, FAILED, QUEUED, RUNNING, SLURM, SUCCEEDED, Job, attempt_header
from . import Backend, Outcome

if TYPE_CHECKING:  # annotations only
    from ..store import JobStore

SHARED_STORAGE_NOTE = (
    "The workdir (and the data set, the base model and this Python installation) must be on "
    "storage every node of the cluster sees, e.g. NFS, Lustre or GPFS."
)
TOKEN_FILE = (
    ".pdl-slurm-token"  # written by the submitter; a task that cannot read it is on other storage
)
SCRIPT_FILE = "slurm-job.sh"
KINDS = ("train", "evaluate")  # what can run on Slurm: training scales out, evaluation is one task
# Workers listen on PORT_FIRST + (job id % PORT_SLOTS) * MAX_TASKS_PER_NODE + local task index, so
# two jobs sharing a node rarely collide, and the range stays below the ephemeral ports (32768+).
PORT_FIRST, PORT_SLOTS, MAX_TASKS_PER_NODE = 12000, 1250, 16

# Slurm's job states (scontrol's JobState, sacct's State) -> ours.
_STATE_MAP = {
    **dict.fromkeys(
        ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "CONFIGURING"),
        QUEUED,
    ),
    **dict.fromkeys(
        ("RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "SUSPENDED", "STOPPED", "RESIZING"),
        RUNNING,
    ),
    "COMPLETED": SUCCEEDED,
    "CANCELLED": CANCELLED,
    **dict.fromkeys(
        (
            "FAILED",
            "TIMEOUT",
            "NODE_FAIL",
            "OUT_OF_MEMORY",
            "BOOT_FAIL",
            "DEADLINE",
            "PREEMPTED",
            "SPECIAL_EXIT",
            "REVOKED",
        ),
        FAILED,
    ),
}
_WHY = {
    "TIMEOUT": "reached its time limit",
    "NODE_FAIL": "lost a node",
    "OUT_OF_MEMORY": "ran out of memory",
    "PREEMPTED": "was preempted",
    "BOOT_FAIL": "could not boot its node",
    "DEADLINE": "missed its deadline",
}


class SlurmError(JobError):
    """Slurm is missing, or refused or failed a request (the message is one line)."""


@dataclass(frozen=True)
class SlurmOptions:
    """Where and how big: ``nodes`` x ``tasks_per_node`` workers, a GPU each with gpus_per_node."""

    partition: str | None = None
    nodes: int = 1
    tasks_per_node: int | None = None  # default: one per GPU, or one per node without GPUs
    gpus_per_node: int = 0
    time: str | None = (
        None  # Slurm's time format, e.g. 02:00:00 or 1-12:00:00; default: the partition's
    )
    cpus_per_task: int | None = None  # default: Slurm's (one CPU per task)

    @property
    def tasks(self) -> int:
        return self.nodes * self.ntasks_per_node

    @property
    def ntasks_per_node(self) -> int:
        return self.tasks_per_node or max(self.gpus_per_node, 1)

    def check(self, kind: str, argv: list[str]) -> None:
        if self.partition is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", self.partition):
            raise JobError(
                f"--partition: '{self.partition}' must be letters, digits, '_', '.' or '-'"
            )
        for name, value, low in (
            ("--nodes", self.nodes, 1),
            ("--gpus-per-node", self.gpus_per_node, 0),
            ("--tasks-per-node", 1 if self.tasks_per_node is None else self.tasks_per_node, 1),
            ("--cpus-per-task", 1 if self.cpus_per_task is None else self.cpus_per_task, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise JobError(f"{name}: {value!r} must be a whole number >= {low}")
        if self.ntasks_per_node > MAX_TASKS_PER_NODE:
            raise JobError(f"--tasks-per-node: at most {MAX_TASKS_PER_NODE} workers per node")
        if self.gpus_per_node and self.tasks_per_node and self.tasks_per_node != self.gpus_per_node:
            raise JobError(
                f"--tasks-per-node {self.tasks_per_node} with --gpus-per-node "
                f"{self.gpus_per_node}: each task trains on one GPU, so give as many tasks per "
                "node as GPUs (or leave it out)"
            )
        if self.time is not None and parse_time(self.time) is None:
            raise JobError(
                f"--time: '{self.time}' is not a Slurm time limit (HH:MM:SS, MM, or D-HH:MM:SS)"
            )
        if kind not in KINDS:
            raise JobError(f"'pdl {kind}' cannot run on Slurm; only {' and '.join(KINDS)} can")
        if kind == "evaluate" and self.tasks > 1:
            raise JobError(
                "pdl evaluate runs as one task: leave out --nodes and --tasks-per-node "
                f"(asked for {self.tasks} tasks)"
            )
        strategy = option_value(argv, "--strategy")
        if kind == "train" and self.tasks > 1 and strategy not in (None, "multi_worker"):
            raise JobError(
                f"--strategy {strategy} cannot train over {self.tasks} Slurm tasks; "
                "leave it out (multi_worker is used)"
            )


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    max_time: str  # as Slurm prints it: UNLIMITED, 30:00, 1-00:00:00
    state: str
    nodes: int
    cpus: int

    @property
    def label(self) -> str:
        return (
            f"{self.name}{' (default)' if self.default else ''}: {self.nodes} node(s), {self.cpus} "
            f"CPUs, max time {self.max_time}{'' if self.state == 'UP' else ', ' + self.state}"
        )


# -- talking to Slurm -----------------------------------------------------------------------------


def _slurm(tool: str, *args: str, timeout: float = 30) -> str:
    """Run a Slurm client command; its stdout, or SlurmError with Slurm's message on one line."""
    exe = shutil.which(tool)
    if exe is None:
        raise SlurmError(
            f"Slurm is not available here: `{tool}` is not on PATH (run on a machine with "
            "Slurm's client commands, or use --backend local)"
        )
    try:
        done = subprocess.run(
            [exe, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise SlurmError(
            f"`{tool}` did not answer within {timeout:.0f} s: is slurmctld reachable?"
        ) from None
    if done.returncode != 0:
        raise SlurmError(
            f"{tool}: {_one_line(done.stderr or done.stdout) or f'exit status {done.returncode}'}"
        )
    return done.stdout


def _one_line(text: str) -> str:
    """Slurm's error lines (``sbatch: error: X``), de-duplicated and joined into one line."""
    seen: list[str] = []
    for line in text.strip().splitlines():
        line = re.sub(r"^\w+: (error|fatal): ", "", line.strip())
        if line and line not in seen:
            seen.append(line)
    return "; ".join(seen)


def _fields(line: str) -> dict[str, str]:
    """``Key=Value Key2=Value2`` (scontrol's one-line output) as a dict."""
    return dict(re.findall(r"(\w+)=(\S*)", line))


def partitions() -> list[Partition]:
    """The cluster's partitions (``scontrol show partition``), the default one first."""
    found = []
    for line in _slurm("scontrol", "show", "partition", "--oneliner").splitlines():
        f = _fields(line)
        if "PartitionName" in f:
            found.append(
                Partition(
                    name=f["PartitionName"],
                    default=f.get("Default") == "YES",
                    max_time=f.get("MaxTime", "UNLIMITED"),
                    state=f.get("State", "UP"),
                    nodes=int(f.get("TotalNodes") or 0),
                    cpus=int(f.get("TotalCPUs") or 0),
                )
            )
    return sorted(found, key=lambda p: not p.default)


def parse_time(text: str) -> int | None:
    """Seconds of a Slurm time limit (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``,
    ``D-HH:MM:SS``); None when it is not one (or is UNLIMITED)."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not m:
        return None
    days, a, b, c = m.groups()
    if days is not None:  # D-HH[:MM[:SS]]
        h, mi, s = int(a), int(b or 0), int(c or 0)
        return int(days) * 86400 + h * 3600 + mi * 60 + s
    if c is not None:  # HH:MM:SS
        return int(a) * 3600 + int(b) * 60 + int(c)
    return int(a) * 60 + int(b or 0)  # MM[:SS]


def _check_time_limit(options: SlurmOptions) -> None:
    """Refuse a --time over the partition's MaxTime: Slurm would take the job and leave it pending
    forever (reason PartitionTimeLimit) unless the cluster sets EnforcePartLimits."""
    if options.time is None:
        return
    parts = partitions()
    part = (
        next((p for p in parts if p.name == options.partition), None)
        if options.partition
        else next((p for p in parts if p.default), None)
    )
    if part is None:
        return  # unknown partition: sbatch says so in its own words
    limit = parse_time(part.max_time)
    if limit is not None and parse_time(options.time) > limit:
        raise SlurmError(
            f"--time {options.time} is over partition {part.name}'s limit of {part.max_time}; "
            "ask for less (the trainer resumes from its checkpoint, so a long run can be resumed)"
        )


# -- the batch script ------------------------------------------------------------------------------


def _absolute_paths(argv: list[str]) -> list[str]:
    """Path options made absolute: the batch script runs in the workdir, on another machine."""
    kinds = ALLOWED_COMMANDS[argv[0]]
    out = list(argv)
    for i, token in enumerate(out[:-1]):
        if kinds.get(token) == "path":
            value = out[i + 1]
            if token == "--config" and not Path(value).expanduser().exists():
                continue  # a config name such as cityscapes/resnet50_os32
            out[i + 1] = str(Path(value).expanduser().absolute())
    return out


def batch_script(job: Job, options: SlurmOptions, token: str) -> str:
    """The sbatch script of ``job``: Slurm directives, then one ``srun`` task per worker."""
    q = shlex.quote
    workdir = Path(job.workdir)
    directives = [
        f"--job-name=pdl-{job.id}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', job.name)}"[:100],
        f"--output={job.log_path.replace('%', '%%')}",  # % starts Slurm's file name patterns (%j)
        "--open-mode=append",  # resume and requeue add to the same log
        f"--nodes={options.nodes}",
        f"--ntasks-per-node={options.ntasks_per_node}",
    ]
    if options.partition:
        directives.append(f"--partition={options.partition}")
    if options.time:
        directives.append(f"--time={options.time}")
    if options.gpus_per_node:
        directives.append(f"--gres=gpu:{options.gpus_per_node}")
    # srun does not take --cpus-per-task over from sbatch (Slurm 22.05+), so both get it.
    cpus = f"--cpus-per-task={options.cpus_per_task} " if options.cpus_per_task else ""
    if cpus:
        directives.append(cpus.strip())
    directives.append("--requeue" if job.kind == "train" else "--no-requeue")
    package_parent = Path(__file__).resolve().parents[3]  # the folder holding panoptic_deeplab
    task = [
        sys.executable,
        "-m",
        "panoptic_deeplab.jobs.slurm_task",
        "--workdir",
        str(workdir),
        "--token",
        token,
        "--gpus-per-node",
        str(options.gpus_per_node),
        "--",
        *job.argv,
    ]
    header = attempt_header(job)
    return "\n".join(
        [
            "#!/bin/bash",
            f"# Written by `pdl jobs` for job {job.id}; submit again with: sbatch "
            f"{workdir / SCRIPT_FILE}",
            *(f"#SBATCH {d}" for d in directives),
            "",
            f"export PYTHONPATH={q(str(package_parent))}${{PYTHONPATH:+:$PYTHONPATH}}",
            # TF_CPP_MIN_LOG_LEVEL is left to pdl, which hides TensorFlow's start-up lines itself.
            "export PYTHONUNBUFFERED=1 TF_FORCE_GPU_ALLOW_GROWTH=true",
            f'echo {q(header)}" (Slurm job $SLURM_JOB_ID, restart ${{SLURM_RESTART_COUNT:-0}}, "'
            '"on $SLURM_JOB_NODELIST)"',
            f"rm -f {q(str(job.exit_file))}",
            # --kill-on-bad-exit: a failed worker stops the others, which would wait for it forever.
            f"srun --kill-on-bad-exit=1 --distribution=block {cpus}{' '.join(q(a) for a in task)}",
            "code=$?",
            f"echo $code > {q(str(job.exit_file))}.tmp && mv -f {q(str(job.exit_file))}.tmp "
            f"{q(str(job.exit_file))}",
            "exit $code",
            "",
        ]
    )


# -- the backend -----------------------------------------------------------------------------------


def _options(data: dict) -> SlurmOptions:
    options = data.get("options") or {}
    if isinstance(options, str):  # as stores before backend_data kept it
        options = json.loads(options)
    known = {f.name for f in fields(SlurmOptions)}  # a record of another version may have more
    return SlurmOptions(**{k: v for k, v in options.items() if k in known})


def slurm_info(store: JobStore, job: Job) -> tuple[str, SlurmOptions]:
    """The Slurm job id of the latest attempt and the options it was submitted with."""
    if "token" not in job.backend_data:
        raise JobError(f"job {job.id} is marked as a Slurm job but has no Slurm record")
    return str(job.backend_data.get("slurm_id") or ""), _options(job.backend_data)


class SlurmBackend(Backend):
    name = SLURM
    help = "sbatch on the cluster (the workdir, data set and Python on shared storage)"
    cli_options = (
        ("--partition", dict(help="Slurm partition (default: the cluster's default)")),
        ("--nodes", dict(type=int, default=1, help="nodes (default 1)")),
        (
            "--tasks-per-node",
            dict(type=int, help="workers per node (default: --gpus-per-node, or 1)"),
        ),
        (
            "--gpus-per-node",
            dict(
                type=int,
                default=0,
                help="GPUs per node, requested as --gres=gpu:G, one per task (default 0: CPU)",
            ),
        ),
        ("--cpus-per-task", dict(type=int, help="CPUs per worker (default: Slurm's, usually 1)")),
        ("--time", dict(help="time limit, HH:MM:SS or D-HH:MM:SS (default: the partition's)")),
    )

    def options_from_cli(self, values: dict[str, Any]) -> SlurmOptions:
        return SlurmOptions(**{f.name: values[f.name] for f in fields(SlurmOptions)})

    def prepare(self, argv: list[str], options: SlurmOptions | None) -> list[str]:
        options = options or SlurmOptions()
        options.check(argv[0], argv)
        argv = _absolute_paths(argv)
        _slurm("sbatch", "--version")  # no Slurm: say so before anything is written
        _check_time_limit(options)
        return argv

    def workdir(self, path: Path) -> Path:
        wd = path.absolute()  # as the user sees it: on shared storage a symlink may differ by node
        if re.search(r"\s", str(wd)):
            raise JobError(
                f"{wd}: a Slurm job's workdir cannot contain spaces (sbatch's --output does not "
                "take them); choose another folder"
            )
        return wd

    def initial_data(self, options: SlurmOptions | None) -> dict:
        return {
            "slurm_id": "",
            "options": asdict(options or SlurmOptions()),
            "token": secrets.token_hex(8),
        }

    def submit(self, store: JobStore, job: Job) -> Job:
        """``sbatch`` a job just recorded. When Slurm refuses it, what this submission wrote to the
        workdir is removed (the store removes the record) and SlurmError carries Slurm's message."""
        wd = Path(job.workdir)
        created = not wd.exists()
        ours = [name for name in (TOKEN_FILE, SCRIPT_FILE) if not (wd / name).exists()]
        try:
            return self.start(store, job)
        except BaseException:
            for leftover in ours:  # what this submission wrote; an earlier run's files stay
                (wd / leftover).unlink(missing_ok=True)
            if created and wd.is_dir() and not any(wd.iterdir()):
                wd.rmdir()
            raise

    def start(self, store: JobStore, job: Job) -> Job:
        """Write the batch script and hand it to sbatch (submit, resume)."""
        _, options = slurm_info(store, job)
        token = job.backend_data["token"]
        workdir = Path(job.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / TOKEN_FILE).write_text(token)
        script = workdir / SCRIPT_FILE
        script.write_text(batch_script(job, options, token))
        job.exit_file.unlink(missing_ok=True)
        out = _slurm("sbatch", "--parsable", str(script))
        slurm_id = out.strip().split(";")[0]
        if not slurm_id.isdigit():
            raise SlurmError(f"sbatch: unexpected answer {out.strip()!r}")
        return store.update(
            job.id,
            backend_data={**job.backend_data, "slurm_id": slurm_id},
            state=QUEUED,
            started_at=time.time(),
            ended_at=None,
            exit_code=None,
            pid=None,
            message=f"submitted as Slurm job {slurm_id}",
            attempts=job.attempts + 1,
            cancel_requested=False,
            progress={},
        )

    def poll(self, store: JobStore, job: Job) -> Outcome | None:
        """The job's state from Slurm (from its exit file once Slurm forgot it)."""
        slurm_id, _ = slurm_info(store, job)
        try:
            info = _slurm_state(slurm_id)
        except SlurmError as err:  # Slurm unreachable for now: keep the state, say why
            job.message = f"cannot ask Slurm about job {slurm_id}: {err}"
            return None
        if info is None:
            code = read_exit_file(job.exit_file)
            outcome = store.outcome_of_exit(
                job,
                code,
                unknown=f"Slurm no longer knows job {slurm_id} (no accounting) and it left no "
                "exit status: it was killed before the end",
            )
            if outcome.state == CANCELLED:
                outcome = Outcome(CANCELLED, f"Slurm job {slurm_id} cancelled", code)
            elif outcome.state == FAILED and code is not None:
                message = f"Slurm job {slurm_id} exited with status {code}; see the log"
                outcome = Outcome(FAILED, message, code)
            info = {}
        else:
            outcome = _outcome(job, slurm_id, info)
        if outcome.state == FAILED:  # the task's own line says more than Slurm's status
            no_log = info.get("JobState") == "FAILED" and not Path(job.log_path).is_file()
            message = (
                _task_error(store.attempt_log(job))
                or (_missing_log(job) if no_log else "")
                or outcome.message
            )
            outcome = Outcome(FAILED, message, outcome.exit_code)
        return outcome

    def cancel(self, store: JobStore, job: Job, grace_s: float) -> Job:
        """``scancel`` the job (Slurm sends SIGTERM, then SIGKILL after its KillWait); wait up to
        ``grace_s`` for Slurm to report it cancelled."""
        slurm_id, _ = slurm_info(store, job)
        store.update(job.id, cancel_requested=True)
        _slurm("scancel", slurm_id)
        deadline = time.monotonic() + grace_s
        job = store.refresh(job.id)
        while job.is_active and time.monotonic() < deadline:
            time.sleep(0.2)
            job = store.refresh(job.id)
        return job

    def describe(self, store: JobStore, job: Job) -> str:
        slurm_id, o = slurm_info(store, job)
        gpus = f", {o.gpus_per_node} GPU(s) per node" if o.gpus_per_node else ", CPU"
        return (
            f"Slurm job {slurm_id} on partition {o.partition or '(default)'}: {o.nodes} node(s) x "
            f"{o.ntasks_per_node} task(s){gpus}"
            + (f", {o.cpus_per_task} CPUs per task" if o.cpus_per_task else "")
            + (f", time limit {o.time}" if o.time else "")
        )


BACKEND = SlurmBackend()


def submit(
    store: JobStore, argv: list[str], options: SlurmOptions, *, name: str | None = None
) -> Job:
    """``store.submit(argv, name=name, backend="slurm", options=options)``."""
    return store.submit(argv, name=name, backend=SLURM, options=options)


def describe(store: JobStore, job: Job) -> str:
    """``store.describe(job)`` of a Slurm job."""
    return BACKEND.describe(store, job)


def _slurm_state(slurm_id: str) -> dict[str, str] | None:
    """Slurm's view of a job: JobState, Reason, ExitCode, NodeList... None once Slurm forgot it."""
    try:
        line = _slurm("scontrol", "show", "job", "--oneliner", slurm_id)
        f = _fields(line)
        if f.get("JobState"):
            return f
    except SlurmError as err:
        if "Invalid job id" not in str(err):
            raise
    try:  # purged from slurmctld (MinJobAge): ask the accounting database, where there is one
        out = _slurm(
            "sacct",
            "--noheader",
            "--parsable2",
            "--allocations",
            "--jobs",
            slurm_id,
            "--format=State,ExitCode,Reason,NodeList",
        )
    except SlurmError:
        return None  # no accounting storage
    for line in out.splitlines():
        state, exit_code, reason, nodes = (line.split("|") + ["", "", "", ""])[:4]
        if state:
            return {
                "JobState": state.split()[0],
                "ExitCode": exit_code,
                "Reason": reason,
                "NodeList": nodes,
            }
    return None


def _outcome(job: Job, slurm_id: str, info: dict[str, str]) -> Outcome:
    """Our state and message from Slurm's record of the job."""
    slurm_state = info["JobState"].split("+")[0]  # sacct: CANCELLED by 0 -> CANCELLED
    state = _STATE_MAP.get(slurm_state, RUNNING)
    if job.cancel_requested and state == FAILED:
        state = CANCELLED
    reason = info.get("Reason", "None")
    if state == QUEUED:
        message = f"waiting in Slurm's queue as job {slurm_id}" + (
            f" (reason: {reason})" if reason != "None" else ""
        )
    elif state == RUNNING:
        message = f"running as Slurm job {slurm_id} on {info.get('NodeList', '?')}"
    elif state == SUCCEEDED:
        message = ""
    elif state == CANCELLED:
        message = f"Slurm job {slurm_id} cancelled"
    else:
        message = (
            f"Slurm job {slurm_id} {_WHY.get(slurm_state, slurm_state.lower())} (exit code "
            f"{info.get('ExitCode', '?')}, reason {reason}); see the log"
        )
    exit_code = info.get("ExitCode", "")
    code = _exit_code(exit_code) if exit_code[:1].isdigit() else read_exit_file(job.exit_file)
    return Outcome(state, message, code)


def _exit_code(text: str) -> int:
    """Slurm's ``status:signal`` as a shell would report it (``0:15`` -> 143)."""
    status, _, sig = text.partition(":")
    return 128 + int(sig) if sig.isdigit() and int(sig) else int(status)


def _missing_log(job: Job) -> str:
    return (
        f"Slurm could not write the log {job.log_path} on the job's node: the workdir must be on "
        "storage every node sees"
    )


def _task_error(attempt_log: str) -> str:
    """The first 'error: task ...' line a task of the latest attempt wrote to the log (it cannot see
    the workdir or the data)."""
    return next(
        (
            line[len("error: ") :]
            for line in attempt_log.splitlines()
            if line.startswith("error: task ")
        ),
        "",
    )
