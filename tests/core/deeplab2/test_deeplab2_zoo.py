"""The rest of deeplab2's Panoptic-DeepLab zoo: Wide-ResNet-41, SWideRNet-SAC, Axial-SWideRNet, the
MaX-DeepLab-S and -L backbones and KITTI-STEP (tests/fixtures/deeplab2_zoo/README.md).

Small models built, saved and run by deeplab2's own code import one to one and give deeplab2's
outputs. Models with axial attention amplify float rounding (on these random weights, a relative
input change of 1e-7 grows to 5e-4 over deeplab2's own six stage-4 blocks), so for them the
comparison is block by block: our first axial block, fed deeplab2's input to it, gives deeplab2's
output; end to end, their outputs are as far from deeplab2's as from their own outputs on the
input changed by one rounding step. The variable lists of all 19 full-size zoo models map one to
one onto our models.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from panoptic_deeplab.bundle import load_bundle
from panoptic_deeplab.deeplab2 import checkpoint as ckpt
from panoptic_deeplab.deeplab2.importer import import_deeplab2, read_config
from panoptic_deeplab.image_io import load_image
from panoptic_deeplab.inference import Predictor
from panoptic_deeplab.model.layers import resize_align_corners
from tests.core.deeplab2.test_deeplab2_import import _centers, _segment_pairs, _undecided

ZOO = Path(__file__).resolve().parents[2] / "fixtures" / "deeplab2_zoo"
IMAGE = ZOO.parent / "deeplab2" / "input_257x513.png"
TOLERANCE = 1e-4  # of the reference output's range
EXACT = ("wide_resnet41_small", "swidernet_sac_small", "max_deeplab_l_backbone_small")
AXIAL = ("axial_swidernet_small", "max_deeplab_s_backbone_small")


def _import(name: str, out: Path) -> None:
    folder = ZOO / name
    import_deeplab2(folder / "ckpt", str(folder / "config.textproto"), out, log=lambda _: None)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """name -> imported bundle, imported once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            out = tmp_path_factory.mktemp(name) / "bundle"
            _import(name, out)
            cache[name] = load_bundle(out)
        return cache[name]

    return get


def _reference(name: str, size: tuple[int, int]) -> dict:
    """deeplab2's outputs, full resolution as deeplab2 upsamples them (align corners)."""
    ref = dict(np.load(ZOO / name / "outputs.npz"))
    up = {
        key: resize_align_corners(ref[f"decoder_{key}"], size).numpy()
        for key in ("semantic_logits", "center_heatmap", "offset_map")
    }
    ref["semantic_logits"] = up["semantic_logits"][0]
    ref["center_heatmap"] = up["center_heatmap"][..., 0]
    # deeplab2 scales the offsets with the resolution: (size - 1) / (decoder size - 1) per axis.
    h, w = ref["decoder_offset_map"].shape[1:3]
    scale = np.array([(size[0] - 1) / (h - 1), (size[1] - 1) / (w - 1)], np.float32)
    ref["offset_map"] = up["offset_map"] * scale
    return ref


def _assert_close(ours, theirs, what):
    span = float(theirs.max() - theirs.min())
    diff = float(np.abs(ours - theirs).max())
    assert diff <= TOLERANCE * span, f"{what}: max |diff| {diff:.3g} > {TOLERANCE} x {span:.3g}"


@pytest.mark.parametrize("name", EXACT)
def test_outputs_and_panoptic_map_equal_deeplab2(bundles, name):
    bundle = bundles(name)
    image = load_image(IMAGE)
    ref = _reference(name, image.shape[:2])
    outputs = bundle.model(image[None].astype(np.float32), training=False)
    _assert_close(outputs["semantic_logits"].numpy()[0], ref["semantic_logits"], "logits")
    _assert_close(outputs["center_heatmap"].numpy()[0, ..., 0], ref["center_heatmap"][0], "center")
    _assert_close(outputs["offsets"].numpy()[0], ref["offset_map"][0], "offsets")

    prediction = Predictor(bundle)(image)
    assert {tuple(p) for p in np.round(prediction.center_points).astype(int)} == _centers(ref)
    span = lambda a: float(a.max() - a.min())  # noqa: E731 - a one-line helper
    undecided = _undecided(
        ref,
        bundle.spec.thing_class_ids,
        TOLERANCE * span(ref["semantic_logits"]),
        TOLERANCE * span(ref["offset_map"]),
    )
    assert undecided.mean() < 0.02
    count = _segment_pairs(
        ref["panoptic_pred"][0], prediction.panoptic, bundle.spec.label_divisor, ~undecided
    )
    assert count == len(np.unique(ref["panoptic_pred"][0]))


