"""Loading ImageNet-pretrained backbone weights from local files this test writes itself."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

from panoptic_deeplab.config import load_config
from panoptic_deeplab.errors import CheckpointError
from panoptic_deeplab.model.builder import build_model
from panoptic_deeplab.model.pretrained import load_pretrained_backbone
from tests.core.model.model_test_utils import tiny_config


@pytest.fixture(scope="module")
def keras_resnet50_file(tmp_path_factory):
    """keras.applications.ResNet50 (no top) with random weights and non-trivial BN statistics."""
    reference = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(None, None, 3)
    )
    rng = np.random.default_rng(0)
    for layer in reference.layers:
        if layer.weights:
            weights = [rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
            if isinstance(layer, keras.layers.BatchNormalization):
                weights[3] = np.abs(weights[3]) + 0.5  # a valid moving variance
            layer.set_weights(weights)
    path = tmp_path_factory.mktemp("weights") / "resnet50_notop.weights.h5"
    reference.save_weights(str(path))
    return path, {layer.name: layer.get_weights() for layer in reference.layers if layer.weights}


def test_keras_applications_resnet50_weights_load_by_name(keras_resnet50_file):
    path, reference = keras_resnet50_file
    # Same BN epsilon as keras' ResNet50 so that conv+BN pairs compute the same function.
    config = load_config(
        "cityscapes/resnet50_os32",
        [f"model.pretrained_backbone={path}", "model.bn_epsilon=1.001e-5"],
    )
    backbone = build_model(config, num_classes=19, input_shape=(65, 65)).get_layer("backbone")
    (kernel,) = backbone.get_layer("conv3_block2_2_conv").get_weights()
    np.testing.assert_array_equal(kernel, reference["conv3_block2_2_conv"][0])
    # The conv bias is folded into the next BN's moving mean:
    # BN(conv + b; mean m) == BN(conv; mean m - b).
    gamma, beta, mean, var = backbone.get_layer("conv3_block2_2_bn").get_weights()
    ref_gamma, ref_beta, ref_mean, ref_var = reference["conv3_block2_2_bn"]
    np.testing.assert_allclose(mean, ref_mean - reference["conv3_block2_2_conv"][1], rtol=1e-6)
    np.testing.assert_array_equal(gamma, ref_gamma)
    np.testing.assert_array_equal(var, ref_var)
    # So a conv+BN pair of ours computes what keras' pair (with bias) computes.
    x = np.random.default_rng(3).normal(size=(1, 9, 9, 256)).astype("float32")
    k, b = reference["conv2_block2_1_conv"]
    g, be, m, v = reference["conv2_block2_1_bn"]
    conv = np.einsum("bhwc,cd->bhwd", x, k[0, 0]) + b
    theirs = g * (conv - m) / np.sqrt(v + 1.001e-5) + be
    mine = backbone.get_layer("conv2_block2_1_bn")(
        backbone.get_layer("conv2_block2_1_conv")(x), training=False
    )
    np.testing.assert_allclose(np.asarray(mine), theirs, rtol=1e-4, atol=1e-3)


def test_resnet50_beta_rejects_resnet50_weights_naming_the_layer(keras_resnet50_file):
    path, _ = keras_resnet50_file
    config = load_config("cityscapes/resnet50_beta_os32", [f"model.pretrained_backbone={path}"])
    with pytest.raises(CheckpointError) as err:
        build_model(config, num_classes=19, input_shape=(65, 65))
    # The first layer fed by the 128-channel inception stem no longer fits.
    assert re.search(r"layer 'conv2_block1_[01]_conv'", str(err.value)) and str(path) in str(
        err.value
    )


def test_weights_saved_from_our_backbone_round_trip(tmp_path):
    source = build_model(tiny_config(), num_classes=3, input_shape=(65, 97))
    path = tmp_path / "tiny_backbone.weights.h5"
    source.get_layer("backbone").save_weights(str(path))
    target = build_model(tiny_config(**{"model.pretrained_backbone": str(path)}), num_classes=3)
    for a, b in zip(
        source.get_layer("backbone").get_weights(), target.get_layer("backbone").get_weights()
    ):
        np.testing.assert_array_equal(a, b)


def test_mismatching_width_is_a_clear_error(tmp_path):
    source = build_model(tiny_config(), num_classes=3, input_shape=(65, 97))
    path = tmp_path / "tiny_backbone.weights.h5"
    source.get_layer("backbone").save_weights(str(path))
    target = build_model(
        tiny_config(**{"model.backbone_width": 0.25, "model.backbone": "resnet50_beta"}),
        num_classes=3,
    )
    with pytest.raises(CheckpointError, match="tiny_backbone.weights.h5"):
        load_pretrained_backbone(target.get_layer("backbone"), path, "resnet50_beta")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        build_model(
            tiny_config(**{"model.pretrained_backbone": str(tmp_path / "nope.h5")}), num_classes=3
        )
