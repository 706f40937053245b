"""--precision auto|fp32|bf16|fp16: what `auto` picks from the CPU flags / GPU, and that bundles,
the Predictor and the commands build the network in the chosen precision."""

from __future__ import annotations

import json

import pytest

from panoptic_deeplab import precision as p
from panoptic_deeplab.errors import UserError

SAPPHIRE_RAPIDS = frozenset("fma avx2 avx512f avx512_bf16 amx_bf16 amx_tile".split())
COOPER_LAKE = frozenset("fma avx2 avx512f avx512_bf16".split())
ZEN1 = frozenset("fma avx2 sse4_2".split())


@pytest.mark.parametrize(
    "flags, expected, words",
    [
        (SAPPHIRE_RAPIDS, "bf16", "the CPU has amx_bf16 and avx512_bf16"),
        # AVX512-BF16 without AMX: native, but measured slower than fp32 (docs/deployment.md).
        (COOPER_LAKE, "fp32", "avx512_bf16 but no AMX"),
        (ZEN1, "fp32", "no native bfloat16"),
        (frozenset(), "fp32", "no native bfloat16"),
    ],
)
def test_auto_on_a_cpu_follows_its_bfloat16_flags(flags, expected, words):
    choice = p.choose_precision("auto", flags=flags, gpu=None)
    assert choice.name == expected and choice.requested == "auto" and words in choice.reason
    assert choice.policy == {"bf16": "mixed_bfloat16", "fp32": "float32"}[expected]


def test_auto_on_a_gpu_follows_its_compute_capability():
    assert p.choose_precision("auto", flags=ZEN1, gpu=True).name == "bf16"
    assert p.choose_precision("auto", flags=SAPPHIRE_RAPIDS, gpu=False).name == "fp32"


def test_explicit_choices_win_and_bad_names_are_refused():
    for name in ("fp32", "bf16", "fp16"):
        assert p.choose_precision(name, flags=ZEN1, gpu=None).name == name
    assert (
        p.parse_precision("mixed_bfloat16") == "bf16"
    )  # the config's policy names are accepted too
    with pytest.raises(UserError, match="choose one of auto, fp32, bf16, fp16"):
        p.parse_precision("fp8")


def test_training_auto_is_bfloat16_only_where_the_loss_curve_was_measured_to_hold():
    choice = p.choose_precision("auto", training=True, flags=SAPPHIRE_RAPIDS, gpu=None)
    assert choice.name == ("bf16" if p.AUTO_BF16_FOR_TRAINING else "fp32")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Xeon\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16\n"
    )
    flags = p.cpu_flags(cpuinfo)
    assert {"avx512_bf16", "amx_bf16"} <= flags
    assert p.cpu_bf16_flags(flags) == ["amx_bf16", "avx512_bf16"]
    assert p.cpu_flags(tmp_path / "missing") == frozenset()


def _dtypes(model):
    return {
        name: model.get_layer(name).compute_dtype
        for name in ("semantic_head_output", "center_head_output", "offset_head_output")
    }


def test_bundles_load_in_the_requested_precision_with_float32_outputs(tiny_bundle_dir, monkeypatch):
    from panoptic_deeplab.bundle import load_bundle

    bundle = load_bundle(tiny_bundle_dir, precision="bf16")
    assert bundle.precision.name == "bf16" and bundle.config.model.dtype_policy == "mixed_bfloat16"
    # The center head stays float32 (the accuracy guard's finding); the rest computes in bfloat16.
    assert _dtypes(bundle.model) == {
        "semantic_head_output": "bfloat16",
        "center_head_output": "float32",
        "offset_head_output": "bfloat16",
    }
    assert {v.dtype for v in bundle.model.weights} == {"float32"}
    # Left out: $PDL_PRECISION (the suite sets fp32), else bundle.json's "precision", else auto.
    assert load_bundle(tiny_bundle_dir).precision.name == "fp32"
    monkeypatch.delenv("PDL_PRECISION")
    info = json.loads((tiny_bundle_dir / "bundle.json").read_text())
    monkeypatch.setattr(p, "cpu_flags", lambda *a: ZEN1)
    monkeypatch.setattr(p, "gpu_bf16", lambda: None)
    assert (
        load_bundle(tiny_bundle_dir)
        .precision.describe()
        .startswith("precision fp32 (auto: this CPU has no")
    )
    monkeypatch.setattr(p, "cpu_flags", lambda *a: SAPPHIRE_RAPIDS)
    assert load_bundle(tiny_bundle_dir).precision.name == "bf16"
    copy = tiny_bundle_dir.parent / "fp32-default"
    import shutil

    shutil.copytree(tiny_bundle_dir, copy)
    (copy / "bundle.json").write_text(json.dumps({**info, "precision": "fp32"}))
    assert (
        load_bundle(copy).precision.describe()
        == f"precision fp32 (the bundle's default, {copy / 'bundle.json'})"
    )
    assert (
        load_bundle(copy, precision="auto").precision.name == "bf16"
    )  # asked for: the machine decides
    (copy / "bundle.json").write_text(json.dumps({**info, "precision": "fp64"}))
    with pytest.raises(UserError, match="bundle.json: precision 'fp64'"):
        load_bundle(copy)


