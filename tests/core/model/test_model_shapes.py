"""Output shapes, dtypes and size handling of the built model (tiny widths, small inputs)."""

from __future__ import annotations

import numpy as np
import pytest

from panoptic_deeplab.model.builder import build_model, valid_input_size
from tests.core.model.model_test_utils import tiny_config


def random_image(h, w, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=(1, h, w, 3)).astype("float32")


@pytest.fixture(scope="module")
def tiny_model():
    """``tiny_model(output_stride, size)``: each model is built once for the two tests below that
    look at it (a build is most of their time)."""
    built = {}

    def get(output_stride, size):
        if (output_stride, size) not in built:
            config = tiny_config(output_stride=output_stride)
            built[output_stride, size] = build_model(config, num_classes=5, input_shape=size)
        return built[output_stride, size]

    return get


@pytest.mark.parametrize("output_stride", [16, 32])
@pytest.mark.parametrize("size", [(65, 97), (64, 96)])
def test_outputs_have_the_input_size(tiny_model, output_stride, size):
    h, w = size
    model = tiny_model(output_stride, size)
    out = model(random_image(h, w), training=False)
    assert set(out) == {"semantic_logits", "center_heatmap", "offsets"}
    assert tuple(out["semantic_logits"].shape) == (1, h, w, 5)
    assert tuple(out["center_heatmap"].shape) == (1, h, w, 1)
    assert tuple(out["offsets"].shape) == (1, h, w, 2)
    for value in out.values():
        assert value.dtype == "float32"
        assert np.isfinite(np.asarray(value)).all()


@pytest.mark.parametrize("output_stride", [16, 32])
@pytest.mark.parametrize("size", [(65, 97), (64, 96)])
def test_backbone_endpoint_strides(tiny_model, output_stride, size):
    model = tiny_model(output_stride, size)
    features = model.get_layer("backbone").output
    # Odd sizes k*s+1 give (n-1)/s+1; even sizes give n/s (symmetric padding, like deeplab2).
    expect = {
        "res2": [(n - 1) // 4 + 1 if n % 2 else n // 4 for n in size],
        "res3": [(n - 1) // 8 + 1 if n % 2 else n // 8 for n in size],
        "res5": [(n - 1) // output_stride + 1 if n % 2 else n // output_stride for n in size],
    }
    for key, hw in expect.items():
        assert list(features[key].shape[1:3]) == hw, key


def test_dynamic_model_runs_at_several_sizes_and_matches_the_static_one():
    # Train crop 65x97 at OS16 gives a 5x7 ASPP pooling window; 97x129 (res5 7x9) tiles it,
    # 33x49 (res5 3x4) is smaller than the window (global pooling).
    config = tiny_config(output_stride=16)
    dynamic = build_model(config, num_classes=3)
    for h, w in [(97, 129), (33, 49), (64, 96)]:
        static = build_model(config, num_classes=3, input_shape=(h, w))
        static.set_weights(dynamic.get_weights())
        image = random_image(h, w, seed=h)
        out_dynamic = dynamic(image, training=False)
        out_static = static(image, training=False)
        for key in out_static:
            assert out_dynamic[key].shape == out_static[key].shape
            np.testing.assert_allclose(
                np.asarray(out_dynamic[key]), np.asarray(out_static[key]), rtol=1e-4, atol=1e-4
            )


def test_mixed_precision_keeps_float32_outputs():
    config = tiny_config(output_stride=32, **{"model.dtype_policy": "mixed_bfloat16"})
    model = build_model(config, num_classes=3, input_shape=(65, 97))
    assert model.get_layer("semantic_head_output").compute_dtype == "bfloat16"
    out = model(random_image(65, 97), training=False)
    assert all(v.dtype == "float32" for v in out.values())
    # The global policy is restored after building.
    import keras

    assert keras.config.dtype_policy().name == "float32"


def test_sync_batch_norm_and_epsilon_follow_the_config():
    import keras

    config = tiny_config(
        **{"model.sync_batch_norm": True, "model.bn_epsilon": 1e-5, "model.bn_momentum": 0.9}
    )
    model = build_model(config, num_classes=3, input_shape=(65, 97))
    bns = [
        layer
        for layer in model.get_layer("backbone").layers + model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert bns and all(bn.synchronized and bn.epsilon == 1e-5 and bn.momentum == 0.9 for bn in bns)


def test_normalisation_is_inside_the_model():
    model = build_model(tiny_config(), num_classes=3, input_shape=(65, 97))
    normalize = model.get_layer("normalize")
    out = np.asarray(normalize(np.array([[[[0.0, 127.5, 255.0]]]], "float32")))
    np.testing.assert_allclose(out, [[[[-1.0, 0.0, 1.0]]]])


@pytest.mark.parametrize(
    "h, w, os_, expected",
    [
        (1024, 2048, 32, (1025, 2049)),
        (1025, 2049, 32, (1025, 2049)),
        (1026, 2050, 16, (1041, 2065)),
        (1, 2, 16, (17, 17)),
    ],
)
def test_valid_input_size(h, w, os_, expected):
    assert valid_input_size(h, w, os_) == expected


@pytest.mark.parametrize(
    "backbone", ["resnet50_beta", "mobilenet_v3_large", "mobilenet_v3_small", "xception71"]
)
@pytest.mark.parametrize("output_stride", [16, 32])
def test_every_backbone_gives_full_size_outputs(backbone, output_stride):
    config = tiny_config(
        backbone=backbone, output_stride=output_stride, **{"model.backbone_width": 0.25}
    )
    model = build_model(config, num_classes=4, input_shape=(65, 97))
    out = model(random_image(65, 97), training=False)
    assert tuple(out["semantic_logits"].shape) == (1, 65, 97, 4)
    assert tuple(out["offsets"].shape) == (1, 65, 97, 2)
    assert model.get_layer("backbone").output["res5"].shape[1:3] == (
        (65 - 1) // output_stride + 1,
        (97 - 1) // output_stride + 1,
    )


def test_tiny_synthetic_preset_builds_small():
    from panoptic_deeplab.config import load_config

    config = load_config("synthetic/tiny")
    model = build_model(config, input_shape=tuple(config.dataset.crop_size))
    assert model.count_params() < 1_000_000
    out = model(random_image(*config.dataset.crop_size), training=False)
    assert tuple(out["center_heatmap"].shape) == (1, *config.dataset.crop_size, 1)
