"""``map`` over forked processes, for a command-line run that is CPU-bound in many small NumPy
steps (threads would queue on the GIL between them).

Cheaper to start than ``multiprocessing.Pool``, which matters for a command that runs in a third
of a second: no import of ``multiprocessing``, no pickling of the inputs (the children inherit
them), and the parent computes a share itself. Items are dealt out in turn (item i to process
``i % workers``), which balances data sets whose image sizes vary slowly.

Measured against the standard library's ``ProcessPoolExecutor`` (fork context, one chunk per
worker) with ``python benchmarks/bench_pq.py --with-process-pool``: the pool makes the 50-image
``pdl pq`` run 8-15 % slower (the README's performance table has the figures), so this stays.
"""

from __future__ import annotations

import os
import pickle
import signal


def _payload(ok: bool, value) -> bytes:
    data = pickle.dumps((ok, value), pickle.HIGHEST_PROTOCOL)
    if not ok:
        pickle.loads(data)  # an exception that pickles but does not unpickle: caught by the caller
    return data


def _child(fn, items, share: int, workers: int, write_fd: int) -> None:
    """Compute a share and send it (or the exception) to the parent; never return."""
    status = 0
    try:
        try:
            payload = _payload(True, [fn(x) for x in items[share::workers]])
        except BaseException as err:  # noqa: BLE001 - sent to the parent, which raises it
            status = 1
            try:
                payload = _payload(False, err)
            except Exception:  # noqa: BLE001 - an exception that does not travel: send its text
                payload = _payload(False, RuntimeError(f"{type(err).__name__}: {err}"))
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(payload)
    except BaseException:  # noqa: BLE001 - the parent reports the broken pipe
        status = 1
    finally:
        os._exit(status)  # no atexit handlers, no flushing of the parent's buffers


def forked_map(fn, items: list, workers: int) -> list:
    """``[fn(x) for x in items]`` in ``workers`` processes (this one and ``workers - 1`` forked
    children). An exception in any process is raised here (this process's share first, then the
    children's in order); every child is then stopped and reaped."""
    workers = max(1, min(int(workers), len(items)))
    if workers == 1 or not hasattr(os, "fork"):
        return [fn(x) for x in items]
    children = {}  # pid -> read end of its pipe (None once read); removed when reaped
    try:
        for share in range(1, workers):
            read_fd, write_fd = os.pipe()
            try:
                pid = os.fork()
            except OSError:
                os.close(read_fd)
                os.close(write_fd)
                raise
            if pid == 0:
                os.close(read_fd)
                _child(fn, items, share, workers, write_fd)
            os.close(write_fd)
            children[pid] = read_fd
        shares = [[fn(x) for x in items[0::workers]]]
        for pid in list(children):
            read_fd, children[pid] = children[pid], None
            with os.fdopen(read_fd, "rb") as pipe:
                data = pipe.read()
            os.waitpid(pid, 0)
            del children[pid]
            if not data:
                raise RuntimeError(f"worker process {pid} ended without a result")
            ok, value = pickle.loads(data)
            if not ok:
                raise value
            shares.append(value)
    finally:
        _stop(children)
    out = [None] * len(items)
    for share, results in enumerate(shares):
        out[share::workers] = results
    return out


def _stop(children: dict) -> None:
    """Stop and reap the children left after an error (first signal them all, then wait). SIGKILL:
    a child only computes into its pipe, so nothing is lost, and a child cannot outlive it the way
    SIGTERM can be outlived (a handler inherited from this process, e.g. an in-process training
    run's, or one the child has not yet reset when the signal comes)."""
    for pid, read_fd in children.items():
        if read_fd is not None:
            os.close(read_fd)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass
