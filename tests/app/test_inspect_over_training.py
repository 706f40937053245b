"""AppTest for the Inspect page's "Over training" section: a workdir's saved steps on a slider, and
the image's four views at the chosen step next to the final model. The steps are real snapshots of
a tiny network (training/history.py); the page's model is the stand-in of fakes.py."""

from __future__ import annotations

import json

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.app import apptest_utils as u
from tests.app.fakes import FakePredictor


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    import keras

    from panoptic_deeplab.config import load_config, save_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.model.builder import build_model
    from panoptic_deeplab.training.history import SnapshotHistory, write_run_spec

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("run")
    config, spec = load_config("synthetic/tiny"), get_dataset_spec("synthetic")
    network = build_model(config, num_classes=spec.num_classes)
    save_config(config, root / "config.yaml")
    write_run_spec(root, spec)
    history = SnapshotHistory(root, network, keep=5)
    history.save(10)
    for variable in network.trainable_variables:  # "training": other weights at step 20
        variable.assign(variable * 0.5 + 0.1)
    history.save(20)
    return root


def titles(at) -> list[str]:
    return [
        json.loads(c.proto.spec)["layout"].get("title", {}).get("text")
        for c in at.get("plotly_chart")
    ]


def step_figure(at, title):
    return next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if json.loads(c.proto.spec)["layout"].get("title", {}).get("text") == title
    )


@pytest.mark.slow  # builds and runs a real tiny network
def test_a_workdir_steps_are_on_a_slider_next_to_the_final_model(monkeypatch, tmp_path, workdir):
    from panoptic_deeplab.app.components import model_io

    model_dir = tmp_path / "fake-model"
    model_dir.mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=model_dir)
    monkeypatch.setattr(model_io, "load_predictor", lambda path: FakePredictor())
    st.cache_data.clear()
    at = AppTest.from_file(u.ENTRY, default_timeout=120)
    at.run()
    at.file_uploader(key="image_upload_0").set_value(
        ("street.png", u.encode(u.street_image()), "image/png")
    ).run()
    assert any("give the workdir" in i.value for i in at.info)
    at.text_input(key="steps_workdir").set_value(str(workdir)).run()
    assert not at.exception, at.exception
    slider = at.select_slider(key="steps_step")
    assert list(slider.options) == ["10", "20"] and slider.value == 20
    shown = titles(at)
    for stage in ("Semantic", "Centers", "Offsets", "Panoptic"):
        assert f"{stage}, step 20" in shown and f"{stage}, final model" in shown
    late = step_figure(at, "Centers, step 20")
    slider.set_value(10).run()
    assert not at.exception, at.exception
    early = step_figure(at, "Centers, step 10")
    assert early["data"][0] != late["data"][0]  # other weights, another heatmap
    assert any("Step 10 of 20 saved (2 steps kept)" in c.value for c in at.caption)


def test_an_empty_workdir_says_what_is_missing(monkeypatch, tmp_path):
    from panoptic_deeplab.app.components import model_io

    model_dir = tmp_path / "fake-model"
    model_dir.mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=model_dir)
    monkeypatch.setattr(model_io, "load_predictor", lambda path: FakePredictor())
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT)
    at.run()
    at.file_uploader(key="image_upload_0").set_value(
        ("street.png", u.encode(u.street_image()), "image/png")
    ).run()
    at.text_input(key="steps_workdir").set_value(str(tmp_path)).run()
    assert not at.exception
    assert any("no saved step yet" in i.value for i in at.info)


@pytest.mark.slow  # builds and runs a real tiny network
def test_the_last_step_and_the_final_model_are_the_same_numbers(tmp_path):
    """Issue 28 item 6: a run's last saved step and its final bundle hold the same weights, so the
    section's two columns show the same head outputs, also after another step was swapped in."""
    import keras
    import numpy as np

    from panoptic_deeplab.app.components import model_io, training_steps
    from panoptic_deeplab.bundle import save_bundle
    from panoptic_deeplab.config import load_config, save_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.model.builder import build_model
    from panoptic_deeplab.training.history import SnapshotHistory, list_snapshots, write_run_spec

    keras.utils.set_random_seed(1)
    config, spec = load_config("synthetic/tiny"), get_dataset_spec("synthetic")
    network = build_model(config, num_classes=spec.num_classes)
    save_config(config, tmp_path / "config.yaml")
    write_run_spec(tmp_path, spec)
    history = SnapshotHistory(tmp_path, network, keep=5)
    history.save(10)
    for variable in network.trainable_variables:
        variable.assign(variable * 0.5 + 0.1)
    history.save(30)
    save_bundle(tmp_path / "model", network, config, spec)
    image = u.street_image()
    digest = model_io.image_digest(image)
    prefixes = {s.step: s.prefix for s in list_snapshots(tmp_path)}
    final = model_io.run_heads(str(tmp_path / "model"), digest, image)
    for step in (30, 10, 30):  # step 10's weights swapped in and out again
        heads = training_steps.step_heads(str(tmp_path), step, prefixes[step], digest, image, 30)
        same = [
            np.array_equal(getattr(heads, f), getattr(final, f))
            for f in ("semantic_probs", "center_heatmap", "offsets")
        ]
        assert same == [step == 30] * 3
