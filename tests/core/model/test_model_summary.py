"""`pdl model-summary` on a tiny config: JSON fields agree with the built model."""

from __future__ import annotations

import json

import keras

from panoptic_deeplab.cli import main
from panoptic_deeplab.config import save_config
from panoptic_deeplab.model.builder import build_model
from panoptic_deeplab.model.flops import count_mult_adds
from tests.core.model.model_test_utils import tiny_config


def test_model_summary_json(tmp_path, capsys):
    config = tiny_config(output_stride=16)
    path = tmp_path / "tiny.yaml"
    save_config(config, path)
    assert (
        main(["model-summary", "--config", str(path), "--json", "--set", "model.output_stride=32"])
        == 0
    )
    info = json.loads(capsys.readouterr().out)

    model = build_model(config.replace({"model.output_stride": 32}), input_shape=(65, 97))
    trainable = int(sum(keras.ops.size(w) for w in model.trainable_weights))
    non_trainable = int(sum(keras.ops.size(w) for w in model.non_trainable_weights))
    assert info["output_stride"] == 32
    assert info["trainable_params"] == trainable
    assert info["non_trainable_params"] == non_trainable
    assert info["total_params"] == trainable + non_trainable
    assert info["mult_adds"] == count_mult_adds(model) > 0
    assert info["output_shapes"]["offsets"] == [1, 65, 97, 2]


def test_model_summary_text_and_bad_config(tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    save_config(tiny_config(), path)
    assert main(["model-summary", "--config", str(path)]) == 0
    assert "trainable params" in capsys.readouterr().out
    assert main(["model-summary", "--config", "cityscapes/resnet50_os23"]) == 2
    assert "Did you mean 'cityscapes/resnet50_os32'" in capsys.readouterr().err
