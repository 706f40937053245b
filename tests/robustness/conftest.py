"""Shared fixtures for tests/robustness: a tiny model bundle, a tiny synthetic data set, and the app
test helpers of tests/app (importable from here too)."""

from __future__ import annotations

from pathlib import Path

import pytest

CROP = (65, 97)


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory) -> Path:
    """A synthetic/tiny bundle with random (seeded) weights, 65x97 crops."""
    import keras

    from panoptic_deeplab.bundle import save_bundle
    from panoptic_deeplab.config import load_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.model.builder import build_model

    keras.utils.set_random_seed(0)
    spec = get_dataset_spec("synthetic")
    config = load_config("synthetic/tiny", {"dataset.crop_size": list(CROP)})
    return save_bundle(
        tmp_path_factory.mktemp("bundle") / "model",
        build_model(config, num_classes=spec.num_classes),
        config,
        spec,
    )


@pytest.fixture(scope="session")
def clean_root(tmp_path_factory) -> Path:
    """A valid synthetic data set (COCO-panoptic layout): 2 train + 2 val images of 65x97. Copy it
    before changing it."""
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(
        tmp_path_factory.mktemp("synthetic"), 2, 2, height=CROP[0], width=CROP[1], seed=3, workers=1
    )
