"""Predictor: padding, cropping, resizing back and test-time augmentation, checked against values
computed by hand from hand-made models; and the wiring with a tiny real model."""

from __future__ import annotations

import numpy as np
import pytest

from panoptic_deeplab.inference import Predictor
from panoptic_deeplab.postprocess import post_process
from tests.core.inference.inference_fakes import (
    SPEC,
    PoolSpy,
    fake_bundle,
    fake_config,
    random_image,
)


def nearest_palette_class(image):
    colors = np.asarray(SPEC.colors, np.float64)
    d = ((image.astype(np.float64)[..., None, :] - colors) ** 2).sum(-1)
    return d.argmin(-1)


@pytest.fixture(scope="module")
def plain():
    return Predictor(fake_bundle(fake_config(crop=(33, 49))))


def test_padding_is_127_5_at_the_bottom_right_and_cropped_back(plain):
    image = random_image(20, 30)
    pred = plain(image)
    assert (
        pred.image_size == (20, 30)
        and pred.padded_size == (33, 49)
        and pred.network_size == (20, 30)
    )
    assert pred.panoptic.shape == pred.semantic.shape == pred.center_heatmap.shape == (20, 30)
    assert pred.semantic_probs.shape == (20, 30, SPEC.num_classes) and pred.offsets.shape == (
        20,
        30,
        2,
    )
    np.testing.assert_array_equal(pred.semantic, nearest_palette_class(image))
    np.testing.assert_allclose(pred.semantic_probs.sum(-1), 1.0, atol=1e-5)
    # heat(y, x) = R(y, x + 1) / 255: the last column sees the first padding column, 127.5.
    red = image[..., 0].astype(np.float32) / 255.0
    np.testing.assert_allclose(pred.center_heatmap[:, :-1], red[:, 1:], atol=1e-6)
    np.testing.assert_allclose(pred.center_heatmap[:, -1], 0.5, atol=1e-6)
    np.testing.assert_allclose(pred.offsets, np.broadcast_to([1.0, 2.0], (20, 30, 2)))


def test_flip_averages_mirrored_runs_and_negates_dx():
    predictor = Predictor(fake_bundle(fake_config(crop=(33, 49))), flip=True)
    image = random_image(20, 30, seed=1)
    pred = predictor(image)
    # Mirrored run flipped back: heat(y, x) = R(y, x - 1), zero left of the image.
    padded = np.full((33, 49), 127.5, np.float32)
    padded[:20, :30] = image[..., 0]
    ext = np.pad(padded, [(0, 0), (1, 1)]) / 255.0
    expected = (ext[:, 2:] + ext[:, :-2]) / 2.0
    np.testing.assert_allclose(pred.center_heatmap, expected[:20, :30], atol=1e-6)
    # Offsets: (1, 2) and the mirrored run's (1, -2) average to (1, 0).
    np.testing.assert_allclose(pred.offsets, np.broadcast_to([1.0, 0.0], (20, 30, 2)), atol=1e-6)
    # The palette model is mirror-symmetric per pixel, so the semantics are unchanged.
    np.testing.assert_array_equal(pred.semantic, nearest_palette_class(image))


def test_multi_scale_rescales_offsets_to_the_padded_grid():
    predictor = Predictor(fake_bundle(fake_config(crop=(33, 49))), scales=(1.0, 0.5))
    pred = predictor(random_image(20, 30, seed=2))
    # At scale 0.5 the network sees 17x25; on 33x49 offsets (1, 2) become (1 * 32/16, 2 * 48/24).
    np.testing.assert_allclose(
        pred.offsets, np.broadcast_to([(1 + 2) / 2, (2 + 4) / 2], (20, 30, 2)), atol=1e-5
    )
    np.testing.assert_allclose(pred.semantic_probs.sum(-1), 1.0, atol=1e-5)


def test_multi_scale_scales_the_aspp_pool_window_and_restores_it():
    bundle = fake_bundle(fake_config(crop=(33, 49)), pool_size=(9, 17))
    PoolSpy.seen.clear()
    predictor = Predictor(bundle, scales=(1.0, 0.5, 2.0))
    predictor(random_image(20, 30, seed=3))
    assert set(PoolSpy.seen) == {(9, 17), (5, 9), (17, 33)}  # int((p - 1) * s + 1)
    spies = [layer for layer in bundle.model.layers if isinstance(layer, PoolSpy)]
    assert spies[0].pool_size == (9, 17)


