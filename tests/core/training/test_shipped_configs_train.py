"""Every shipped config, with its own resize rule, output stride, heads, loss and post-processing,
trains on the default synthetic data set (made tiny) with the TensorBoard preview and --eval-split
evaluation: the defaults work together, whatever the image size. The crop (smaller than the images,
so the preview crops), the batch, the steps and a resize rule's sizes are made small; the MobileNet
configs keep their own model, the ResNet / Xception ones run with a MobileNetV3-Small backbone in
place of theirs (on 2 CPU cores each of those takes minutes to trace; the backbones themselves are
tested in tests/core/model; the deeper SWideRNet variants train at depth 1)."""

import json
import subprocess

import pytest

from panoptic_deeplab.cli import main
from panoptic_deeplab.config import available_configs, load_config
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


@pytest.mark.slow
@pytest.mark.parametrize("name", available_configs())
def test_shipped_config_trains_previews_and_evaluates(name, default_synthetic, tmp_path, capsys):
    model = load_config(name).model
    crop = [model.output_stride + 1, 2 * model.output_stride + 1]  # smaller than the 64x128 images
    if model.backbone.startswith("mobilenet"):
        light = []
    elif model.backbone in ARCHITECTURES and model.backbone not in ("resnet50", "resnet50_beta"):
        # deeplab2's wide and axial ResNets keep their own backbone (drop path, switchable atrous
        # convolution, axial attention with recomputed gradients), at 1/16 of its width.
        light = ["--set", "model.backbone_width=0.0625", "--set", "model.stem_width=0.0625"]
        if model.backbone_layers != 1:
            # The (1,1,3) and (1,1,4.5) variants differ from (1,1,1) only in depth, which the
            # parameter-count tests check; their other settings train here at depth 1.
            light += ["--set", "model.backbone_layers=1"]
    else:
        light = ["--set", "model.backbone=mobilenet_v3_small"]
    if load_config(
        name
    ).dataset.max_resize_value:  # COCO 641, Vistas 2177: the same rule at the tiny scale
        light += [
            "--set",
            f"dataset.min_resize_value={crop[0]}",
            "--set",
            f"dataset.max_resize_value={crop[1]}",
        ]
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
            "--set",
            f"dataset.crop_size={crop}",
            "--set",
            "train.warmup_steps=0",
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
