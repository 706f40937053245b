"""Long work off the script thread: one run per key for all askers, a failure tried again, and the
start-up warm-up that the first page then finds done (issues 26 and 28 item 8)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from panoptic_deeplab.app.components import background, model_io


def _wait_until_forgotten(key, timeout_s: float = 10) -> None:
    """A future forgets its key in a done-callback, which runs after its waiters have woken."""
    deadline = time.monotonic() + timeout_s
    while background.running(key) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_askers_of_one_key_share_one_run():
    calls, gate = [], threading.Event()

    def make():
        calls.append(1)
        gate.wait(5)
        return "result"

    results = []
    askers = [
        threading.Thread(target=lambda: results.append(background.wait("k1", make, "work")))
        for _ in range(3)
    ]
    for t in askers:
        t.start()
    time.sleep(1.0)  # all three are waiting by now, also on a loaded machine
    gate.set()
    for t in askers:
        t.join(5)
    assert results == ["result"] * 3 and calls == [1]
    _wait_until_forgotten("k1")
    assert not background.running("k1")


def test_a_failed_run_is_raised_and_tried_again_by_the_next_asker():
    attempts = []

    def make():
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk gone")
        return 42

    with pytest.raises(OSError, match="disk gone"):
        background.wait("k2", make, "work")
    assert background.wait("k2", make, "work") == 42 and len(attempts) == 2


def test_the_warm_up_loads_the_model_once_before_a_page_asks(monkeypatch):
    monkeypatch.undo()  # the suite's fixture turns the warm-up off; this test is about it
    loads = []

    def slow_load(path):
        loads.append(path)
        time.sleep(0.5)
        return object()

    monkeypatch.setattr(model_io, "_load", slow_load)
    model_io.warm_up("bundle-a")
    time.sleep(0.1)
    assert background.running(("model", "bundle-a"))  # the script thread is free meanwhile
    first = model_io.load_predictor("bundle-a")  # waits for the same load
    model_io.warm_up("bundle-a")  # loaded: nothing starts
    assert model_io.load_predictor("bundle-a") is first and loads == ["bundle-a"]


def test_a_result_nobody_waits_for_any_more_is_kept_in_the_cache_not_here():
    """The worker puts its result in the image cache itself, and the background module keeps
    none: a session that stops waiting (the user clicked elsewhere) leaves nothing behind there,
    and the next run finds the result."""
    gate = threading.Event()
    key = ("predict", "bundle-b", 0, "digest")

    def run_model():
        gate.wait(5)
        return "prediction"

    asker = threading.Thread(target=lambda: model_io.cached(key, run_model, "Running the model"))
    asker.start()
    time.sleep(0.2)
    assert background.running(key)
    gate.set()
    asker.join(5)
    _wait_until_forgotten(key)
    assert not background.running(key) and background._futures == {}
    assert model_io.image_results().get_or_make(key, lambda: "run again") == "prediction"


def test_opening_a_page_starts_loading_the_start_up_model(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from tests.app import apptest_utils as u
    from tests.app.fakes import FakePredictor

    model = tmp_path / "start-model"
    model.mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=model)
    started = []
    monkeypatch.setattr(model_io, "warm_up", started.append)
    monkeypatch.setattr(model_io, "load_predictor", lambda path: FakePredictor())
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT).run()
    assert not at.exception, at.exception
    assert started == [str(model)]


def test_after_the_warm_up_a_new_image_size_is_fused_without_a_new_trace():
    """The page's post-processing (no XLA, which compiles per size) is traced by the warm-up at
    two sizes; an upload of a third size then reuses that trace (issue 26, first picture)."""
    import numpy as np

    from panoptic_deeplab import postprocess

    demo = Path(__file__).resolve().parents[2] / "assets" / "models" / "synthetic_demo"
    predictor = model_io._load(str(demo))
    model_io._warm_up_fuse(predictor)
    options = model_io.default_options(predictor)

    def traces():
        return {k: f.experimental_get_tracing_count() for k, f in postprocess._COMPILED.items()}

    before = traces()
    classes = predictor.spec.num_classes
    heads = model_io.Heads(
        np.full((61, 83, classes), 1.0 / classes, np.float32),
        np.zeros((61, 83), np.float32),
        np.zeros((61, 83, 2), np.float32),
    )
    fused = model_io._fuse(options.replace(center_threshold=0.3), heads)
    assert fused.panoptic.shape == (61, 83)
    assert traces() == before
