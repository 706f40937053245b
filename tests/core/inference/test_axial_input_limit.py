"""A network with axial attention gets an input it can take: larger images are shrunk to its limit
with a notice, the training crop must fit, and test-time scales above 1 are refused."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from panoptic_deeplab.bundle import save_bundle
from panoptic_deeplab.config import load_config
from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.errors import ConfigError, UserError
from panoptic_deeplab.inference import Predictor
from panoptic_deeplab.model.input_limits import max_input_side

# Axial-ResNet-S at 1/4 width: axial attention from stride 2, so at most 128 * 2 + 1 = 257 px.
AXIAL = {
    "model.backbone": "axial_resnet_s",
    "model.backbone_width": 0.25,
    "dataset.crop_size": [33, 33],
    "postprocess.center_threshold": 0.0,
}


@pytest.fixture(scope="module")
def axial_bundle(tmp_path_factory):
    from panoptic_deeplab.model.builder import build_model

    keras.utils.set_random_seed(0)
    config = load_config("synthetic/tiny", AXIAL)
    spec = get_dataset_spec("synthetic")
    model = build_model(config, num_classes=spec.num_classes)
    return save_bundle(tmp_path_factory.mktemp("axial") / "model", model, config, spec)


def test_larger_images_are_shrunk_to_the_limit_with_a_notice(axial_bundle):
    predictor = Predictor(axial_bundle)
    assert predictor.pipeline.max_side == max_input_side(predictor.config.model) == 257
    prediction = predictor(np.full((300, 40, 3), 90, np.uint8))
    assert prediction.panoptic.shape == (300, 40)
    assert max(prediction.network_size) <= 257
    assert any("axial attention" in note and "257" in note for note in prediction.notes)


def test_scales_above_one_are_refused(axial_bundle):
    with pytest.raises(UserError, match="scales <= 1"):
        Predictor(axial_bundle, scales=(1.0, 1.5))


def test_a_training_crop_over_the_limit_is_a_config_error():
    from panoptic_deeplab.model.builder import build_model

    config = load_config("synthetic/tiny", {**AXIAL, "dataset.crop_size": [33, 289]})
    with pytest.raises(ConfigError, match="at most 257"):
        build_model(config, num_classes=8)
