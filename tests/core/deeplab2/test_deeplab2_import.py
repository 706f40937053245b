"""`pdl import deeplab2`: the authors' checkpoints become bundles whose outputs equal deeplab2's.

The two fixture models were saved by deeplab2's own code; `outputs_*.npz` hold deeplab2's eval-mode
outputs for `input_257x513.png`. Floats must agree within 1e-4 of each output's range; the
panoptic maps segment for segment (same pixels, same class; instance numbers are free).
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from panoptic_deeplab.bundle import load_bundle
from panoptic_deeplab.cli import main
from panoptic_deeplab.deeplab2 import checkpoint as ckpt
from panoptic_deeplab.deeplab2.importer import import_deeplab2
from panoptic_deeplab.errors import CheckpointError
from panoptic_deeplab.image_io import load_image
from panoptic_deeplab.inference import Predictor
from panoptic_deeplab.model.layers import resize_align_corners
from panoptic_deeplab.postprocess import PostProcessOptions, post_process
from tests.core.deeplab2.deeplab2_fixtures import FIXTURES, MODELS, fixture

TOLERANCE = 1e-4  # of the reference output's range


def _import(model: str, out, **kwargs):
    folder, config, _ = MODELS[model]
    return import_deeplab2(fixture(folder), str(fixture(config)), out, log=lambda _: None, **kwargs)


@pytest.fixture(scope="module", params=sorted(MODELS))
def imported(request, tmp_path_factory):
    """(name, bundle, deeplab2 reference outputs with full-resolution logits) per fixture model."""
    out = tmp_path_factory.mktemp(request.param) / "bundle"
    _import(request.param, out)
    ref = dict(np.load(fixture(MODELS[request.param][2])))
    # deeplab2's own upsampling of its stride-4 logits (bit-exact per the fixture README).
    ref["semantic_logits"] = resize_align_corners(
        ref["decoder_semantic_logits"], (257, 513)
    ).numpy()[0]
    return request.param, load_bundle(out), ref


def _image():
    return load_image(fixture("input_257x513.png"))


def _assert_close(ours, theirs, what):
    span = float(theirs.max() - theirs.min())
    diff = float(np.abs(ours - theirs).max())
    assert diff <= TOLERANCE * span, (
        f"{what}: max |diff| {diff:.3g} > {TOLERANCE} x range {span:.3g}"
    )


def test_raw_outputs_equal_deeplab2(imported):
    _, bundle, ref = imported
    outputs = bundle.model(_image()[None].astype(np.float32), training=False)
    _assert_close(outputs["semantic_logits"].numpy()[0], ref["semantic_logits"], "semantic logits")
    _assert_close(
        outputs["center_heatmap"].numpy()[0, ..., 0], ref["center_heatmap"][0], "center heatmap"
    )
    _assert_close(outputs["offsets"].numpy()[0], ref["offset_map"][0], "offsets")


def _segment_pairs(ref_panoptic, our_panoptic, divisor, where):
    """Assert the two maps have the same segments on ``where`` (same pixels and class; any ids)."""
    pairs = np.unique(np.stack([ref_panoptic[where], our_panoptic[where]]), axis=1).T
    ref_ids, our_ids = pairs[:, 0], pairs[:, 1]
    assert len(np.unique(ref_ids)) == len(pairs), (
        "a deeplab2 segment is split among several of ours"
    )
    assert len(np.unique(our_ids)) == len(pairs), (
        "one of our segments spans several deeplab2 segments"
    )
    assert np.array_equal(ref_ids // divisor, our_ids // divisor), "a segment has another class"
    return len(pairs)


def _centers(ref):
    return {tuple(p) for p in np.argwhere(ref["instance_center_pred"][0] > 0)}


def test_our_fusion_of_deeplab2s_outputs_equals_its_panoptic_map(imported):
    """Same raw maps in, same segments out: post-processing alone, on every pixel."""
    _, bundle, ref = imported
    spec = bundle.spec
    options = PostProcessOptions.from_config(bundle.config, spec)  # the imported evaluator_options
    assert (options.nms_kernel, options.keep_k_centers) == (
        (7, 400) if bundle.config.model.backbone.startswith("mobilenet") else (13, 400)
    )
    probs = np.exp(ref["semantic_logits"] - ref["semantic_logits"].max(-1, keepdims=True))
    result = post_process(
        probs / probs.sum(-1, keepdims=True),
        ref["center_heatmap"][0],
        ref["offset_map"][0],
        options,
        semantic_is_probability=True,
    )
    n = int(result["num_centers"])
    assert {tuple(p) for p in result["center_points"].numpy()[:n]} == _centers(ref)
    assert np.array_equal(result["semantic"].numpy(), ref["semantic_pred"][0])
    every = np.ones(ref["panoptic_pred"][0].shape, bool)
    count = _segment_pairs(
        ref["panoptic_pred"][0], result["panoptic"].numpy(), spec.label_divisor, every
    )
    assert count == len(np.unique(ref["panoptic_pred"][0]))


def _undecided(ref, thing_class_ids, tolerance_logits, tolerance_offsets):
    """Pixels whose label a difference within the tolerances could flip: top-2 logits closer than
    twice the logit tolerance, or (thing pixels) two centers nearly equally close to the
    offset-shifted pixel."""
    top2 = np.sort(ref["semantic_logits"], axis=-1)[..., -2:]
    close_label = top2[..., 1] - top2[..., 0] < 2 * tolerance_logits
    centers = np.array(sorted(_centers(ref)), np.float32)
    h, w = close_label.shape
    grid = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), -1).astype(np.float32)
    target = grid + ref["offset_map"][0]
    dist = np.sqrt(((target[:, :, None, :] - centers[None, None]) ** 2).sum(-1))
    nearest = np.sort(dist, axis=-1)[..., :2]
    close_center = nearest[..., 1] - nearest[..., 0] < 4 * tolerance_offsets
    return close_label | (close_center & np.isin(ref["semantic_pred"][0], thing_class_ids))


def test_fused_panoptic_map_equals_deeplab2_segment_for_segment(imported):
    name, bundle, ref = imported
    prediction = Predictor(bundle)(_image())
    ours_centers = {tuple(p) for p in np.round(prediction.center_points).astype(int)}
    assert ours_centers == _centers(ref)
    span = lambda a: float(a.max() - a.min())  # noqa: E731
    undecided = _undecided(
        ref,
        bundle.spec.thing_class_ids,
        TOLERANCE * span(ref["semantic_logits"]),
        TOLERANCE * span(ref["offset_map"]),
    )
    assert undecided.mean() < 0.02, f"{name}: {undecided.sum()} undecided pixels"
    count = _segment_pairs(
        ref["panoptic_pred"][0], prediction.panoptic, bundle.spec.label_divisor, ~undecided
    )
    assert count == len(np.unique(ref["panoptic_pred"][0]))
    assert np.array_equal(prediction.semantic[~undecided], ref["semantic_pred"][0][~undecided])


def test_import_and_predict_commands_write_the_raw_outputs(tmp_path, capsys):
    folder, config, outputs = MODELS["mnv3s_os16"]
    bundle = tmp_path / "mnv3s"
    code = main(
        [
            "import",
            "deeplab2",
            "--checkpoint",
            str(fixture(folder)),
            "--config",
            str(fixture(config)),
            "--out",
            str(bundle),
            "--root",
            str(tmp_path / "work"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    for expected in (
        "backbone:        mobilenet_v3_small, output stride 16",
        "classes:         19 (cityscapes",
        "parameters:      1,782,414",
        "mapped:          362 checkpoint variables (1,782,414 values)",
        "NMS kernel 7, keep 400 centers, stuff area limit 2048",
    ):
        assert expected in out, out
    assert "read 362/362 variables" in err
    from panoptic_deeplab.jobs import JobStore  # the app's model pickers read this list

    assert bundle.resolve() in [Path(m.path) for m in JobStore(tmp_path / "work").models()]
    assert f"listed among the models of {tmp_path / 'work'}" in out
    code = main(
        [
            "predict",
            "--model",
            str(bundle),
            "--images",
            str(fixture("input_257x513.png")),
            "--out",
            str(tmp_path / "pred"),
            "--save-raw",
        ]
    )
    assert code == 0, capsys.readouterr().err
    raw = np.load(tmp_path / "pred" / "raw" / "input_257x513.npz")
    ref = np.load(fixture(outputs))
    _assert_close(raw["center_heatmap"], ref["center_heatmap"][0], "center heatmap")
    _assert_close(raw["offsets"], ref["offset_map"][0], "offsets")
    logits = resize_align_corners(ref["decoder_semantic_logits"], (257, 513)).numpy()[0]
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    assert (
        np.abs(raw["semantic_probs"].astype(np.float32) - probs).max() < 1e-3
    )  # stored as float16
    # A second import into the same folder refuses to replace the bundle unless asked to.
    assert (
        main(
            [
                "import",
                "deeplab2",
                "--checkpoint",
                str(fixture(folder)),
                "--config",
                str(fixture(config)),
                "--out",
                str(bundle),
            ]
        )
        == 2
    )
    assert "already exists (a model bundle)" in capsys.readouterr().err


def _h5_arrays(path):
    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: (
                arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return arrays


def test_savedmodel_variables_checkpoint_folder_and_yaml_config_import_the_same_weights(tmp_path):
    source = fixture(MODELS["mnv3s_os16"][0])
    saved = tmp_path / "saved_model"
    (saved / "variables").mkdir(parents=True)
    shutil.copy(source / "ckpt-0.index", saved / "variables" / "variables.index")
    shutil.copy(
        source / "ckpt-0.data-00000-of-00001", saved / "variables" / "variables.data-00000-of-00001"
    )
    assert ckpt.resolve_checkpoint(saved) == str(saved / "variables" / "variables")
    assert ckpt.resolve_checkpoint(source) == str(source / "ckpt-0")  # the folder's latest
    assert ckpt.resolve_checkpoint(source / "ckpt-0") == str(source / "ckpt-0")
    unpacked = tmp_path / "unpacked"  # a model-zoo archive without the 'checkpoint' state file
    unpacked.mkdir()
    for n in (5, 60000):
        (unpacked / f"ckpt-{n}.index").write_bytes(b"")
    assert ckpt.resolve_checkpoint(unpacked) == str(unpacked / "ckpt-60000")
    config = str(fixture(MODELS["mnv3s_os16"][1]))
    a = import_deeplab2(saved, config, tmp_path / "a", log=lambda _: None)
    b = import_deeplab2(source / "ckpt-0", config, tmp_path / "b", log=lambda _: None)
    # Our own YAML config (here the one the first import wrote) works as --config too.
    c = import_deeplab2(source, str(a.bundle / "config.yaml"), tmp_path / "c", log=lambda _: None)
    assert a.mapped == b.mapped == c.mapped == 362
    wa = _h5_arrays(a.bundle / "model.weights.h5")
    for other in (b, c):
        wb = _h5_arrays(other.bundle / "model.weights.h5")
        assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_truncated_checkpoint_is_a_clear_error_and_writes_nothing(tmp_path):
    broken = tmp_path / "ckpt"
    shutil.copytree(fixture(MODELS["mnv3s_os16"][0]), broken)
    data = broken / "ckpt-0.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    out = tmp_path / "bundle"
    with pytest.raises(CheckpointError, match=r"truncated or damaged; copy it again"):
        import_deeplab2(broken, str(fixture(MODELS["mnv3s_os16"][1])), out, log=lambda _: None)
    assert not out.exists() and not list(tmp_path.glob(".bundle*"))
    (broken / "ckpt-0.index").write_bytes(b"not an index")
    with pytest.raises(CheckpointError, match="not a readable TensorFlow checkpoint"):
        import_deeplab2(broken, str(fixture(MODELS["mnv3s_os16"][1])), out, log=lambda _: None)
    with pytest.raises(CheckpointError, match="no checkpoint here"):
        import_deeplab2(
            tmp_path / "nowhere" / "ckpt-5",
            str(fixture(MODELS["mnv3s_os16"][1])),
            out,
            log=lambda _: None,
        )
    assert not out.exists()


def test_config_that_does_not_match_the_checkpoint_lists_the_unmatched_variables(
    tmp_path, textproto
):
    out = tmp_path / "bundle"
    folder = fixture(MODELS["mnv3s_os16"][0])
    with pytest.raises(CheckpointError) as err:  # a ResNet config for a MobileNet checkpoint
        import_deeplab2(folder, str(fixture(MODELS["r50w025_os32"][1])), out, log=lambda _: None)
    message = str(err.value)
    assert "the checkpoint holds a MobileNetV3 backbone, the config asks for resnet50" in message
    assert re.search(r"checkpoint variables with no place in the model \(\d+\)", message)
    assert "encoder/_blocks/0/_conv/kernel [3, 3, 3, 16]" in message
    assert (
        "model weights the checkpoint does not provide" in message
        and "conv1_conv/kernel [7, 7, 3, 16]" in message
    )
    # One width off: the shapes that differ, on both sides.
    narrow = textproto("mnv3s_os16", "aspp_channels: 32", "aspp_channels: 24")
    with pytest.raises(
        CheckpointError,
        match=r"shapes differ \(\d+\):\n    semantic_decoder/_aspp/_aspp_conv1/"
        r"_conv_bn_act/_batch_norm/beta \[32\] -> semantic_aspp_atrous1_bn/beta \[24\]",
    ):
        import_deeplab2(folder, str(narrow), out, log=lambda _: None)
    assert not out.exists()


def test_unsupported_backbone_is_a_clear_error_and_writes_nothing(tmp_path, textproto, capsys):
    config = textproto("r50w025_os32", 'name: "resnet50"', 'name: "efficientnet_b0"')
    out = tmp_path / "bundle"
    code = main(
        [
            "import",
            "deeplab2",
            "--checkpoint",
            str(fixture(MODELS["r50w025_os32"][0])),
            "--config",
            str(config),
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "model_options.backbone.name: 'efficientnet_b0' is not supported" in err
    assert "Traceback" not in err and not out.exists()


def _official_shapes(name):
    shapes = {}
    for line in (FIXTURES / name).read_text().splitlines():
        key, shape = line.split("\t")
        if not ckpt.NON_MODEL.search(key):
            shapes[key[: -len(ckpt.SUFFIX)]] = tuple(ast.literal_eval(shape))
    return shapes


@pytest.mark.parametrize(
    "preset, listing, entries, values",
    [
        ("cityscapes/resnet50_os32", "variables_r50_os32_official.txt", 421, 55_038_534),
        (
            "cityscapes/mobilenet_v3_large_os16",
            "variables_mnv3l_os16_official.txt",
            418,
            18_272_646,
        ),
    ],
)
def test_official_variable_lists_map_one_to_one_onto_our_full_size_models(
    preset, listing, entries, values
):
    from panoptic_deeplab.config import load_config
    from panoptic_deeplab.model.builder import build_model

    config = load_config(preset)
    model = build_model(config, num_classes=19)
    mapping = ckpt.map_variables(_official_shapes(listing), model, config.model.backbone, listing)
    assert len(mapping.pairs) == entries and mapping.values == values == model.count_params()


def test_pdl_train_init_from_an_imported_model_reinitialises_only_the_class_layer(tmp_path, capsys):
    """`pdl train --init-from` the imported MobileNetV3-S for the synthetic data set (8 classes,
    not Cityscapes' 19): every layer but the last semantic one starts from the imported weights."""
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    bundle = tmp_path / "imported"
    _import("mnv3s_os16", bundle)
    root = make_synthetic_dataset(tmp_path / "data", 2, 1, height=65, width=97, seed=1, workers=1)
    code = main(
        [
            "train",
            "--config",
            str(bundle / "config.yaml"),
            "--set",
            "dataset.name=synthetic",
            "--set",
            "dataset.crop_size=[65,97]",
            "--batch-size",
            "1",
            "--dataset",
            str(root),
            "--workdir",
            str(tmp_path / "run"),
            "--steps",
            "0",
            "--init-from",
            str(bundle),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert f"initialised from {bundle / 'model.weights.h5'}" in out
    assert "re-initialised: semantic_head_output: kernel (1, 1, 64, 8), bias (8,)" in err
    tuned = load_bundle(tmp_path / "run" / "model")
    assert tuned.spec.num_classes == 8
    theirs = ckpt.model_weights(load_bundle(bundle).model)
    for key, weight in ckpt.model_weights(tuned.model).items():
        if key[0] != "semantic_head_output":
            assert np.array_equal(weight.numpy(), theirs[key].numpy()), key
