"""Reading deeplab2 experiment textprotos: the model part strictly, the rest leniently (no TF)."""

from __future__ import annotations

import pytest

from panoptic_deeplab.deeplab2.importer import read_config
from panoptic_deeplab.deeplab2.textproto import model_options_span, parse_textproto, to_config
from panoptic_deeplab.errors import ConfigError
from tests.core.deeplab2.deeplab2_fixtures import MODELS, fixture


def _config(path):
    return to_config(parse_textproto(path), str(path))


def test_mobilenet_textproto_becomes_our_config():
    imported = _config(fixture(MODELS["mnv3s_os16"][1]))
    c = imported.config
    m = c.model
    assert (m.backbone, m.output_stride, m.backbone_width, m.stem_width) == (
        "mobilenet_v3_small",
        16,
        1.0,
        None,
    )
    assert (
        m.bn_epsilon == 1e-5 and m.bn_momentum == 0.99
    )  # solver_options.batchnorm_epsilon, momentum default
    assert m.aspp_rates == (6, 12, 18) and m.low_level_endpoints == ("res3", "res2")
    assert (
        m.semantic_decoder.aspp_channels,
        m.semantic_decoder.low_level_project_channels,
        m.semantic_decoder.decoder_channels,
        m.semantic_decoder.head_channels,
    ) == (32, (32, 16), 64, 64)
    assert (
        m.instance_decoder.aspp_channels,
        m.instance_decoder.low_level_project_channels,
        m.instance_decoder.decoder_channels,
        m.instance_decoder.head_channels,
    ) == (16, (16, 8), 32, 16)
    assert c.dataset.crop_size == (257, 513) and imported.dataset == "cityscapes"
    p = c.postprocess
    assert (p.center_threshold, p.nms_kernel, p.keep_k_centers, p.stuff_area_limit) == (
        0.1,
        7,
        400,
        2048,
    )
    assert (c.train.batch_size, c.train.steps, c.train.base_learning_rate) == (64, 60000, 0.001)
    assert imported.semantic_outputs == 19


def test_resnet_textproto_keeps_both_width_multipliers_and_the_default_epsilon():
    c = _config(fixture(MODELS["r50w025_os32"][1])).config
    assert (c.model.backbone, c.model.output_stride, c.model.backbone_width) == (
        "resnet50",
        32,
        0.25,
    )
    assert c.model.bn_epsilon == 1e-3  # the proto default: the file does not set it
    assert c.postprocess.nms_kernel == 13 and c.dataset.increase_small_instance_weights


def test_stem_width_differing_from_backbone_width_is_kept(textproto):
    path = textproto("r50w025_os32", "stem_width_multiplier: 0.25", "stem_width_multiplier: 0.5")
    assert _config(path).config.model.stem_width == 0.5


