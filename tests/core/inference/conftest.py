"""Fixtures for the inference tests: a tiny real bundle (synthetic/tiny, random weights)."""

from __future__ import annotations

import keras
import pytest

from panoptic_deeplab.bundle import save_bundle
from panoptic_deeplab.config import load_config
from panoptic_deeplab.datasets.specs import get_dataset_spec


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory):
    """A saved synthetic/tiny bundle with random (seeded) weights."""
    from panoptic_deeplab.model.builder import build_model

    keras.utils.set_random_seed(0)
    config = load_config("synthetic/tiny", {"postprocess.center_threshold": 0.0})
    model = build_model(config, num_classes=get_dataset_spec("synthetic").num_classes)
    return save_bundle(
        tmp_path_factory.mktemp("bundle") / "model", model, config, get_dataset_spec("synthetic")
    )