def test_resize_rules_map_outputs_back_to_the_image():
    config = fake_config(crop=(33, 49), min_resize=33, max_resize=33)
    predictor = Predictor(fake_bundle(config))
    image = random_image(20, 30, seed=4)
    pred = predictor(image)
    # Short side to 33 (33x49), long side back to 33: floor(49 * 33/49)... = 22x33.
    assert pred.network_size == (22, 33) and pred.padded_size == (33, 49)
    assert pred.panoptic.shape == (20, 30) and pred.semantic_probs.shape == (
        20,
        30,
        SPEC.num_classes,
    )
    # Offsets (1, 2) on the 22x33 grid are (1 * 19/21, 2 * 29/32) image pixels.
    np.testing.assert_allclose(
        pred.offsets, np.broadcast_to([19 / 21, 2 * 29 / 32], (20, 30, 2)), atol=1e-5
    )
    # Where the image is flat, the label cannot be changed by resampling.
    flat = np.zeros((20, 30, 3), np.uint8)
    flat[:, :15] = SPEC.colors[2]
    flat[:, 15:] = SPEC.colors[6]
    sem = predictor(flat).semantic
    assert (sem[:, :14] == 2).all() and (sem[:, 16:] == 6).all()


def test_large_image_is_downscaled_with_a_notice(caplog):
    predictor = Predictor(fake_bundle(fake_config(crop=(33, 49))), max_side=40, pad_to="minimal")
    with caplog.at_level("WARNING"):
        pred = predictor(random_image(30, 80, seed=5))
    assert pred.network_size == (15, 40) and pred.image_size == (30, 80)
    assert pred.panoptic.shape == (30, 80)
    assert "downscaled to 15x40" in pred.notes[0] and "max_side=40" in caplog.text


def test_centers_and_segments_from_a_hand_made_heatmap():
    # 17x33 at OS16 needs no padding, so the only peak is the one drawn.
    predictor = Predictor(
        fake_bundle(fake_config(crop=(17, 33), center_threshold=0.5, stuff_area_limit=0)),
        pad_to="minimal",
    )
    image = np.zeros((17, 33, 3), np.uint8)
    image[:] = SPEC.colors[2]  # building (stuff): heat 70/255, under the threshold
    image[4:9, 8:14] = SPEC.colors[6]  # a car: R = 0
    image[5, 11] = (255, 0, 142)  # nearest colour: person; heat peak 1.0 at (5, 10)
    pred = predictor(image)
    np.testing.assert_array_equal(pred.center_points, [[5.0, 10.0]])
    np.testing.assert_allclose(pred.center_scores, [1.0])
    assert (pred.semantic == 6).sum() == 29 and pred.semantic[5, 11] == 5
    segments = {s.id: s for s in pred.segments}
    car_id = 6 * SPEC.label_divisor + 1
    # All 30 thing pixels join the one center; the majority vote makes the instance a car.
    assert sorted(segments) == [2 * SPEC.label_divisor, car_id]
    assert (
        segments[car_id].isthing and segments[car_id].area == 30 and segments[car_id].instance == 1
    )
    assert (
        not segments[2000].isthing
        and segments[2000].area == 17 * 33 - 30
        and segments[2000].score == 0.0
    )
    # AP score: mean car probability over the mask x the center score 1.0.
    probs = pred.semantic_probs[..., 6][pred.panoptic == car_id]
    assert segments[car_id].score == pytest.approx(float(probs.mean()), rel=1e-5)


def test_any_dtype_and_batches_agree(plain):
    image = random_image(20, 30, seed=6)
    base = plain(image)
    as_float = plain(image.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(base.panoptic, as_float.panoptic)
    batched = Predictor(plain.bundle, batch_size=2).predict(
        [image, random_image(20, 30, seed=7), image]
    )
    assert len(batched) == 3
    np.testing.assert_array_equal(batched[0].panoptic, base.panoptic)
    np.testing.assert_array_equal(batched[2].panoptic, base.panoptic)
    np.testing.assert_allclose(batched[0].semantic_probs, base.semantic_probs, atol=1e-6)
    stacked = plain.predict(np.stack([image, image]))
    assert len(stacked) == 2


def test_tiny_real_model_matches_post_processing_of_its_raw_outputs(tiny_bundle_dir):
    predictor = Predictor(tiny_bundle_dir)
    # synthetic/tiny pads to its 129x257 crop; an image of that size has no padding to remove.
    image = random_image(129, 257, seed=8)
    pred = predictor(image)
    again = post_process(
        pred.semantic_probs,
        pred.center_heatmap,
        pred.offsets,
        predictor.pipeline.postprocess,
        semantic_is_probability=True,
    )
    np.testing.assert_array_equal(pred.panoptic, again["panoptic"].numpy())
    n = int(again["num_centers"])
    assert n == len(pred.center_points) > 0
    np.testing.assert_allclose(pred.center_points, again["center_points"].numpy()[:n])
    scores = dict(
        zip(again["instance_ids"].numpy().tolist(), again["instance_scores"].numpy().tolist())
    )
    for segment in pred.segments:
        if segment.isthing and segment.id in scores:
            assert segment.score == pytest.approx(scores[segment.id], rel=1e-6)
    # A smaller image of the same model: outputs at its size.
    small = predictor(random_image(65, 97, seed=9), return_raw=False)
    assert small.panoptic.shape == (65, 97) and small.semantic_probs is None