@pytest.mark.parametrize(
    "old, new, field",
    [
        ('name: "resnet50"', 'name: "efficientnet_b0"', "backbone.name"),
        ('name: "resnet50"', 'name: "max_deeplab_s"', "backbone.name"),
        ("output_stride: 32", "output_stride: 4", "backbone.output_stride"),
        (
            'feature_key: "res5"\n    decoder_channels: 64',
            'feature_key: "res5"\n    decoder_conv_type: "dilated_conv"\n    decoder_channels: 64',
            "decoder_conv_type",
        ),
    ],
)
def test_model_settings_we_cannot_reproduce_are_errors_naming_the_field(textproto, old, new, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        _config(textproto("r50w025_os32", old, new))


def test_resnet_family_options_conv_types_and_head_widths_are_read(textproto):
    path = textproto(
        "r50w025_os32",
        "backbone_width_multiplier: 0.25",
        "backbone_width_multiplier: 0.25\n    use_squeeze_and_excite: true\n"
        "    use_sac_beyond_stride: 16\n    backbone_layer_multiplier: 1.5",
    )
    m = _config(path).config.model
    assert (m.squeeze_excite, m.sac_beyond_stride, m.backbone_layers) == (True, 16, 1.5)
    path = textproto(
        "r50w025_os32",
        "        head_channels: 16\n      }\n      regression_head {\n        output_channels: 2\n"
        "        head_channels: 16",
        "        head_channels: 16\n      }\n      regression_head {\n        output_channels: 2\n"
        '        head_channels: 8\n        head_conv_type: "standard_conv"',
    )
    inst = _config(path).config.model.instance_decoder
    assert (inst.head_channels, inst.offset_head_channels) == (16, 8)
    assert (inst.head_conv, inst.offset_head_conv) == ("separable", "standard")


def test_depth_and_next_regression_heads_are_ignored_with_a_note(textproto):
    path = textproto(
        "mnv3s_os16",
        "    semantic_head {",
        "    depth_head {\n      output_channels: 1\n    }\n    semantic_head {",
    )
    assert any("depth_head" in note for note in _config(path).notes)


@pytest.mark.parametrize(
    "old, new, field",
    [
        (
            "    semantic_head {",
            "    panorama_head {\n      output_channels: 1\n    }\n    semantic_head {",
            "panorama_head",
        ),
        ("model_options {", "model_options {\n  max_deeplab {\n  }", "max_deeplab"),
        (
            "    use_squeeze_and_excite: true",
            "    use_squeeze_and_excite: true\n    some_future_option: 3",
            "some_future_option",
        ),
    ],
)
def test_model_fields_outside_the_schema_are_errors_naming_them(textproto, old, new, field):
    with pytest.raises(ConfigError, match=f"line \\d+: model field '{field}'"):
        parse_textproto(textproto("mnv3s_os16", old, new))


def test_trainer_and_data_fields_outside_the_schema_are_ignored(textproto):
    path = textproto(
        "mnv3s_os16",
        "  save_checkpoints_steps: 1000",
        '  save_checkpoints_steps: 1000\n  some_trainer_knob { deep: "x}" }',
    )
    assert _config(path).config.model.backbone == "mobilenet_v3_small"


def test_model_options_span_skips_strings_and_comments():
    text = (
        '# model_options { no }\nexperiment_name: "model_options {"\n'
        'model_options {\n  a { b: "}" }\n}\nrest {}'
    )
    start, end = model_options_span(text)
    assert text[start:end] == 'model_options {\n  a { b: "}" }\n}'


def test_eval_crop_differing_from_train_crop_is_an_error(textproto):
    path = textproto(
        "mnv3s_os16", "  batch_size: 1\n  crop_size: 257", "  batch_size: 1\n  crop_size: 513"
    )
    with pytest.raises(ConfigError, match="eval_dataset_options.crop_size"):
        _config(path)


def test_dataset_spec_comes_from_the_data_set_name_or_the_option(textproto):
    config, spec, _, _ = read_config(str(fixture(MODELS["mnv3s_os16"][1])), None)
    assert (spec.name, spec.num_classes, spec.label_divisor) == ("cityscapes", 19, 1000)
    assert spec.thing_class_ids == tuple(range(11, 19))
    kitti = textproto("mnv3s_os16", 'dataset: "cityscapes_panoptic"', 'dataset: "kitti_step"')
    _, spec, _, _ = read_config(str(kitti), None)
    assert (spec.name, spec.num_classes, spec.label_divisor) == ("kitti_step", 19, 1000)
    assert spec.thing_class_ids == (11, 13)  # person and car
    unknown = textproto(
        "mnv3s_os16", 'dataset: "cityscapes_panoptic"', 'dataset: "motchallenge_step"'
    )
    with pytest.raises(ConfigError, match="--dataset-spec"):
        read_config(str(unknown), None)
    with pytest.raises(
        ConfigError, match="output_channels is 19 but the 'synthetic' class table has 8"
    ):
        read_config(str(fixture(MODELS["mnv3s_os16"][1])), "synthetic")
    coco = textproto("mnv3s_os16", "output_channels: 19", "output_channels: 134")
    _, spec, _, _ = read_config(str(coco), "coco")
    assert (spec.num_classes, spec.label_divisor, spec.ignore_label) == (134, 256, 0)


def test_our_presets_are_accepted_as_config():
    config, spec, outputs, _ = read_config("cityscapes/mobilenet_v3_large_os16", None)
    assert (
        config.model.backbone == "mobilenet_v3_large"
        and spec.name == "cityscapes"
        and outputs is None
    )