@pytest.mark.parametrize("name", AXIAL)
def test_first_axial_block_equals_deeplab2_block_for_block(bundles, name):
    """deeplab2's stage-4 block 1 output in, its block 2 (axial attention) output out."""
    backbone = bundles(name).model.get_layer("backbone")
    ref = np.load(ZOO / name / "axial_block.npz")
    block = keras.Model(
        backbone.get_layer("conv4_block1_out").output,
        backbone.get_layer("conv4_block2_add").output,
    )
    assert any("attention" in layer.name for layer in block.layers)
    ours = block(np.maximum(ref["block1_raw"], 0)[None], training=False).numpy()[0]
    _assert_close(ours, ref["block2_raw"], f"{name} axial block")


@pytest.mark.parametrize("name", AXIAL)
def test_axial_models_end_to_end_are_within_their_own_rounding_noise_of_deeplab2(bundles, name):
    """Each output's largest distance to deeplab2's is at most twice the largest change our model
    makes when every input value moves by one float32 rounding step (+-1.2e-7 relative, random
    signs, two draws): end to end, the models differ from deeplab2 no more than from themselves.
    (Axial-SWideRNet: about 2e-3 of the range each way; MaX-S's random weights amplify far more,
    so for it the block test above is the sharp one.)"""
    model = bundles(name).model
    image = load_image(IMAGE).astype(np.float32)[None]
    ref = _reference(name, image.shape[1:3])
    theirs = {
        "semantic_logits": ref["semantic_logits"],
        "center_heatmap": ref["center_heatmap"][0],
        "offsets": ref["offset_map"][0],
    }

    def outputs(x):
        out = model(x, training=False)
        return {key: out[key].numpy()[0].reshape(theirs[key].shape) for key in theirs}

    ours = outputs(image)
    rng = np.random.default_rng(0)
    noise = dict.fromkeys(theirs, 0.0)
    for _ in range(2):
        step = rng.choice(np.float32([-1.2e-7, 1.2e-7]), size=image.shape)
        nudged = outputs(image * (1 + step))
        for key in theirs:
            noise[key] = max(noise[key], float(np.abs(nudged[key] - ours[key]).max()))
    for key, reference in theirs.items():
        diff = float(np.abs(ours[key] - reference).max())
        assert noise[key] > 0, f"{key}: the nudged input changed nothing"
        assert diff <= 2 * noise[key], f"{key}: {diff:.3g} off deeplab2, noise {noise[key]:.3g}"


def test_kitti_step_imports_with_its_class_table():
    config, spec, outputs, _ = read_config(str(ZOO / "kitti_r50_small" / "config.textproto"), None)
    assert (spec.name, spec.num_classes, spec.thing_class_ids) == ("kitti_step", 19, (11, 13))
    assert spec.label_divisor == 1000 and outputs == 19
    assert config.dataset.crop_size == (193, 625) and config.model.output_stride == 32


def _zoo_rows():
    return json.loads((ZOO / "zoo_variables" / "zoo.json").read_text())["rows"]


def _shapes(row: str) -> dict:
    shapes = {}
    for line in (ZOO / "zoo_variables" / f"{row}.txt").read_text().splitlines():
        key, shape = line.split("\t")
        if not ckpt.NON_MODEL.search(key):
            shapes[key[: -len(ckpt.SUFFIX)]] = tuple(ast.literal_eval(shape))
    return shapes


@pytest.mark.slow
@pytest.mark.parametrize("row", [r["row"] for r in _zoo_rows()])
def test_full_size_zoo_variables_map_one_to_one_and_counts_match(row):
    from panoptic_deeplab.model.builder import build_model

    expected = next(r for r in _zoo_rows() if r["row"] == row)
    config, spec, _, _ = read_config(str(ZOO / "zoo_variables" / f"{row}.textproto"), None)
    model = build_model(config, num_classes=spec.num_classes)
    shapes = _shapes(row)
    mapping = ckpt.map_variables(shapes, model, config.model.backbone, row)
    assert len(mapping.pairs) == len(shapes) == expected["checkpoint_model_variables"]
    assert mapping.values == model.count_params() == expected["params"]
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == expected["trainable_params"]
    keras.backend.clear_session()


PRESETS = {  # our preset -> the zoo row whose textproto it reproduces
    "cityscapes/wide_resnet41_os16": "cs_wr41_os16",
    "cityscapes/swidernet_sac_1_1_1_os16": "cs_swidernet_sac_111_os16",
    "cityscapes/swidernet_sac_1_1_3_os16": "cs_swidernet_sac_113_os16",
    "cityscapes/swidernet_sac_1_1_4.5_os16": "cs_swidernet_sac_1145_os16",
    "cityscapes/axial_swidernet_1_1_1_os16": "cs_axial_swidernet_111_os16",
    "cityscapes/axial_swidernet_1_1_3_os16": "cs_axial_swidernet_113_os16",
    "cityscapes/axial_swidernet_1_1_4.5_os16": "cs_axial_swidernet_1145_os16",
    "cityscapes/max_deeplab_s_backbone_os16": "cs_maxs_backbone_os16",
    "cityscapes/max_deeplab_l_backbone_os16": "cs_maxl_backbone_os16",
    "kitti_step/resnet50_os32": "kitti_r50_os32",
}


