"""MobileNetV3-Large/Small (deeplab2 layout) and Xception-71 (TF1 DeepLab) backbones."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from panoptic_deeplab.errors import ConfigError
from panoptic_deeplab.model.backbones import build_backbone, mobilenet_v3, xception
from panoptic_deeplab.model.layers import atrous_schedule, make_divisible, make_norm

NORM = make_norm(epsilon=1e-5, synchronized=False)
BUILDERS = {
    "mobilenet_v3_large": lambda x, **kw: mobilenet_v3.build(x, variant="large", **kw),
    "mobilenet_v3_small": lambda x, **kw: mobilenet_v3.build(x, variant="small", **kw),
    "xception71": xception.build,
}


def backbone_model(name: str, *, output_stride=32, width=1.0, shape=(None, None)):
    inputs = keras.Input((*shape, 3))
    endpoints = BUILDERS[name](inputs, output_stride=output_stride, width=width, norm=NORM)
    return keras.Model(inputs, endpoints), endpoints


def trainable_count(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def producer(tensor) -> str:
    return tensor._keras_history.operation.name


# --- shared helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [(16, 16), (5.6, 8), (11.2, 16), (18, 24), (254.8, 256), (336.0, 336), (72, 72), (88.0, 88)],
)
def test_make_divisible_rounds_to_multiples_of_8_within_10_percent(value, expected):
    # 11.2 -> 8 would lose 29%, 18 -> 16 loses 11%: both go one multiple up.
    assert make_divisible(value, 8) == expected


def test_atrous_schedule_trades_strides_for_dilation_after_the_output_stride():
    strides = [2, 1, 2, 2, 1, 2, 1]
    assert atrous_schedule(strides, 16) == [(2, 1), (1, 1), (2, 1), (2, 1), (1, 1), (2, 1), (1, 1)]
    # At 8 the 6th layer drops its stride but keeps rate 1; the layer after it dilates by 2.
    assert atrous_schedule(strides, 8) == [(2, 1), (1, 1), (2, 1), (2, 1), (1, 1), (1, 1), (1, 2)]
    with pytest.raises(ValueError):
        atrous_schedule(strides, 64)


# --- MobileNetV3 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, params, channels",
    [
        # deeplab2 counts (model/deeplab_test.py and the layer-by-layer count of docs/method.md §1),
        # final 1x1 conv included.
        ("mobilenet_v3_large", 2_971_952, (72, 120, 672, 960)),
        ("mobilenet_v3_small", 927_008, (16, 88, 144, 576)),
    ],
)
def test_mobilenet_v3_parameter_count_and_endpoint_channels(name, params, channels):
    model, endpoints = backbone_model(name, output_stride=16)
    assert trainable_count(model) == params
    assert tuple(endpoints[k].shape[-1] for k in ("res2", "res3", "res4", "res5")) == channels


@pytest.mark.parametrize(
    "variant, application",
    [
        ("large", keras.applications.MobileNetV3Large),
        ("small", keras.applications.MobileNetV3Small),
    ],
)
def test_mobilenet_v3_layers_match_keras_applications_one_to_one(variant, application):
    """Same layer names and weight shapes as Keras' MobileNetV3 (include_top=False), so ImageNet
    weights copy over by name."""
    model, _ = backbone_model(f"mobilenet_v3_{variant}")
    reference = application(
        include_top=False, weights=None, minimalistic=False, input_shape=(None, None, 3)
    )

    def layout(m):
        return {
            layer.name: [tuple(w.shape) for w in layer.weights]
            for layer in m.layers
            if layer.weights
        }

    assert layout(model) == layout(reference)


@pytest.mark.parametrize(
    "name, expected",
    [
        # The depthwise activation of the last block at strides 4, 8, 16, then the final conv.
        (
            "mobilenet_v3_large",
            {
                "res2": "expanded_conv_2_depthwise_relu",
                "res3": "expanded_conv_5_depthwise_relu",
                "res4": "expanded_conv_11_depthwise_hard_swish",
                "res5": "conv_1_hard_swish",
            },
        ),
        (
            "mobilenet_v3_small",
            {
                "res2": "expanded_conv_depthwise_relu",
                "res3": "expanded_conv_2_depthwise_relu",
                "res4": "expanded_conv_7_depthwise_hard_swish",
                "res5": "conv_1_hard_swish",
            },
        ),
    ],
)
def test_mobilenet_v3_endpoints_are_depthwise_outputs_before_se(name, expected):
    model, endpoints = backbone_model(name, width=0.35)
    assert {k: producer(t) for k, t in endpoints.items()} == expected
    # Before SE: the endpoint feeds the SE pooling where the block has one (Large res3, Small res2).
    se_block = "expanded_conv_5_" if name.endswith("large") else "expanded_conv_"
    pool = model.get_layer(f"{se_block}squeeze_excite_avg_pool")
    assert pool.input.name == endpoints["res3" if name.endswith("large") else "res2"].name


@pytest.mark.parametrize("name, se_blocks", [("mobilenet_v3_large", 8), ("mobilenet_v3_small", 9)])
def test_mobilenet_v3_squeeze_excite_gates_with_sigmoid(name, se_blocks):
    model, _ = backbone_model(name, width=0.35)
    gates = [layer for layer in model.layers if layer.name.endswith("squeeze_excite_sigmoid")]
    assert len(gates) == se_blocks
    for gate in gates:
        # sigmoid(1) = 0.7311; hard-sigmoid(1) = relu6(4) / 6 = 0.6667.
        value = float(
            keras.ops.convert_to_numpy(gate(np.ones((1, 1, 1, 1), "float32")))[0, 0, 0, 0]
        )
        assert value == pytest.approx(1 / (1 + math.exp(-1)), abs=1e-6)
    assert not any(
        "hard_sigmoid" in str(getattr(layer, "activation", "")) for layer in model.layers
    )


def test_mobilenet_v3_se_reduction_is_a_quarter_rounded_to_8():
    model, _ = backbone_model("mobilenet_v3_large")
    # Large block 3: 24 -> 72 expanded; 72 / 4 = 18 -> 24 (16 would be >10% below).
    assert model.get_layer("expanded_conv_3_squeeze_excite_conv").filters == 24
    # Large block 12: 112 * 6 = 672 -> 168.
    assert model.get_layer("expanded_conv_12_squeeze_excite_conv").filters == 168


@pytest.mark.parametrize(
    "output_stride, expected",
    [
        # (stride, dilation) of the depthwise convs of Large's stride-32 stage (blocks 12-14).
        (32, [(2, 1), (1, 1), (1, 1)]),
        (16, [(1, 1), (1, 2), (1, 2)]),
        (8, [(1, 2), (1, 4), (1, 4)]),
    ],
)
def test_mobilenet_v3_output_stride_dilates_later_depthwise_convs(output_stride, expected):
    model, _ = backbone_model("mobilenet_v3_large", output_stride=output_stride, width=0.35)
    convs = [model.get_layer(f"expanded_conv_{i}_depthwise") for i in (12, 13, 14)]
    assert [(c.strides[0], c.dilation_rate[0]) for c in convs] == expected


# --- Xception-71 -----------------------------------------------------------------------------


def test_xception71_parameter_count_matches_tf1_definition():
    """Count TF1 DeepLab's xception_71 layer by layer: separable conv = depthwise 3x3 + BN +
    pointwise 1x1 + BN, projection shortcuts 1x1 + BN, no biases, no logits."""

    def separable(cin, cout):
        return 9 * cin + 2 * cin + cin * cout + 2 * cout

    expected = 27 * 32 + 2 * 32 + 9 * 32 * 64 + 2 * 64  # root convs + BNs
    cin = 64
    blocks = [((128,) * 3, True, 1), ((256,) * 3, True, 1), ((256,) * 3, True, 1),
              ((728,) * 3, True, 1), ((728,) * 3, True, 1), ((728,) * 3, False, 16),
              ((728, 1024, 1024), True, 1), ((1536, 1536, 2048), False, 1)]  # fmt: skip
    for depths, projection, units in blocks:
        for _ in range(units):
            c = cin
            for depth in depths:
                expected, c = expected + separable(c, depth), depth
            if projection:
                expected += cin * depths[-1] + 2 * depths[-1]
            cin = depths[-1]
    model, endpoints = backbone_model("xception71", output_stride=16)
    assert trainable_count(model) == expected == 40_289_736
    assert tuple(endpoints[k].shape[-1] for k in ("res2", "res3", "res4", "res5")) == (
        256,
        728,
        1024,
        2048,
    )


def test_xception71_endpoints_and_separable_conv_layout():
    model, endpoints = backbone_model("xception71", width=0.25)
    # TF1 DeepLab's decoder taps: second separable conv's pointwise BN of entry blocks 3 and 5.
    assert producer(endpoints["res2"]) == "entry_flow_block3_unit_1_separable_conv2_pointwise_bn"
    assert producer(endpoints["res3"]) == "entry_flow_block5_unit_1_separable_conv2_pointwise_bn"
    assert producer(endpoints["res4"]) == "exit_flow_block1_unit_1_separable_conv2_pointwise_bn"
    assert producer(endpoints["res5"]) == "exit_flow_block2_unit_1_separable_conv3_pointwise_relu"
    names = {layer.name for layer in model.layers}
    assert sum(n.startswith("middle_flow_block1_unit_") and n.endswith("_add") for n in names) == 16
    # BN sits between depthwise and pointwise; ReLU comes before the conv in the flows, after it
    # at the end.
    unit = "middle_flow_block1_unit_7_separable_conv2"
    assert (
        model.get_layer(f"{unit}_pointwise").input.name
        == model.get_layer(f"{unit}_depthwise_bn").output.name
    )
    assert (
        model.get_layer(f"{unit}_depthwise").input.name
        == model.get_layer(f"{unit}_preact_relu").output.name
    )
    assert "exit_flow_block2_unit_1_separable_conv1_depthwise_relu" in names
    assert "exit_flow_block2_unit_1_separable_conv1_preact_relu" not in names
    assert "exit_flow_block2_unit_1_shortcut_conv" not in names  # no skip in the last unit


@pytest.mark.parametrize(
    "output_stride, exit1_stride, exit2_rate", [(32, 2, 1), (16, 1, 2), (8, 1, 4)]
)
def test_xception71_output_stride_by_atrous_exit_flow(output_stride, exit1_stride, exit2_rate):
    model, _ = backbone_model("xception71", output_stride=output_stride, width=0.125)
    strided = model.get_layer("exit_flow_block1_unit_1_separable_conv3_depthwise")
    assert strided.strides[0] == exit1_stride and strided.dilation_rate[0] == (
        1 if output_stride > 8 else 2
    )
    assert model.get_layer("exit_flow_block1_unit_1_shortcut_conv").strides[0] == exit1_stride
    for i in (1, 2, 3):
        conv = model.get_layer(f"exit_flow_block2_unit_1_separable_conv{i}_depthwise")
        assert conv.dilation_rate[0] == exit2_rate


# --- all backbones ---------------------------------------------------------------------------

# Every stride-2 layer pads symmetrically and runs 'valid', giving ceil(n / 2).
SPATIAL = {
    (65, 97): {4: (17, 25), 8: (9, 13), 16: (5, 7), 32: (3, 4)},
    (64, 96): {4: (16, 24), 8: (8, 12), 16: (4, 6), 32: (2, 3)},
}


@pytest.mark.parametrize("size", list(SPATIAL))
@pytest.mark.parametrize("output_stride", [16, 32])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_endpoint_shapes_at_odd_and_even_sizes(name, output_stride, size):
    _, endpoints = backbone_model(name, output_stride=output_stride, width=0.125, shape=size)
    strides = {"res2": 4, "res3": 8, "res4": 16, "res5": output_stride}
    assert {k: tuple(t.shape[1:3]) for k, t in endpoints.items()} == {
        k: SPATIAL[size][s] for k, s in strides.items()
    }


@pytest.mark.parametrize("name", list(BUILDERS))
def test_forward_pass_on_dynamic_size_through_registry(name):
    inputs = keras.Input((None, None, 3))
    endpoints = build_backbone(name, inputs, output_stride=16, width=0.125, norm=NORM)
    model = keras.Model(inputs, endpoints)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 65, 97, 3)).astype("float32")
    outputs = model(images, training=False)
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "res2": (2, 17, 25, endpoints["res2"].shape[-1]),
        "res3": (2, 9, 13, endpoints["res3"].shape[-1]),
        "res4": (2, 5, 7, endpoints["res4"].shape[-1]),
        "res5": (2, 5, 7, endpoints["res5"].shape[-1]),
    }
    assert all(np.isfinite(keras.ops.convert_to_numpy(v)).all() for v in outputs.values())


def test_small_width_rounds_channels_to_multiples_of_8():
    _, endpoints = backbone_model("mobilenet_v3_large", width=0.35)
    # res5: 960 * 0.35 = 336; res2: block 2 has 24 * 0.35 -> 8 inputs, expanded x3 = 24.
    assert endpoints["res5"].shape[-1] == 336 and endpoints["res2"].shape[-1] == 24
    layers = backbone_model("xception71", width=0.35)[0].layers
    channels = [
        layer.filters
        for layer in layers
        if isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, keras.layers.DepthwiseConv2D)
    ]
    assert channels and all(c % 8 == 0 for c in channels)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_bad_output_stride_or_width_is_a_config_error(name):
    with pytest.raises(ConfigError, match="output_stride"):
        backbone_model(name, output_stride=4, width=0.125)
    with pytest.raises(ConfigError, match="backbone_width"):
        backbone_model(name, width=0.0)


@pytest.mark.parametrize(
    "output_stride, stage5", [(32, [(2, 1), (1, 1), (1, 1)]), (16, [(1, 1), (1, 2), (1, 2)])]
)
def test_resnet_output_stride_16_keeps_dilation_1_in_the_first_block_of_stage_5(
    output_stride, stage5
):
    """deeplab2's BlockGroup: a block dilates by its nominal input stride over the output stride, so
    stage 5's first block (input stride 16) is not dilated at OS16 and the later ones are by 2."""
    from panoptic_deeplab.model.backbones import resnet

    inputs = keras.Input((65, 65, 3))
    model = keras.Model(
        inputs, resnet.build(inputs, output_stride=output_stride, width=0.125, norm=NORM)
    )
    convs = [model.get_layer(f"conv5_block{b}_2_conv") for b in (1, 2, 3)]
    assert [(c.strides[0], c.dilation_rate[0]) for c in convs] == stage5


def test_resnet_stem_width_scales_only_the_stem():
    from panoptic_deeplab.model.backbones import resnet

    for variant, layer, channels in (
        ("resnet50", "conv1_conv", 16),
        ("resnet50_beta", "stem3_conv", 32),
    ):
        inputs = keras.Input((33, 33, 3))
        model = keras.Model(
            inputs,
            resnet.build(
                inputs, output_stride=32, width=0.125, norm=NORM, variant=variant, stem_width=0.25
            ),
        )
        assert model.get_layer(layer).filters == channels
        assert model.get_layer("conv2_block1_1_conv").filters == 8  # round(64 * 0.125)


def test_backbone_registry_and_zoo_tables_import_without_tensorflow():
    """The registry, the architecture table and the size rules are plain Python (the importer and
    the app read them before any model is built)."""
    import subprocess
    import sys

    code = (
        "import sys, panoptic_deeplab.model.backbones, panoptic_deeplab.model.input_limits, "
        "panoptic_deeplab.deeplab2.textproto; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
