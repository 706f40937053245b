"""post_process: hand-made cases for each rule and random cases against the NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf

from panoptic_deeplab.postprocess import PostProcessOptions, post_process
from tests.core.postprocess.reference import post_process_reference

DIV, VOID = 1000, 255


def one_hot_logits(labels, num_classes=4):
    return np.eye(num_classes, dtype=np.float32)[labels] * 5.0


def run(labels, heat, offsets=None, num_classes=4, things=(2, 3), **kw):
    labels = np.asarray(labels)
    if offsets is None:
        offsets = np.zeros(labels.shape + (2,), np.float32)
    kw.setdefault("stuff_area_limit", 0)
    out = post_process(
        one_hot_logits(labels, num_classes),
        np.asarray(heat, np.float32),
        offsets,
        PostProcessOptions(thing_class_ids=things, label_divisor=DIV, void_label=VOID, **kw),
    )
    return {k: v.numpy() for k, v in out.items()}


def test_threshold_is_strict_and_nms_keeps_local_maxima():
    heat = np.zeros((9, 9), np.float32)
    heat[1, 1] = 0.1  # == threshold: dropped
    heat[4, 4] = 0.9
    heat[4, 6] = 0.8  # within the 3x3? no: 2 apart -> kept with kernel 3, suppressed with kernel 5
    heat[8, 8] = 0.5
    labels = np.full((9, 9), 2)
    out3 = run(labels, heat, nms_kernel=3, center_threshold=0.1)
    assert out3["center_points"].tolist() == [[4, 4], [4, 6], [8, 8]]
    np.testing.assert_allclose(out3["center_scores"], [0.9, 0.8, 0.5])
    out5 = run(labels, heat, nms_kernel=5, center_threshold=0.1)
    assert out5["center_points"].tolist() == [[4, 4], [8, 8]]


def test_nms_plateau_keeps_both_equal_neighbours():
    heat = np.zeros((5, 5), np.float32)
    heat[2, 1] = heat[2, 2] = 0.7
    out = run(np.full((5, 5), 2), heat, nms_kernel=3)
    assert out["center_points"].tolist() == [[2, 1], [2, 2]]


def test_top_k_keeps_highest_and_earlier_on_ties():
    heat = np.zeros((7, 7), np.float32)
    heat[0, 6], heat[3, 0], heat[6, 6], heat[6, 0] = 0.5, 0.9, 0.5, 0.3
    out = run(np.full((7, 7), 2), heat, nms_kernel=3, keep_k_centers=2)
    assert out["center_points"].tolist() == [[0, 6], [3, 0]]  # 0.9 and the first 0.5, row-major


def test_distance_tie_goes_to_first_center_and_offsets_move_votes():
    labels = np.full((1, 5), 2)
    heat = np.zeros((1, 5), np.float32)
    heat[0, 0] = heat[0, 4] = 1.0
    out = run(labels, heat, nms_kernel=3)
    assert out["instance_map"].tolist() == [[1, 1, 1, 2, 2]]  # x=2 is equidistant -> center 1
    offsets = np.zeros((1, 5, 2), np.float32)
    offsets[0, 1, 1] = 3.0  # pixel 1 points at x=4
    out = run(labels, heat, offsets, nms_kernel=3)
    assert out["instance_map"].tolist() == [[1, 2, 1, 2, 2]]


def test_majority_vote_ties_to_smaller_label_and_per_class_numbering():
    labels = np.array([[2, 3, 3, 2, 2, 0], [2, 3, 0, 2, 2, 0]])
    heat = np.zeros((2, 6), np.float32)
    heat[0, 0] = heat[0, 3] = 1.0
    offsets = np.zeros((2, 6, 2), np.float32)
    offsets[:, :3, 1] = -np.arange(3)  # columns 0-2 point at the first center
    offsets[:, 3:, 1] = 3 - np.arange(3, 6)
    out = run(labels, heat, offsets, nms_kernel=3)
    # Instance 1: labels 2,2,3,3,3 at cols 0-2 -> 2 votes class 2 vs 3 votes class 3 -> class 3.
    # Instance 2: all class 2 -> class 2, id 1.  Stuff (class 0) keeps instance 0.
    assert out["panoptic"].tolist() == [
        [3001, 3001, 3001, 2001, 2001, 0],
        [3001, 3001, 0, 2001, 2001, 0],
    ]
    labels_tie = np.array([[2, 3, 0, 2, 2, 0], [3, 2, 0, 2, 2, 0]])  # 2 vs 2 -> smaller label 2
    out = run(labels_tie, heat, offsets, nms_kernel=3)
    assert out["panoptic"][:, :2].tolist() == [[2001, 2001], [2001, 2001]]
    assert out["panoptic"][:, 3:5].tolist() == [[2002, 2002], [2002, 2002]]
    assert out["instance_ids"].tolist() == [2001, 2002]


def test_stuff_area_limit_is_inclusive_and_zero_disables():
    labels = np.zeros((4, 4), int)
    labels[0, :3] = 1  # class 1 has area 3
    out = run(labels, np.zeros((4, 4)), stuff_area_limit=3)
    assert (out["panoptic"][0, :3] == VOID * DIV).all() and (out["panoptic"][1:] == 0).all()
    out = run(labels, np.zeros((4, 4)), stuff_area_limit=2)
    assert (out["panoptic"][0, :3] == 1 * DIV).all()
    out = run(labels, np.zeros((4, 4)), stuff_area_limit=0)
    assert (out["panoptic"][0, :3] == 1 * DIV).all()


def test_no_center_makes_one_instance_of_the_majority_thing_class():
    labels = np.array([[2, 2, 3], [0, 3, 3], [0, 0, 3]])
    out = run(labels, np.zeros((3, 3)), nms_kernel=3)
    assert out["num_centers"] == 0 and out["center_points"].shape == (0, 2)
    expected = np.where(np.isin(labels, [2, 3]), 3 * DIV + 1, 0)
    assert out["panoptic"].tolist() == expected.tolist()


def test_crowd_like_region_with_one_center_is_one_instance():
    labels = np.full((6, 8), 2)  # a dense group of people, no per-person offsets
    heat = np.zeros((6, 8), np.float32)
    heat[3, 4] = 0.6
    out = run(labels, heat, nms_kernel=7)
    assert set(np.unique(out["panoptic"])) == {2001}
    np.testing.assert_allclose(
        out["instance_scores"], [0.6 * (np.exp(5) / (np.exp(5) + 3))], rtol=1e-5
    )


def test_scores_follow_deeplab2_combined_instance_scores():
    # deeplab2-style 5x5 case: threshold 0, kernel 3, keep 2, zero offsets.
    heat = np.zeros((5, 5), np.float32)
    heat[1, 1], heat[3, 3], heat[0, 4] = 1.0, 0.7, 0.3
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(5, 5, 4)).astype(np.float32)
    logits[..., 2] += 10
    out = post_process(
        logits,
        heat[..., None],
        np.zeros((5, 5, 2), np.float32),
        PostProcessOptions(
            thing_class_ids=[2],
            label_divisor=DIV,
            void_label=VOID,
            center_threshold=0.0,
            nms_kernel=3,
            keep_k_centers=2,
            stuff_area_limit=0,
        ),
    )
    inst = out["instance_map"].numpy()
    assert out["center_points"].numpy().tolist() == [[1, 1], [3, 3]]
    probs = tf.nn.softmax(logits).numpy()[..., 2]
    for k, center_score in enumerate([1.0, 0.7]):
        expected = probs[inst == k + 1].mean() * center_score
        np.testing.assert_allclose(out["instance_scores"].numpy()[k], expected, rtol=1e-5)


@pytest.mark.parametrize("seed", range(6))
def test_random_cases_match_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    h, w, c = rng.integers(9, 24), rng.integers(9, 24), 6
    logits = rng.normal(size=(h, w, c)).astype(np.float32)
    heat = (rng.integers(0, 8, size=(h, w)) / 7).astype(np.float32)  # coarse values -> ties
    if seed % 2:
        offsets = rng.integers(-5, 6, size=(h, w, 2)).astype(np.float32)  # integer -> distance ties
    else:
        offsets = rng.normal(scale=4, size=(h, w, 2)).astype(np.float32)
    kw = dict(
        thing_class_ids=[1, 3, 4],
        label_divisor=256,
        void_label=0,
        center_threshold=0.2,
        nms_kernel=int(rng.choice([1, 3, 5])),
        keep_k_centers=int(rng.integers(1, 8)),
        stuff_area_limit=int(rng.integers(0, 60)),
    )
    got = {
        k: v.numpy()
        for k, v in post_process(logits, heat, offsets, PostProcessOptions(**kw)).items()
    }
    ref = post_process_reference(logits, heat, offsets, **kw)
    for key in ("panoptic", "semantic", "instance_map", "center_points", "instance_ids"):
        np.testing.assert_array_equal(got[key], ref[key], err_msg=key)
    np.testing.assert_allclose(got["center_scores"], ref["center_scores"], rtol=1e-6)
    np.testing.assert_allclose(got["instance_scores"], ref["instance_scores"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("keep_k", [12, 30, 60, 100])
def test_many_centers_match_numpy_reference_with_every_grouping_kernel(keep_k):
    """Many centers on a small image: most tiles have them all as candidates (the brute force)."""
    rng = np.random.default_rng(keep_k)
    h, w, c = 37, 41, 5
    logits = rng.normal(size=(h, w, c)).astype(np.float32)
    heat = rng.random((h, w)).astype(np.float32)
    offsets = rng.integers(-9, 10, size=(h, w, 2)).astype(np.float32)  # integer: distance ties
    kw = dict(
        thing_class_ids=[1, 2, 3],
        label_divisor=256,
        void_label=0,
        center_threshold=0.05,
        nms_kernel=1,
        keep_k_centers=keep_k,
        stuff_area_limit=5,
    )
    got = {
        k: v.numpy()
        for k, v in post_process(logits, heat, offsets, PostProcessOptions(**kw)).items()
    }
    assert int(got["num_centers"]) == keep_k
    ref = post_process_reference(logits, heat, offsets, **kw)
    for key in ("panoptic", "instance_map", "center_points", "instance_ids"):
        np.testing.assert_array_equal(got[key], ref[key], err_msg=key)
    np.testing.assert_allclose(got["instance_scores"], ref["instance_scores"], rtol=1e-5, atol=1e-7)


def _voronoi_scene(h, w, n, noise, seed):
    """``n`` peaks; each thing pixel points at its nearest peak (plus noise), as a trained model's
    offsets do: the tiled grouping then compares each tile with a few candidates only."""
    rng = np.random.default_rng(seed)
    cy, cx = rng.integers(0, h, n), rng.integers(0, w, n)
    heat = np.zeros((h, w), np.float32)
    heat[cy, cx] = rng.uniform(0.5, 1, n)
    yy, xx = np.mgrid[0:h, 0:w]
    own = ((yy[..., None] - cy) ** 2 + (xx[..., None] - cx) ** 2).argmin(-1)
    offsets = np.stack([cy[own] - yy, cx[own] - xx], -1).astype(np.float32)
    offsets += rng.normal(scale=noise, size=offsets.shape).astype(np.float32)
    logits = rng.normal(size=(h, w, 4)).astype(np.float32)
    logits[..., 1] += np.where(rng.random((h, w)) < 0.7, 4.0, -4.0)  # 70 % things of class 1
    return logits, heat, offsets


@pytest.mark.parametrize(
    ("centers", "candidates"), [(6, 8), (12, 16), (25, 32), (40, 64), (100, 0)]
)
def test_tiled_grouping_matches_the_reference_with_every_candidate_kernel(centers, candidates):
    """Each compiled candidate count (8, 16, 32, 64) and the brute force past 64 (0 here) give the
    nearest center exactly (first on ties), as the NumPy reference's all-centers search."""
    from panoptic_deeplab import postprocess as pp

    logits, heat, offsets = _voronoi_scene(96, 128, centers, noise=1.0, seed=centers)
    kw = dict(
        thing_class_ids=[1],
        label_divisor=256,
        void_label=0,
        center_threshold=0.1,
        nms_kernel=1,
        keep_k_centers=200,
        stuff_area_limit=0,
    )
    got = post_process(logits, heat, offsets, PostProcessOptions(**kw))
    n = int(got["num_centers"])
    points = tf.cast(got["center_points"], tf.float32)
    padded = tf.pad(
        points, [[0, int(pp._next_power_of_two(max(n, 8))) - n], [0, 0]], constant_values=1e15
    )
    thing_mask = tf.constant(np.argmax(logits, -1) == 1)
    _, most = pp._tile_candidates(tf.constant(offsets), thing_mask, padded)
    used = next((k for k in pp._CANDIDATE_SIZES if int(most) <= k), 0)
    assert used == candidates, f"{int(most)} candidates use the {used or 'brute force'} path"
    ref = post_process_reference(logits, heat, offsets, **kw)
    for key in ("panoptic", "instance_map", "center_points", "instance_ids"):
        np.testing.assert_array_equal(got[key].numpy(), ref[key], err_msg=key)


