"""safe_files: atomic writes, full disks, one writer per folder, leftovers of killed writers."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from panoptic_deeplab.errors import UserError
from panoptic_deeplab.safe_files import (
    DiskFullError,
    LockedError,
    RunLock,
    disk_full_as_user_error,
    is_disk_full,
    lock_holder,
    remove_leftovers,
    temp_path,
    write_atomic,
    write_json_atomic,
)


def test_write_atomic_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "status.json"
    write_json_atomic(path, {"step": 1})
    write_json_atomic(path, {"step": 2}, durable=True)
    assert json.loads(path.read_text()) == {"step": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]


def test_a_full_disk_keeps_the_old_file_and_names_folder_free_space_and_fix(small_disk, fill_disk):
    disk = small_disk("1m")
    path = disk / "report.json"
    write_atomic(path, "old")
    fill_disk(disk)
    with pytest.raises(DiskFullError) as caught:
        write_atomic(path, "x" * 200_000)
    message = str(caught.value)
    assert str(disk) in message and "free" in message and "Free some space" in message
    assert isinstance(caught.value, UserError)
    assert path.read_text() == "old"
    assert not temp_path(path).exists()


def test_disk_full_block_translates_and_cleans_up(small_disk, fill_disk):
    disk = small_disk("1m")
    fill_disk(disk)
    partial = disk / "partial.bin"
    with pytest.raises(DiskFullError, match="writing the export"):
        with disk_full_as_user_error(disk, "the export", cleanup=[partial]):
            with open(partial, "wb") as f:
                f.write(b"\1" * 500_000)
                f.flush()
    assert not partial.exists()
    with pytest.raises(ValueError):  # other errors pass unchanged
        with disk_full_as_user_error(disk):
            raise ValueError("not a disk problem")


def test_disk_full_is_recognised_inside_other_libraries_errors():
    assert is_disk_full(OSError(28, "No space left on device"))
    assert is_disk_full(RuntimeError("ResourceExhaustedError: ... No space left on device"))
    assert not is_disk_full(OSError(13, "Permission denied"))


def test_a_second_writer_is_refused_with_the_holders_name(tmp_path):
    with RunLock(tmp_path, "pdl train"):
        holder = lock_holder(tmp_path)
        assert holder["pid"] == os.getpid() and holder["what"] == "pdl train"
        with pytest.raises(LockedError, match=rf"pdl train \(pid {os.getpid()} on "):
            RunLock(tmp_path, "pdl train").acquire()
    assert lock_holder(tmp_path) is None
    with RunLock(tmp_path, "pdl train") as again:  # released: the next run takes it
        assert again.held


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    code = textwrap.dedent(f"""
        import os, signal, sys
        from panoptic_deeplab.safe_files import RunLock
        RunLock({str(tmp_path)!r}, "pdl train").acquire()
        print("held", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "held" and done.returncode == -9
    assert lock_holder(tmp_path) is None
    with RunLock(tmp_path, "pdl train") as lock:
        assert lock.held


def test_leftovers_of_dead_writers_are_removed_and_named(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    stale_dir = tmp_path / f".model.tmp-{dead_pid}"
    (stale_dir / "variables").mkdir(parents=True)
    stale_file = tmp_path / f".panoptic.json.tmp-{dead_pid}"
    stale_file.write_text("{")
    own = temp_path(tmp_path / "status.json")  # this process is alive: not a leftover
    own.write_text("{}")
    said = []
    removed = remove_leftovers(tmp_path, say=said.append)
    assert sorted(removed) == sorted([stale_dir, stale_file])
    assert not stale_dir.exists() and not stale_file.exists() and own.exists()
    assert any("'model'" in line and str(dead_pid) in line for line in said)
