"""Set-up shared by the app's tests."""

import pytest


@pytest.fixture(autouse=True)
def _no_model_or_image_from_another_test(monkeypatch):
    """Each test starts with no loaded model or cached image result (the app keeps them per
    process), and without the start-up warm-up: tests swap in their own predictors."""
    from panoptic_deeplab.app.components import model_io

    model_io.forget_all()
    monkeypatch.setattr(model_io, "warm_up", lambda path: None)
    yield
    model_io.forget_all()