def test_grouping_with_nan_or_huge_offsets_stays_in_range():
    """Broken offsets (NaN, 1e30) never give a pixel an instance id past the centers found."""
    logits, heat, offsets = _voronoi_scene(40, 48, 5, noise=1.0, seed=1)
    offsets[:10] = np.nan
    offsets[10:20] = 1e30
    offsets[20:25] = -1e30
    options = PostProcessOptions(thing_class_ids=[1], label_divisor=256, void_label=0)
    out = post_process(logits, heat, offsets, options)
    n = int(out["num_centers"])
    assert (
        n == 5 and 0 <= out["instance_map"].numpy().min() <= out["instance_map"].numpy().max() <= n
    )


def test_batched_equals_single_and_without_xla():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(2, 11, 13, 5)).astype(np.float32)
    heat = rng.random((2, 11, 13, 1)).astype(np.float32)
    offsets = rng.normal(size=(2, 11, 13, 2)).astype(np.float32)
    kw = dict(
        thing_class_ids=[2, 3],
        label_divisor=DIV,
        void_label=VOID,
        nms_kernel=3,
        keep_k_centers=5,
        stuff_area_limit=10,
    )
    batch = post_process(logits, heat, offsets, PostProcessOptions(**kw))
    for b in range(2):
        single = post_process(logits[b], heat[b], offsets[b], PostProcessOptions(**kw))
        no_xla = post_process(logits[b], heat[b], offsets[b], PostProcessOptions(**kw), xla=False)
        n = int(batch["num_centers"][b])
        for key, value in single.items():
            got = batch[key][b]
            if key in (
                "center_points",
                "center_scores",
                "instance_ids",
                "instance_classes",
                "instance_areas",
                "instance_scores",
            ):
                got = got[:n]
            np.testing.assert_allclose(got.numpy(), value.numpy(), rtol=1e-6, err_msg=key)
            np.testing.assert_allclose(no_xla[key].numpy(), value.numpy(), rtol=1e-6, err_msg=key)


