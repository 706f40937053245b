"""forked_map: same results and order as a list comprehension, errors raised in the parent, and
no child left behind (running or as a zombie)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from panoptic_deeplab.errors import DatasetError
from panoptic_deeplab.evaluation.forked_map import forked_map


def _gone(pid: int) -> bool:
    """True once ``pid`` is reaped (a zombie still answers signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("workers", [1, 2, 3, 5, 9])
def test_results_come_back_in_item_order(workers):
    items = list(range(7))
    out = forked_map(lambda x: (x * x, os.getpid()), items, workers)
    assert [v for v, _ in out] == [x * x for x in items]
    pids = {pid for _, pid in out}
    assert len(pids) == min(workers, len(items))  # the parent and workers - 1 children shared them
    assert os.getpid() in pids
    assert all(_gone(pid) for pid in pids - {os.getpid()})


def test_a_childs_exception_is_raised_here_and_every_child_is_reaped(tmp_path):
    def work(x):
        (tmp_path / f"{os.getpid()}").touch()
        if x == 4:  # item 4 of 6 with 3 workers: the child with share 1
            raise DatasetError(f"bad item {x}")
        return x

    with pytest.raises(DatasetError, match="bad item 4"):
        forked_map(work, list(range(6)), 3)
    children = {int(p.name) for p in tmp_path.iterdir()} - {os.getpid()}
    assert children and all(
        _gone(pid) for pid in children
    )  # (the other child may be stopped unstarted)


def test_an_exception_that_does_not_pickle_arrives_as_its_text():
    class Local(Exception):  # a local class cannot be pickled
        pass

    def work(x):
        if x == 1:
            raise Local("only here")
        return x

    with pytest.raises(RuntimeError, match="Local: only here"):
        forked_map(work, [0, 1], 2)


def _ignore(*_):
    pass


@pytest.mark.parametrize("sigterm_handler", [signal.SIG_DFL, _ignore], ids=["default", "ignoring"])
def test_an_error_in_this_process_stops_the_children(tmp_path, sigterm_handler):
    """Also when this process handles SIGTERM itself (as an in-process `pdl train` does): that
    handler is not the children's way out."""
    parent = os.getpid()

    def work(x):
        if os.getpid() == parent:
            raise ValueError("parent share failed")
        (tmp_path / f"{os.getpid()}").touch()
        time.sleep(30)  # would hold the test for 30 s if the child were waited for, not stopped
        return x

    old = signal.signal(signal.SIGTERM, sigterm_handler)
    try:
        start = time.perf_counter()
        with pytest.raises(ValueError, match="parent share failed"):
            forked_map(work, list(range(4)), 2)
        assert time.perf_counter() - start < 20
    finally:
        signal.signal(signal.SIGTERM, old)
    assert all(_gone(int(p.name)) for p in tmp_path.iterdir())


class TwoArguments(Exception):
    def __init__(self, a, b):  # pickles, but unpickling calls __init__ with one argument
        super().__init__(f"{a} and {b}")


def test_an_exception_that_does_not_unpickle_arrives_as_its_text():
    def work(x):
        if x == 1:
            raise TwoArguments("this", "that")
        return x

    with pytest.raises(RuntimeError, match="TwoArguments: this and that"):
        forked_map(work, [0, 1], 2)


def test_an_interrupt_while_waiting_for_a_child_stops_and_reaps_it(tmp_path):
    parent = os.getpid()

    def work(x):
        if os.getpid() != parent:
            (tmp_path / f"{os.getpid()}").touch()
            time.sleep(30)
        return x

    def interrupt(*_):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)  # fires while this process reads the child's pipe
        start = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            forked_map(work, [0, 1], 2)
        assert time.perf_counter() - start < 20
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    children = [int(p.name) for p in tmp_path.iterdir()]
    assert children and all(_gone(pid) for pid in children)
