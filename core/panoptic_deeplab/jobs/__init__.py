"""Background jobs: records in SQLite and a launcher for ``pdl`` commands, used by the app and the CLI.

Each job is its own OS process in its own session (so a crash never takes the app down, and cancel
can signal the whole process group), with stdout and stderr going to a log file. Only ``pdl``
sub-commands on an allow-list, with allow-listed options and checked values, are launched, always as
an argument list, never through a shell.

The process runs ``python -m panoptic_deeplab.jobs --exit-file F -- <pdl argv>``: the same ``pdl``
entry point, wrapped only so that the exit status is written to ``F`` and survives an app restart.
Records live in SQLite, so a restarted app finds its jobs again; a job recorded as running whose
process is gone (or whose pid now belongs to another process) is shown as failed.

When a training job succeeds, its model bundle (``<workdir>/model``) is registered in the ``models``
table so the app can inspect it and compare it with its base.

A job's ``backend`` says where it runs: ``local`` (this machine, as above, the default) or ``slurm``
(a batch job on a Slurm cluster, see ``.slurm``); refresh, cancel and resume go to its backend.

One module each: ``errors`` (JobError), ``arguments`` (the allow-list, read from each command's
argparse), ``gpus`` (nvidia-smi, a job's environment), ``records`` (states, Job, Progress,
ModelRecord), ``process`` (process control, and the runner ``__main__`` starts), ``store``
(JobStore: the SQLite records and local launching), ``slurm`` (the Slurm backend) and
``slurm_task`` (what each Slurm task runs). This module only re-exports the public names.
"""

from .arguments import (
    ALLOWED_COMMANDS,
    ALLOWED_POSITIONALS,
    JOB_COMMANDS,
    option_value,
    review_score_command,
    train_command,
    validate_command,
)
from .errors import JobError
from .gpus import GPU, detect_gpus, job_environment, parse_nvidia_smi
from .process import failure_message
from .records import (
    CANCELLED,
    FAILED,
    FINAL_STATES,
    LOCAL,
    QUEUED,
    RUNNING,
    SLURM,
    SUCCEEDED,
    Job,
    ModelRecord,
    Progress,
)
from .store import JobStore, default_root

__all__ = [
    "ALLOWED_COMMANDS",
    "ALLOWED_POSITIONALS",
    "CANCELLED",
    "FAILED",
    "FINAL_STATES",
    "GPU",
    "JOB_COMMANDS",
    "LOCAL",
    "QUEUED",
    "RUNNING",
    "SLURM",
    "SUCCEEDED",
    "Job",
    "JobError",
    "JobStore",
    "ModelRecord",
    "Progress",
    "default_root",
    "detect_gpus",
    "failure_message",
    "job_environment",
    "option_value",
    "parse_nvidia_smi",
    "review_score_command",
    "train_command",
    "validate_command",
]