def test_runs_inside_tf_function_and_saved_model(tmp_path):
    options = PostProcessOptions(
        thing_class_ids=[2, 3], label_divisor=DIV, void_label=VOID, nms_kernel=3, stuff_area_limit=4
    )

    class Fuse(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None, 4]),
                tf.TensorSpec([None, None]),
                tf.TensorSpec([None, None, 2]),
            ]
        )
        def __call__(self, s, c, o):
            return post_process(s, c, o, options)["panoptic"]

    rng = np.random.default_rng(1)
    s = rng.normal(size=(9, 12, 4)).astype(np.float32)
    c = rng.random((9, 12)).astype(np.float32)
    o = rng.normal(size=(9, 12, 2)).astype(np.float32)
    tf.saved_model.save(Fuse(), str(tmp_path / "fuse"))
    loaded = tf.saved_model.load(str(tmp_path / "fuse"))
    expected = post_process(s, c, o, options)["panoptic"]
    np.testing.assert_array_equal(loaded(s, c, o).numpy(), expected.numpy())


def test_tuning_threshold_area_limit_and_k_reuses_the_traced_graph():
    """The app's knobs re-run only the post-processing: a new value must not trace a new graph."""
    from panoptic_deeplab import postprocess

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=(24, 32))
    heat = rng.random((24, 32)).astype(np.float32)
    zeros = np.zeros((24, 32, 2), np.float32)
    centers, traces = set(), None
    for thr, area, k in [(0.1, 0, 200), (0.5, 30, 200), (0.7, 100, 5), (0.3, 0, 1)]:
        out = run(labels, heat, center_threshold=thr, stuff_area_limit=area, keep_k_centers=k)
        expected = post_process_reference(
            one_hot_logits(labels),
            heat,
            zeros,
            thing_class_ids=(2, 3),
            label_divisor=DIV,
            void_label=VOID,
            center_threshold=thr,
            nms_kernel=7,
            keep_k_centers=k,
            stuff_area_limit=area,
        )
        np.testing.assert_array_equal(out["panoptic"], expected["panoptic"])
        centers.add(int(out["num_centers"]))
        counts = {
            key: fn.experimental_get_tracing_count() for key, fn in postprocess._COMPILED.items()
        }
        assert traces is None or counts == traces  # no new function, no new trace
        traces = counts
    assert len(centers) > 1  # the values really changed the result