def test_the_predictor_says_what_runs_and_engines_refuse_what_they_cannot_run(tiny_bundle_dir):
    from panoptic_deeplab.bundle import load_bundle
    from panoptic_deeplab.engines import choose_backend

    predictor_bundle = load_bundle(tiny_bundle_dir, precision="bf16")
    from panoptic_deeplab.inference import Predictor

    predictor = Predictor(predictor_bundle)
    assert predictor.describe() == "tf, precision bf16 (as requested)"
    assert (
        Predictor(predictor_bundle, precision="fp32").bundle.precision.name == "fp32"
    )  # rebuilt in fp32
    auto_bf16 = p.Choice("bf16", "auto", "auto: the CPU has amx_bf16")
    backend, choice = choose_backend("onnx", auto_bf16)
    assert (backend, choice.name) == ("onnx", "fp32") and "onnx runs float32 only" in choice.reason
    assert choose_backend("openvino", auto_bf16)[1].name == "bf16"
    with pytest.raises(UserError, match="--backend onnx runs fp32 only, not bf16"):
        choose_backend("onnx", p.Choice("bf16", "bf16", "as requested"))
    with pytest.raises(UserError, match="choose one of tf, onnx, openvino"):
        choose_backend("tensorrt", auto_bf16)


def test_pdl_predict_says_and_records_its_precision_and_refuses_what_an_engine_cannot_run(
    tiny_bundle_dir, tmp_path, capsys
):
    from PIL import Image

    from panoptic_deeplab.cli import main
    from tests.core.inference.inference_fakes import random_image

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(random_image(65, 97, seed=1)).save(images / "a.png")
    out = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                "--model",
                str(tiny_bundle_dir),
                "--images",
                str(images),
                "--out",
                str(out),
                "--precision",
                "bf16",
            ]
        )
        == 0
    )
    assert "network: tf, precision bf16 (as requested)" in capsys.readouterr().err
    info = json.loads((out / "panoptic.json").read_text())["info"]
    assert (info["backend"], info["precision"]) == ("tf", "bf16")
    assert (
        main(
            [
                "predict",
                "--model",
                str(tiny_bundle_dir),
                "--images",
                str(images),
                "--out",
                str(tmp_path / "x"),
                "--precision",
                "bf16",
                "--backend",
                "onnx",
            ]
        )
        == 2
    )
    assert (
        "--backend onnx runs fp32 only, not bf16; give --precision fp32 or another --backend"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "x").exists()


def test_pdl_app_passes_precision_and_backend_to_the_app(tmp_path, capsys):
    from panoptic_deeplab.cli import main

    assert (
        main(
            [
                "app",
                "--dry-run",
                "--workdir",
                str(tmp_path),
                "--precision",
                "bf16",
                "--backend",
                "openvino",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert "PDL_PRECISION=bf16" in lines and "PDL_BACKEND=openvino" in lines


def test_pdl_train_precision_sets_the_dtype_policy(monkeypatch, capsys):
    from panoptic_deeplab.commands import train

    seen = {}

    def stop(name, overrides):
        seen["overrides"] = overrides
        raise SystemExit(0)

    monkeypatch.setattr("panoptic_deeplab.config.load_config", stop)
    monkeypatch.setattr(p, "cpu_flags", lambda *a: SAPPHIRE_RAPIDS)
    monkeypatch.setattr(p, "gpu_bf16", lambda: None)
    import argparse

    parser = argparse.ArgumentParser()
    train.configure_parser(parser)
    for flag, policy in (
        ("bf16", "mixed_bfloat16"),
        ("fp32", "float32"),
        ("auto", "mixed_bfloat16" if p.AUTO_BF16_FOR_TRAINING else "float32"),
    ):
        args = parser.parse_args(
            ["--config", "synthetic/tiny", "--dataset", "D", "--workdir", "W", "--precision", flag]
        )
        with pytest.raises(SystemExit):
            train.run(args)
        assert f"model.dtype_policy={policy}" in seen["overrides"]
        assert "training in precision" in capsys.readouterr().err
