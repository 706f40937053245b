"""The app warms the model up in the background once per model: TensorFlow's import, the model and
the pipeline's trace happen while the page draws, not when the first picture is asked for."""

from __future__ import annotations

import threading

import streamlit as st


class RecordingPredictor:
    def __init__(self):
        self.warmed = threading.Event()
        self.thread = None

    def warm_up(self):
        self.thread = threading.current_thread().name
        self.warmed.set()
        return self


def test_the_model_is_warmed_up_once_on_a_background_thread(monkeypatch, tmp_path):
    from panoptic_deeplab.app.components import model_io

    fake = RecordingPredictor()
    loads = []
    monkeypatch.setattr(model_io, "load_predictor", lambda path: loads.append(path) or fake)
    st.cache_resource.clear()
    path = str(tmp_path / "model")
    thread = model_io.warm_up_in_background(path)
    assert model_io.warm_up_in_background(path) is thread  # once per process and model
    thread.join(timeout=30)
    assert fake.warmed.is_set() and fake.thread == "pdl-warm-up" and thread.daemon
    assert loads == [path]
    st.cache_resource.clear()


def test_a_failed_warm_up_leaves_the_error_to_the_page(monkeypatch, tmp_path, caplog):
    from panoptic_deeplab.app.components import model_io

    def broken(path):
        raise RuntimeError("weights do not fit")

    monkeypatch.setattr(model_io, "load_predictor", broken)
    st.cache_resource.clear()
    model_io.warm_up_in_background(str(tmp_path / "model")).join(timeout=30)
    assert "warming up" in caplog.text and "weights do not fit" in caplog.text
    st.cache_resource.clear()