def test_bad_options_and_shapes_are_reported():
    with pytest.raises(ValueError, match="nms_kernel"):
        PostProcessOptions(thing_class_ids=[1], label_divisor=DIV, void_label=VOID, nms_kernel=4)
    with pytest.raises(ValueError, match="shapes"):
        post_process(
            np.zeros((3, 3, 2)),
            np.zeros((3,)),
            np.zeros((3, 3, 2)),
            PostProcessOptions(thing_class_ids=[1], label_divisor=DIV, void_label=VOID),
        )
    with pytest.raises(TypeError, match="PostProcessOptions"):
        post_process(
            np.zeros((3, 3, 2)), np.zeros((3, 3)), np.zeros((3, 3, 2)), {"thing_class_ids": [1]}
        )


@pytest.mark.slow
def test_cityscapes_size_with_400_centers_runs_in_bounded_memory():
    h, w = 1025, 2049
    heat = np.zeros((h, w), np.float32)
    heat[5::50, 5::100] = 0.9  # 21 x 21 = 441 peaks -> 400 kept
    labels = np.full((h, w), 2)
    out = run(labels, heat, things=(2,), keep_k_centers=400)
    assert int(out["num_centers"]) == 400
    assert len(np.unique(out["panoptic"])) == 400


def test_padded_sizes_are_the_exact_next_power_of_two():
    """Padding sizes (center count, panoptic table) round up to a power of two, never past one."""
    from panoptic_deeplab.postprocess import _next_power_of_two

    x = tf.range(1, 70_000)
    want = [1 << (int(v) - 1).bit_length() for v in x.numpy()]
    assert _next_power_of_two(x).numpy().tolist() == want


def test_options_come_from_the_config_and_spec_with_explicit_overrides():
    from panoptic_deeplab.config import load_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec

    config, spec = load_config("cityscapes/mobilenet_v3_large_os16"), get_dataset_spec("cityscapes")
    options = PostProcessOptions.from_config(config, spec, keep_k_centers=50, center_threshold=None)
    assert (
        options.thing_class_ids == tuple(spec.thing_class_ids)
        and options.void_label == spec.ignore_label
    )
    assert (
        options.label_divisor == spec.label_divisor
        and options.nms_kernel == config.postprocess.nms_kernel
    )
    assert (
        options.keep_k_centers == 50
        and options.center_threshold == config.postprocess.center_threshold
    )
    assert (
        options.replace(nms_kernel=3).nms_kernel == 3
        and options.nms_kernel == config.postprocess.nms_kernel
    )
    with pytest.raises(TypeError, match="nms_kernal"):
        PostProcessOptions.from_config(config, spec, nms_kernal=3)
