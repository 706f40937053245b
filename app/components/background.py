"""Long work (importing TensorFlow and loading a model, running the network) off the script thread,
shared by all sessions of the app process.

A page asks for a result with ``wait(key, make, label)``: the first asker starts ``make`` on a
worker thread, every asker waits for the same run while a progress line counts the seconds. Waiting
this way keeps a session responsive: each update of the line lets Streamlit stop the run when the
user clicks elsewhere (the work goes on and its result is there for the next run), and the page
above the line is already drawn. ``start`` begins a piece of work nobody waits for yet (the
warm-up).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

POLL_S = 0.25

_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pdl-app-work")
_futures: dict[Hashable, Future] = {}  # running only: this module keeps no result
_lock = threading.Lock()


def start(key: Hashable, make: Callable[[], Any]) -> Future:
    """``make()`` on a worker thread, once per ``key`` while it runs. ``make`` keeps its result
    where later askers look first (a cache): a session that stops waiting (the user clicked
    elsewhere) leaves nothing behind here, and its result is there for the next run."""
    with _lock:
        future = _futures.get(key)
        if future is not None:
            return future
        future = _pool.submit(make)
        _futures[key] = future
    future.add_done_callback(lambda done: _forget(key, done))
    return future


def _forget(key: Hashable, future: Future) -> None:
    with _lock:
        if _futures.get(key) is future:
            del _futures[key]


def running(key: Hashable) -> bool:
    with _lock:
        return key in _futures


def wait(key: Hashable, make: Callable[[], Any], label: str) -> Any:
    """The result of ``make()`` for ``key`` (raised again if it failed: the next asker tries
    again), with ``label`` and the seconds waited shown while it runs."""
    future = start(key, make)
    if not future.done():
        line, shown, began = st.empty(), None, time.monotonic()
        while not future.done():
            seconds = int(time.monotonic() - began)
            if seconds != shown:  # one message a second per waiting session
                line.caption(f":material/hourglass_top: {label}… {seconds} s")
                shown = seconds
            _stop_if_asked()
            time.sleep(POLL_S)
        line.empty()
    return future.result()


def _stop_if_asked() -> None:
    """End this script run now if the user asked for another (a click elsewhere)."""
    ctx = get_script_run_ctx()
    if ctx is not None:
        ctx.yield_check()
