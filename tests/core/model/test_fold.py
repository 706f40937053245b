"""Batch-norm folding for inference keeps the model's outputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from panoptic_deeplab.model.builder import build_model
from panoptic_deeplab.model.fold import FoldedConv, _all_layers, fold_batch_norms
from tests.core.model.model_test_utils import tiny_config


@pytest.mark.parametrize("backbone", ["resnet50", "mobilenet_v3_small", "xception71"])
def test_folded_model_matches_the_original(backbone):
    model = build_model(
        tiny_config(backbone=backbone, output_stride=16), num_classes=4, input_shape=(65, 97)
    )
    rng = np.random.default_rng(0)
    for layer in _all_layers(model):  # non-trivial statistics, or folding would be a no-op
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.gamma.shape
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, shape),
                    rng.normal(size=shape),
                    0.1 * rng.normal(size=shape),
                    rng.uniform(0.5, 2.0, shape),
                ]
            )
    folded = fold_batch_norms(model)
    layers = list(_all_layers(folded))
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in layers)
    assert any(isinstance(layer, FoldedConv) for layer in layers)
    image = rng.uniform(0, 255, (1, 65, 97, 3)).astype("float32")
    expected, actual = model(image, training=False), folded(image, training=False)
    for key in expected:
        e, a = np.asarray(expected[key]), np.asarray(actual[key])
        np.testing.assert_allclose(a, e, atol=1e-5 * np.abs(e).max() + 1e-6)
