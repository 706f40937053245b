"""Process control of local jobs (is a pid still our process, signal its group, read its exit file
and its failure) and the recorded runner a job process runs (``python -m panoptic_deeplab.jobs``,
see ``__main__``)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from .arguments import validate_command
from .errors import JobError


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` (Linux), to tell our process from a later one reusing its id."""
    fields = _stat_fields(pid)
    return fields[19] if fields else None  # field 22: starttime


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces


def _started_at(ticks: str) -> float | None:
    """Epoch seconds of a kernel start time (clock ticks since boot)."""
    try:
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return boot + int(ticks) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError):
        return None


def alive(pid: int | None, start: str | None, started_by: float | None = None) -> bool:
    """Whether ``pid`` is still the job's process: it exists, has not exited (a zombie has), and is
    the process that was started (kernel start time ``start``; without one, a process that began
    after ``started_by``, epoch seconds, is a later one that reuses the id)."""
    if not pid:
        return False
    if Path("/proc").is_dir():
        fields = _stat_fields(pid)
        if fields is None or fields[0] in ("Z", "X"):
            return False
        if start is not None:
            return fields[19] == start
        began = _started_at(fields[19]) if started_by is not None else None
        return began is None or began <= started_by + 2
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pid: int | None, sig: int) -> None:
    if not pid:
        return
    try:
        os.killpg(pid, sig)  # start_new_session made the job the leader of its own group
    except (ProcessLookupError, PermissionError):
        pass


# The names the tests of the app use.
_alive, _process_start = alive, process_start


def failure_message(log_tail: str, code: int) -> str:
    """What a failed job said about its failure: the last ``error: ...`` report of ``pdl`` (a
    UserError, which names the file and the fix; it may span lines), else the last line of a Python
    traceback, else only the exit status."""
    lines = log_tail.rstrip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("error: "):
            text = "\n".join([lines[i][len("error: ") :], *lines[i + 1 :]]).strip()
            return f"{text}\n(exited with status {code})"
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("Traceback (most recent call last)"):
            last = next(
                (line for line in reversed(lines[i:]) if line and not line.startswith(" ")), ""
            )
            if last:
                return f"{last.strip()}\n(exited with status {code}; the log has the traceback)"
    return f"exited with status {code}; see the log"


def read_exit_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _run_recorded(exit_file: str, argv: list[str]) -> int:
    """Run ``pdl argv`` in this process and write its exit status to ``exit_file``."""
    from ..cli import main

    def _terminate(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    code = 1
    try:
        validate_command(argv)
        code = int(main(argv) or 0)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except JobError as err:
        print(f"error: {err}", file=sys.stderr)
        code = 2
    except BaseException:  # noqa: BLE001 - any failure of the job is printed to its log
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        tmp = Path(exit_file + ".tmp")
        tmp.write_text(str(code))
        os.replace(tmp, exit_file)
    return code
