"""Every shipped config, with its own resize rule, output stride, heads, loss and post-processing,
trains on the default synthetic data set (made tiny) with the TensorBoard preview and --eval-split
evaluation: the defaults work together, whatever the image size. The crop (smaller than the images,
so the preview crops), the batch, the steps and a resize rule's sizes are made small; the MobileNet
configs keep their own model, the ResNet / Xception ones run with a MobileNetV3-Small backbone in
place of theirs (on 2 CPU cores each of those takes minutes to trace; the backbones themselves are
tested in tests/core/model), deeplab2's wide and axial ResNets at 1/16 of their width and depth 1.
A config that is then the same as another (a deeper SWideRNet variant) trains once: a quick test
checks that it differs from the one trained in nothing else."""

import json
import subprocess

import pytest

from panoptic_deeplab.cli import main
from panoptic_deeplab.config import available_configs, load_config, parse_overrides
from panoptic_deeplab.model.backbones.architectures import ARCHITECTURES
from tests.core.training.scenes import ENV, PDL


@pytest.fixture(scope="module")
def default_synthetic(tmp_path_factory):
    """`pdl make-dataset synthetic` with its defaults, at a tiny size (64x128 for 512x1024)."""
    root = tmp_path_factory.mktemp("data") / "synthetic"
    subprocess.run(
        [
            *PDL,
            "make-dataset",
            "synthetic",
            "--out",
            str(root),
            "--num-train",
            "2",
            "--num-val",
            "1",
            "--height",
            "64",
            "--width",
            "128",
            "--workers",
            "1",
        ],
        check=True,
        env=ENV,
    )
    return root


def test_every_shipped_config_is_walked():
    assert {
        "synthetic/tiny",
        "synthetic/demo",
        "cityscapes/mobilenet_v3_large_os16",
        "coco/resnet50_os16",
    } <= set(available_configs())


def _light_overrides(name: str) -> list[str]:
    """``section.key=value`` overrides that make config ``name`` train fast at the tiny size."""
    config = load_config(name)
    backbone, stride = config.model.backbone, config.model.output_stride
    crop = [stride + 1, 2 * stride + 1]  # smaller than the 64x128 images
    light = [f"dataset.crop_size={crop}", "train.warmup_steps=0"]
    if backbone in ARCHITECTURES and backbone not in ("resnet50", "resnet50_beta"):
        # deeplab2's wide and axial ResNets keep their own backbone (drop path, switchable atrous
        # convolution, axial attention with recomputed gradients), thin and at depth 1: the
        # parameter-count tests check the (1,1,3) and (1,1,4.5) variants' depth.
        light += ["model.backbone_width=0.0625", "model.stem_width=0.0625"]
        light += ["model.backbone_layers=1"]
    elif not backbone.startswith("mobilenet"):
        light += ["model.backbone=mobilenet_v3_small"]
    if config.dataset.max_resize_value:  # COCO 641, Vistas 2177: the rule made tiny
        light += [f"dataset.min_resize_value={crop[0]}", f"dataset.max_resize_value={crop[1]}"]
    return light


def _as_trained(name: str) -> str:
    """The config that ``name`` trains as here, less its name."""
    data = load_config(name, parse_overrides(_light_overrides(name))).to_dict()
    data.pop("name", None)
    return json.dumps(data, sort_keys=True)


def _distinct_configs() -> dict[str, list[str]]:
    """The first config of each distinct trained config -> the later ones that train the same."""
    groups: dict[str, list[str]] = {}
    for name in available_configs():
        groups.setdefault(_as_trained(name), []).append(name)
    return {names[0]: names[1:] for names in groups.values()}


def test_configs_trained_once_differ_from_the_trained_one_only_in_depth():
    trained_as = {later: name for name, laters in _distinct_configs().items() for later in laters}
    assert trained_as == {
        "cityscapes/axial_swidernet_1_1_3_os16": "cityscapes/axial_swidernet_1_1_1_os16",
        "cityscapes/swidernet_sac_1_1_3_os16": "cityscapes/swidernet_sac_1_1_1_os16",
    }
    for later, name in trained_as.items():
        a, b = load_config(later).to_dict(), load_config(name).to_dict()
        assert a["model"].pop("backbone_layers") == 3.0 and b["model"].pop("backbone_layers") == 1.0
        a.pop("name"), b.pop("name")
        assert a == b


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(_distinct_configs()))
def test_shipped_config_trains_previews_and_evaluates(name, default_synthetic, tmp_path, capsys):
    light = [arg for item in _light_overrides(name) for arg in ("--set", item)]
    workdir = tmp_path / "run"
    code = main(
        [
            "train",
            "--config",
            name,
            "--dataset",
            str(default_synthetic),
            "--workdir",
            str(workdir),
            "--steps",
            "1",
            "--batch-size",
            "1",
            "--checkpoint-every",
            "1",
            *light,
            "--eval-split",
            "val",
            "--eval-every",
            "1",
            "--skip-dataset-check",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.out[-2000:] + out.err[-3000:]
    assert "step 1: eval pq" in out.out and "images 1" in out.out
    assert "memory: low-memory mode off (auto: CPU" in out.out  # chosen and printed
    assert json.loads((workdir / "status.json").read_text())["state"] == "finished"
    assert (workdir / "model" / "bundle.json").is_file()