@pytest.mark.parametrize("preset, row", sorted(PRESETS.items()))
def test_presets_are_the_zoo_models(preset, row):
    """Same network, data set and evaluation settings as the authors' config (whose parameter
    counts the slow test above checks)."""
    from panoptic_deeplab.config import load_config

    ours = load_config(preset)
    theirs, spec, _, _ = read_config(str(ZOO / "zoo_variables" / f"{row}.textproto"), None)
    assert ours.model == theirs.model and ours.postprocess == theirs.postprocess
    assert ours.dataset.name == spec.name and ours.dataset.crop_size == theirs.dataset.crop_size


def test_axial_swidernet_preset_has_deeplab2s_trainable_parameter_count():
    from panoptic_deeplab.config import load_config
    from panoptic_deeplab.model.builder import build_model

    expected = next(r for r in _zoo_rows() if r["row"] == "cs_axial_swidernet_111_os16")
    config = load_config("cityscapes/axial_swidernet_1_1_1_os16")
    model = build_model(config, num_classes=19, input_shape=(65, 129))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == expected["trainable_params"]


def test_a_checkpoint_of_another_zoo_model_stops_naming_the_mismatch(tmp_path):
    from panoptic_deeplab.errors import CheckpointError

    out = tmp_path / "bundle"
    with pytest.raises(CheckpointError, match="Fix: give the config the checkpoint was trained"):
        import_deeplab2(
            ZOO / "axial_swidernet_small" / "ckpt",
            str(ZOO / "swidernet_sac_small" / "config.textproto"),
            out,
            log=lambda _: None,
        )
    assert not out.exists()


@pytest.mark.slow  # 44-145 s on 2 shared cores
@pytest.mark.parametrize("name", ["axial_swidernet_small"])
def test_pdl_train_init_from_an_imported_zoo_model_starts_from_its_weights(
    tmp_path, capsys, monkeypatch, name
):
    """`pdl import deeplab2` a zoo model (Axial-SWideRNet: axial blocks, drop path on in training),
    then `pdl train --init-from` it for 2 steps on the synthetic data set (8 classes, not 19):
    before the first step every weight but the class layer is the imported one, that layer is
    re-initialised with a note saying so, and the 2 steps move the backbone."""
    from panoptic_deeplab.cli import main
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset
    from panoptic_deeplab.training import callbacks

    bundle = tmp_path / "imported"
    _import(name, bundle)
    imported = {k: v.numpy() for k, v in ckpt.model_weights(load_bundle(bundle).model).items()}
    before_first_step = {}

    def record(self, batch, logs=None):  # the weights the first optimizer step starts from
        if not before_first_step:
            for key, weight in ckpt.model_weights(self.model.network).items():
                before_first_step[key] = weight.numpy()

    monkeypatch.setattr(callbacks.StepCounter, "on_train_batch_begin", record, raising=False)
    root = make_synthetic_dataset(tmp_path / "data", 2, 1, height=65, width=97, seed=1, workers=1)
    argv = ["train", "--config", str(bundle / "config.yaml"), "--dataset", str(root)]
    argv += ["--set", "dataset.name=synthetic", "--set", "dataset.crop_size=[65,97]"]
    argv += ["--batch-size", "1", "--steps", "2", "--workdir", str(tmp_path / "run")]
    code = main([*argv, "--init-from", str(bundle)])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    assert f"initialised from {bundle / 'model.weights.h5'}" in out
    assert "trained for another number of classes" in err
    assert "re-initialised: semantic_head_output: kernel (1, 1, 32, 8), bias (8,)" in err

    assert before_first_step.keys() == imported.keys()
    for key, value in before_first_step.items():
        if key[0] == "semantic_head_output":
            assert value.shape[-1] == 8 and imported[key].shape[-1] == 19, key
        else:
            assert np.array_equal(value, imported[key]), key
    tuned = load_bundle(tmp_path / "run" / "model")
    assert tuned.spec.num_classes == 8
    assert tuned.config.model.drop_path_keep_prob == pytest.approx(0.8)  # deeplab2's, kept
    tuned_weights = {k: v.numpy() for k, v in ckpt.model_weights(tuned.model).items()}
    kernels = [k for k in imported if k[0] != "semantic_head_output" and k[1] == "kernel"]
    moved = [k for k in kernels if not np.array_equal(tuned_weights[k], imported[k])]
    assert len(moved) > len(kernels) // 2, f"2 steps moved {len(moved)} of {len(kernels)} kernels"
