"""Background jobs: records in SQLite and launchers for ``pdl`` commands (for the app and the CLI).

Only ``pdl`` sub-commands on an allow-list, with allow-listed options and checked values, are
launched, always as an argument list, never through a shell. Records live in SQLite
(``<workdir>/jobs.sqlite``), so a restarted app finds its jobs again; a job recorded as running
whose process is gone (or whose pid now belongs to another process) is shown as failed.

A job's ``backend`` says where it runs, by name: ``local`` (a process on this machine, the default)
or ``slurm`` (a batch job on a Slurm cluster); each is one module of ``.backends``, and a new one is
a new module there. The store (``JobStore``) records, reconciles and reports; submit, refresh,
cancel and resume go to the job's backend.

When a training job succeeds, its model bundle (``<workdir>/model``) is registered in the work
directory's model registry (the ``models`` table), so the app can inspect it and compare it with its
base; a registered model whose folder is gone is reported as missing and never offered for a job.

One module each: ``errors`` (JobError), ``arguments`` (the allow-list, read from each command's
argparse), ``gpus`` (nvidia-smi, a job's environment), ``records`` (states, stages, Job, Progress,
ModelRecord), ``progress`` (how far a job is, from what its run writes), ``process`` (process
control, and the runner ``__main__`` starts), ``store`` (JobStore), ``backends`` (the registry, and
``local`` and ``slurm``) and ``slurm_task`` (what each Slurm task runs). Listing, showing and
cancelling jobs import no TensorFlow. This module only re-exports the public names.
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
from .backends import Backend, backend_names, get_backend
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
    STAGES,
    SUCCEEDED,
    Job,
    ModelRecord,
    Progress,
)
from .store import REPAIR_HINT, JobStore, default_root

__all__ = [
    "ALLOWED_COMMANDS",
    "REPAIR_HINT",
    "STAGES",
    "Backend",
    "backend_names",
    "get_backend",
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
