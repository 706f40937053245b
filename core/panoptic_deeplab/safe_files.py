"""Writing files so that a fault loses nothing.

- ``write_atomic`` / ``write_json_atomic``: the new content appears whole or not at all.
- ``DiskFullError``: a full disk (``ENOSPC``, or TensorFlow's errors that carry that text) becomes
  one clear message naming the folder, the free space and the fix; ``disk_full_as_user_error``
  translates it around a block of writes and removes the block's temporaries.
- ``RunLock``: one writer per folder. The lock is an ``flock`` that the operating system releases
  when its process ends, however it ends (SIGKILL included), so it is taken over exactly when the
  holder is gone; the lock file names the holder (pid, host, start time, command) for the message.
- ``remove_leftovers``: temporaries named ``.NAME.tmp-PID`` whose process is gone are what a killed
  writer left behind; the next writer removes them and says what they were.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .errors import UserError

_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXTS = ("No space left on device", "Disk quota exceeded")
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$")
LOCK_NAME = ".pdl.lock"


class DiskFullError(UserError, OSError):
    """The disk (or the user's quota) ran out while writing; nothing complete was replaced."""


class LockedError(UserError):
    """Another live process is writing to the same folder."""


# --- full disks -----------------------------------------------------------------------------------


def is_disk_full(err: BaseException) -> bool:
    """True for ENOSPC / EDQUOT, also when TensorFlow or h5py wrapped it in an error of its own."""
    if isinstance(err, DiskFullError):
        return True
    if isinstance(err, OSError) and err.errno in _DISK_FULL_ERRNOS:
        return True
    text = str(err)
    return any(marker in text for marker in _DISK_FULL_TEXTS)


def free_bytes(path: str | os.PathLike) -> int | None:
    """Free bytes on the file system holding ``path`` (its nearest existing parent)."""
    path = Path(path).absolute()
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def human_bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # not reached


def disk_full_error(folder: str | os.PathLike, what: str = "") -> DiskFullError:
    """The message for a full disk under ``folder`` while writing ``what``."""
    folder = Path(folder)
    doing = f" while writing {what}" if what else ""
    return DiskFullError(
        errno.ENOSPC,
        f"{folder}: no space left on the device{doing} ({human_bytes(free_bytes(folder))} free). "
        "Files written before are unchanged and the incomplete ones were removed. Free some space "
        "on that disk, or choose an output folder on another disk, and run the command again.",
    )


def remove_quietly(path: str | os.PathLike) -> None:
    """Remove a file or folder if it exists; a failure to remove is not worth a second error."""
    path = Path(path)
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


@contextlib.contextmanager
def disk_full_as_user_error(
    folder: str | os.PathLike, what: str = "", cleanup: Iterable[str | os.PathLike] = ()
) -> Iterator[None]:
    """Inside the block, a full disk raises ``DiskFullError`` for ``folder``, after the paths in
    ``cleanup`` (the block's temporaries) are removed. Other errors pass unchanged."""
    try:
        yield
    except DiskFullError:
        for path in cleanup:
            remove_quietly(path)
        raise
    except Exception as err:
        if not is_disk_full(err):
            raise
        for path in cleanup:
            remove_quietly(path)
        raise disk_full_error(folder, what) from err


# --- atomic writes --------------------------------------------------------------------------------


def temp_path(path: str | os.PathLike) -> Path:
    """The temporary beside ``path`` that this process writes first: ``.NAME.tmp-PID``."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_atomic(path: str | os.PathLike, data: bytes | str, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary and a rename: a reader sees the old content or
    the new, never a part. ``durable`` also flushes it to the disk (fsync) before the rename."""
    path = Path(path)
    tmp = temp_path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as f:
            f.write(payload)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        remove_quietly(tmp)
        if isinstance(err, Exception) and is_disk_full(err) and not isinstance(err, DiskFullError):
            raise disk_full_error(path.parent, path.name) from err
        raise


def write_json_atomic(
    path: str | os.PathLike, data, *, indent: int | None = 2, durable: bool = False
) -> None:
    """``write_atomic`` of ``data`` as JSON (UTF-8, a trailing newline)."""
    write_atomic(path, json.dumps(data, indent=indent) + "\n", durable=durable)


# --- what killed writers leave --------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def leftover_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Entries ``.NAME.tmp-PID`` in ``folder`` whose process is gone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        match = _TEMP_NAME.match(entry.name)
        if match and not pid_alive(int(match["pid"])):
            found.append(entry)
    return found


def remove_leftovers(
    folder: str | os.PathLike, say: Callable[[str], None] | None = None
) -> list[Path]:
    """Remove what killed writers left in ``folder``; say what each was (to stderr by default)."""
    say = say or (lambda text: print(text, file=sys.stderr))
    removed = leftover_temporaries(folder)
    for entry in removed:
        match = _TEMP_NAME.match(entry.name)
        kind = "folder" if entry.is_dir() else "file"
        say(
            f"removed {entry}: an incomplete {kind} of {match['name']!r} left by process "
            f"{match['pid']}, which is gone (it was stopped while writing)"
        )
        remove_quietly(entry)
    return removed


# --- one writer per folder ------------------------------------------------------------------------


class RunLock:
    """``with RunLock(folder, "pdl train"):`` holds ``folder/.pdl.lock`` for the block.

    A second holder (another process, or another RunLock in this one) gets ``LockedError`` naming
    the first. The operating system drops the lock when its process ends, so a killed holder never
    blocks the next run. Child processes forked while the lock is held share it until they exit.
    """

    def __init__(self, folder: str | os.PathLike, what: str, name: str = LOCK_NAME):
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / name
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockedError(
                f"{self.folder} is in use by {describe_holder(holder)}. Two writers would mix "
                f"their files; wait until it ends or stop it, then run {self.what} again "
                "(or use another folder)."
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "what": self.what,
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except BaseException:  # e.g. a full disk: never keep a lock nobody will release
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_holder(folder: str | os.PathLike, name: str = LOCK_NAME) -> dict | None:
    """Who holds ``folder``'s lock now (pid, host, started, what), or None when nobody does."""
    path = Path(folder) / name
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd) or {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def describe_holder(holder: dict | None) -> str:
    if not holder:
        return "another process"
    return (
        f"{holder.get('what', 'another run')} (pid {holder.get('pid', '?')} on "
        f"{holder.get('host', '?')}, started {holder.get('started', '?')})"
    )


def _read_holder(fd: int) -> dict | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
