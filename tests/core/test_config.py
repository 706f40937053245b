"""Config loading: presets, overrides and the errors a user sees for bad input."""

from __future__ import annotations

import pytest

from panoptic_deeplab.config import Config, available_configs, load_config
from panoptic_deeplab.errors import ConfigError

REQUIRED_PRESETS = {
    "cityscapes/resnet50_os32",
    "cityscapes/resnet50_beta_os32",
    "cityscapes/mobilenet_v3_large_os16",
    "cityscapes/mobilenet_v3_small_os16",
    "cityscapes/xception71_os16",
    "coco/resnet50_os16",
    "coco/xception71_os16",
    "synthetic/tiny",
}


def test_required_presets_ship_and_load():
    assert REQUIRED_PRESETS <= set(available_configs())
    for name in available_configs():
        config = load_config(name)
        assert isinstance(config, Config) and config.name == name


def test_preset_values_follow_the_spec():
    mnv3 = load_config("cityscapes/mobilenet_v3_large_os16")
    assert (mnv3.model.output_stride, mnv3.model.aspp_rates, mnv3.model.bn_epsilon) == (
        16,
        (6, 12, 18),
        1e-5,
    )
    assert mnv3.postprocess.nms_kernel == 7 and not mnv3.dataset.increase_small_instance_weights
    r50 = load_config("cityscapes/resnet50_os32")
    assert (r50.model.aspp_rates, r50.model.bn_momentum, r50.dataset.crop_size) == (
        (3, 6, 9),
        0.99,
        (1025, 2049),
    )
    assert load_config("coco/xception71_os16").model.aspp_separable
    assert load_config("coco/resnet50_os16").postprocess.nms_kernel == 41


def test_unknown_key_names_the_key_and_suggests_the_closest(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  backbone: resnet50\n  output_strid: 16\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    message = str(err.value)
    assert "model.output_strid" in message and "output_stride" in message and str(path) in message


def test_unknown_section_suggests_the_closest(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("modle:\n  backbone: resnet50\n")
    with pytest.raises(ConfigError, match=r"'modle'.*Did you mean 'model'"):
        load_config(str(path))


def test_unknown_override_key_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"model\.backbon.*Did you mean 'backbone'"):
        load_config("cityscapes/resnet50_os32", ["model.backbon=resnet50_beta"])


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(
        ConfigError, match=r"unknown config 'cityscapes/resnet50_os23'.*cityscapes/resnet50_os32"
    ):
        load_config("cityscapes/resnet50_os23")


def test_missing_yaml_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/config.yaml")


@pytest.mark.parametrize(
    "override, field",
    [
        ("model.output_stride=sixteen", "model.output_stride"),
        ("train.batch_size=2.5", "train.batch_size"),
        ("model.sync_batch_norm=3", "model.sync_batch_norm"),
        ("dataset.crop_size=513", "dataset.crop_size"),
        ("dataset.crop_size=[1, 2, 3]", "dataset.crop_size"),
    ],
)
def test_bad_type_names_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config("cityscapes/resnet50_os32", [override])


def test_overrides_apply_with_yaml_types():
    config = load_config(
        "cityscapes/resnet50_os32", ["model.output_stride=16", "dataset.crop_size=[513, 513]"]
    )
    assert config.model.output_stride == 16 and config.dataset.crop_size == (513, 513)
