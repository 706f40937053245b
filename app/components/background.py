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

POLL_S = 0.25

_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pdl-app-work")
_futures: dict[Hashable, Future] = {}  # running, or done and not yet fetched
_lock = threading.Lock()


def start(key: Hashable, make: Callable[[], Any]) -> Future:
    """``make()`` on a worker thread, once per ``key`` until a ``wait`` fetches its result."""
    with _lock:
        future = _futures.get(key)
        if future is None or (future.done() and future.exception() is not None):
            future = _pool.submit(make)  # a failed run is tried again by the next asker
            _futures[key] = future
        return future


def running(key: Hashable) -> bool:
    with _lock:
        future = _futures.get(key)
    return future is not None and not future.done()


def wait(key: Hashable, make: Callable[[], Any], label: str) -> Any:
    """The result of ``make()`` for ``key`` (raised again if it failed), with ``label`` and the
    seconds waited shown while it runs."""
    future = start(key, make)
    if not future.done():
        line = st.empty()
        began = time.monotonic()
        while not future.done():
            line.caption(f":material/hourglass_top: {label}… {time.monotonic() - began:.0f} s")
            time.sleep(POLL_S)
        line.empty()
    with _lock:  # the asker keeps the result (in its cache): this module holds no memory
        if _futures.get(key) is future:
            del _futures[key]
    return future.result()
