"""Exports reload and agree with the Predictor (tiny synthetic model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from panoptic_deeplab.bundle import load_bundle
from panoptic_deeplab.cli import main
from panoptic_deeplab.inference import Predictor
from tests.core.inference.inference_fakes import random_image


@pytest.mark.slow
def test_saved_model_matches_the_predictor(tiny_bundle_dir, tmp_path):
    out = tmp_path / "sm"
    assert (
        main(
            [
                "export",
                "--model",
                str(tiny_bundle_dir),
                "--format",
                "saved_model",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    meta = json.loads((out / "pdl_export.json").read_text())
    assert (
        meta["dataset_spec"]["name"] == "synthetic" and meta["postprocess"]["keep_k_centers"] == 50
    )
    loaded = tf.saved_model.load(str(out))
    predictor = Predictor(tiny_bundle_dir)
    images = [random_image(65, 97, seed=11), random_image(65, 97, seed=12)]
    expected = predictor.predict(images)

    batch = loaded.signatures["serving_default"](images=tf.constant(np.stack(images)))
    single = loaded.signatures["serve_image"](image=tf.constant(images[0]))
    for k, pred in enumerate(expected):
        np.testing.assert_allclose(
            batch["semantic_probs"][k].numpy(), pred.semantic_probs, atol=1e-5
        )
        np.testing.assert_allclose(
            batch["center_heatmap"][k].numpy(), pred.center_heatmap, atol=1e-5
        )
        np.testing.assert_allclose(batch["offsets"][k].numpy(), pred.offsets, atol=1e-4)
        np.testing.assert_array_equal(batch["panoptic"][k].numpy(), pred.panoptic)
        n = int(batch["num_centers"][k])
        np.testing.assert_allclose(
            batch["center_points"][k, :n].numpy(), pred.center_points, atol=1e-4
        )
    np.testing.assert_array_equal(single["panoptic"].numpy(), expected[0].panoptic)
    # Another size through the same signature (dynamic shapes inside).
    other = random_image(40, 140, seed=13)
    got = loaded.signatures["serve_image"](image=tf.constant(other))
    np.testing.assert_array_equal(got["panoptic"].numpy(), predictor(other).panoptic)
    # An existing export is not replaced without --overwrite.
    assert main(["export", "--model", str(tiny_bundle_dir), "--out", str(out)]) == 2


@pytest.mark.slow
def test_tflite_raw_outputs_match_the_keras_model(tiny_bundle_dir, tmp_path):
    out = tmp_path / "tiny.tflite"
    assert (
        main(["export", "--model", str(tiny_bundle_dir), "--format", "tflite", "--out", str(out)])
        == 0
    )
    meta = json.loads(out.with_suffix(".tflite.json").read_text())
    assert meta["input"]["shape"] == [1, 129, 257, 3] and meta["postprocess_inside"] is False
    interpreter = tf.lite.Interpreter(model_path=str(out))
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner()
    image = random_image(129, 257, seed=14).astype(np.float32)[None]
    got = runner(image=image)
    model = load_bundle(tiny_bundle_dir).model
    expected = model(image, training=False)
    for key in ("semantic_logits", "center_heatmap", "offsets"):
        np.testing.assert_allclose(got[key], np.asarray(expected[key]), atol=1e-3, rtol=1e-3)
