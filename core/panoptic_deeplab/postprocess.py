"""Panoptic-DeepLab post-processing in pure TensorFlow (docs/method.md §4).

One implementation for training-time evaluation, the Predictor, the CLI, the app and the exported
SavedModel: only core TF ops, so it runs eagerly, inside ``tf.function``, in a SavedModel and on
GPU. Its control flow is written as TF ops, so it is traced without AutoGraph (``autograph=False``:
converting the code cost 2-3 CPU-s of a cold ``pdl predict``).

Semantics (deeplab2's C++ ``MergeSemanticAndInstanceMaps`` op):

1. semantic = argmax over classes (of the logits, or of the probabilities when
   ``semantic_is_probability``; softmax is monotone, so both give the same label).
2. center heatmap values ``<= center_threshold`` become 0 (strictly greater survives).
3. NMS: zero-padded max-pool (kernel ``nms_kernel``, stride 1); a pixel is a center when it equals
   the pooled value and is > 0.
4. top-k: when more than ``keep_k_centers`` survive, the k highest are kept (equal scores: the one
   first in row-major order wins). Kept centers are listed in row-major (y, x) order.
5. grouping: every thing pixel p goes to the center nearest (L2, float32) to ``p + offset(p)``;
   ties go to the first center in that order. Raw instance id = center index + 1.
6. merge: each instance takes the most frequent thing label among its pixels (ties: smaller
   label); ids are renumbered per class from 1 in increasing center index (the C++ op numbers in
   hash-map order, which is unspecified). Stuff pixels keep their label with instance 0; a stuff
   class whose total area in the image is ``<= stuff_area_limit`` becomes void
   (``void_label * label_divisor``); a limit of 0 disables this.
   **No center survives:** as in the C++ op, all thing pixels of the image then form one instance
   (raw id 0) that takes the majority thing label, giving panoptic id ``label * divisor + 1``.
   It is not listed among the per-center outputs and its AP score is 0 (no center score).
7. instance score (for AP, deeplab2 ``combined_instance_scores``): mean over the final mask of the
   softmax probability of the instance's class x the score of its center peak.

Memory: distances are computed only for thing pixels, in chunks of at most
``_DISTANCE_BUDGET`` floats, so 1025x2049 with 400 centers never builds an N x H x W tensor.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

# Largest number of (pixel, center) distances held at once (64 MiB of float32).
_DISTANCE_BUDGET = 1 << 24


@dataclass(frozen=True)
class PostProcessOptions:
    """Every setting of :func:`post_process`, as one value: the only way to call it.

    Build it with :meth:`from_config` (a bundle's or a training config plus its data-set spec, with
    explicit overrides), so inference, periodic evaluation, the app's knobs, export and the
    benchmarks all fuse with the same settings. ``void_label`` is a class id (the spec's
    ``ignore_label``); post-processing writes ``void_label * label_divisor``.
    """

    thing_class_ids: tuple[int, ...]
    label_divisor: int
    void_label: int
    center_threshold: float = 0.1
    nms_kernel: int = 7
    keep_k_centers: int = 200
    stuff_area_limit: int = 2048

    TUNABLE = ("center_threshold", "nms_kernel", "keep_k_centers", "stuff_area_limit")

    def __post_init__(self):
        typed = dict(
            thing_class_ids=tuple(sorted({int(t) for t in self.thing_class_ids})),
            label_divisor=int(self.label_divisor),
            void_label=int(self.void_label),
            center_threshold=float(self.center_threshold),
            nms_kernel=int(self.nms_kernel),
            keep_k_centers=int(self.keep_k_centers),
            stuff_area_limit=int(self.stuff_area_limit),
        )
        for name, value in typed.items():
            object.__setattr__(self, name, value)
        if self.nms_kernel < 1 or self.nms_kernel % 2 == 0:
            raise ValueError(f"nms_kernel must be a positive odd number, got {self.nms_kernel}")
        if self.keep_k_centers < 1:
            raise ValueError(f"keep_k_centers must be >= 1, got {self.keep_k_centers}")
        if self.label_divisor < 1:
            raise ValueError(f"label_divisor must be >= 1, got {self.label_divisor}")
        if self.stuff_area_limit < 0:
            raise ValueError(f"stuff_area_limit must be >= 0, got {self.stuff_area_limit}")
        if self.void_label < 0:
            raise ValueError(
                "void_label must be a class id >= 0 (the spec's ignore_label), "
                f"got {self.void_label}"
            )

    @classmethod
    def from_config(cls, config, spec, **overrides) -> PostProcessOptions:
        """The config's ``postprocess`` section and the spec's classes; ``overrides`` (any of
        ``TUNABLE``; None means "keep the config's value") win."""
        unknown = set(overrides) - set(cls.TUNABLE)
        if unknown:
            raise TypeError(
                f"unknown post-processing options: {sorted(unknown)} "
                f"(known: {', '.join(cls.TUNABLE)})"
            )
        values = {k: getattr(config.postprocess, k) for k in cls.TUNABLE}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(
            thing_class_ids=tuple(spec.thing_class_ids),
            label_divisor=spec.label_divisor,
            void_label=spec.ignore_label,
            **values,
        )

    def replace(self, **changes) -> PostProcessOptions:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _window_max(x: tf.Tensor, kernel: int, axis: int) -> tf.Tensor:
    """Max over a centred window of ``kernel`` along ``axis`` with zero padding (x >= 0)."""
    r = kernel // 2
    pad = [[0, 0], [0, 0]]
    pad[axis] = [r, r]
    padded = tf.pad(x, pad)
    n = tf.shape(x)[axis]
    out = x
    for s in range(kernel):
        out = tf.maximum(out, padded[s : s + n] if axis == 0 else padded[:, s : s + n])
    return out


def _dense_maps(semantic, heatmap, is_thing_class, center_threshold, nms_kernel):
    """Per-pixel work: labels, thing mask and the NMS'd heatmap (0 except at center peaks).

    The k x k max-pool is done as k shifted maxima per axis: exact, and unlike TF's CPU MaxPool
    kernel (seconds at 1025x2049) it fuses under XLA. The padding is zero as in deeplab2.
    """
    labels = tf.argmax(semantic, axis=-1, output_type=tf.int32)
    thing_mask = tf.gather(is_thing_class, labels)
    heat = tf.where(heatmap > center_threshold, heatmap, tf.zeros_like(heatmap))
    pooled = _window_max(_window_max(heat, nms_kernel, 0), nms_kernel, 1)
    peaks = tf.where(tf.logical_and(tf.equal(heat, pooled), heat > 0), heat, tf.zeros_like(heat))
    return labels, thing_mask, peaks


_DENSE: dict[tuple, Any] = {}


def _dense_fn(nms_kernel: int, xla: bool):
    """The compiled per-pixel step; the threshold is an argument, so a new value does not
    recompile."""
    key = (nms_kernel, xla)
    if key not in _DENSE:
        _DENSE[key] = tf.function(
            lambda s, h, t, threshold: _dense_maps(s, h, t, threshold, nms_kernel),
            jit_compile=xla,
            reduce_retracing=True,
            autograph=False,
        )
    return _DENSE[key]


def _select_centers(peaks: tf.Tensor, keep_k_centers: int):
    """Centers from the NMS'd heatmap: ``(points [N, 2] int32 (y, x) row-major, scores [N])``."""
    points = tf.cast(tf.where(peaks > 0), tf.int32)
    scores = tf.gather_nd(peaks, points)
    k = tf.minimum(tf.shape(scores)[0], keep_k_centers)
    # top_k puts equal values in index order, so boundary ties keep the earlier (row-major) peak.
    _, top = tf.math.top_k(scores, k=k, sorted=True)
    top = tf.sort(top)  # back to row-major order
    return tf.gather(points, top), tf.gather(scores, top)


def _next_power_of_two(x: tf.Tensor) -> tf.Tensor:
    """Smallest power of two >= ``x`` (int32 scalar > 0): padded sizes keep XLA's compiled shapes
    few."""
    v = tf.cast(x, tf.int32) - 1  # smear the highest set bit of x - 1 into every lower bit, add 1
    for shift in (1, 2, 4, 8, 16):  # (exact, unlike a float log2 that can round a power of two up)
        v = tf.bitwise.bitwise_or(v, tf.bitwise.right_shift(v, shift))
    return v + 1


def _nearest_center(locations: tf.Tensor, centers: tf.Tensor) -> tf.Tensor:
    """Index of the nearest center (first on ties) for each of ``locations [M, 2]`` (float32), by
    brute force in blocks of at most ``_DISTANCE_BUDGET`` distances: the path without XLA."""
    m = tf.shape(locations)[0]
    n = tf.shape(centers)[0]
    chunk = tf.maximum(_DISTANCE_BUDGET // tf.maximum(n, 1), 1)
    num_chunks = tf.maximum((m + chunk - 1) // chunk, 1)
    size = (m + num_chunks - 1) // num_chunks
    padded = tf.pad(locations, [[0, size * num_chunks - m], [0, 0]])
    cy, cx = centers[tf.newaxis, :, 0], centers[tf.newaxis, :, 1]

    def block(loc):
        dy = loc[:, 0:1] - cy
        dx = loc[:, 1:2] - cx
        return tf.argmin(dy * dy + dx * dx, axis=1, output_type=tf.int32)

    parts = tf.map_fn(
        block,
        tf.reshape(padded, [num_chunks, size, 2]),
        fn_output_signature=tf.int32,
        parallel_iterations=1,
    )
    return tf.reshape(parts, [-1])[:m]


# Grouping with XLA, by tiles of the image: a tile's thing pixels point at locations inside one
# bounding box, and only centers that can be nearest to some point of that box ("candidates") are
# compared, so the work is pixels x candidates (a handful) instead of pixels x centers (up to 200).
_TILE = 32
# Candidate counts (padded up) with a compiled kernel; a tile with more falls back to brute force.
_CANDIDATE_SIZES = (8, 16, 32, 64)


def _tiled(x: tf.Tensor, fill) -> tf.Tensor:
    """``[H, W]`` -> ``[H/T, T, W/T, T]`` (padded with ``fill``): tiles without a transpose."""
    height, width = tf.shape(x)[0], tf.shape(x)[1]
    ty, tx = (height + _TILE - 1) // _TILE, (width + _TILE - 1) // _TILE
    padded = tf.pad(x, [[0, ty * _TILE - height], [0, tx * _TILE - width]], constant_values=fill)
    return tf.reshape(padded, [ty, _TILE, tx, _TILE])


def _tiled_locations(offsets, thing_mask):
    """Where each pixel points, tiled: ``p + offset(p)`` (as deeplab2: float32 pixel + offset)."""
    height, width = tf.shape(offsets)[0], tf.shape(offsets)[1]
    y = tf.cast(tf.range(height)[:, tf.newaxis], tf.float32) + offsets[..., 0]
    x = tf.cast(tf.range(width)[tf.newaxis, :], tf.float32) + offsets[..., 1]
    return _tiled(y, 0.0), _tiled(x, 0.0), _tiled(thing_mask, False)


@tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
def _tile_candidates(offsets, thing_mask, centers):
    """``rank [ty, tx, N]``: the position of center c among tile t's candidates (in center order),
    -1 if it is none; and the largest candidate count of any tile.

    Center c can be nearest to a point of the tile's box B only if its least distance to B is at
    most the smallest greatest distance of any center to B; the others are left out. The margin
    (1e-4 relative, 1 px^2) is far above float32 rounding, so nothing that could win is left out.
    """
    y, x, things = _tiled_locations(offsets, thing_mask)
    big = tf.float32.max

    def box(values, reduce, empty):
        return reduce(tf.where(things, values, empty), axis=[1, 3])[..., tf.newaxis]  # [ty, tx, 1]

    y0, y1 = box(y, tf.reduce_min, big), box(y, tf.reduce_max, -big)
    x0, x1 = box(x, tf.reduce_min, big), box(x, tf.reduce_max, -big)
    cy, cx = centers[tf.newaxis, tf.newaxis, :, 0], centers[tf.newaxis, tf.newaxis, :, 1]
    dy_near = tf.maximum(tf.maximum(y0 - cy, cy - y1), 0.0)
    dx_near = tf.maximum(tf.maximum(x0 - cx, cx - x1), 0.0)
    dy_far = tf.maximum(tf.abs(cy - y0), tf.abs(cy - y1))
    dx_far = tf.maximum(tf.abs(cx - x0), tf.abs(cx - x1))
    bound = tf.reduce_min(dy_far * dy_far + dx_far * dx_far, axis=-1, keepdims=True)
    candidate = dy_near * dy_near + dx_near * dx_near <= bound * 1.0001 + 1.0
    candidate = tf.logical_and(candidate, tf.reduce_any(things, axis=[1, 3])[..., tf.newaxis])
    rank = tf.cumsum(tf.cast(candidate, tf.int32), axis=-1) - 1
    return tf.where(candidate, rank, -1), tf.reduce_max(rank) + 1


_TILE_KERNELS: dict[int, Any] = {}


def _nearest_in_tiles_fn(k: int):
    """XLA kernel: raw instance id (nearest center + 1, first on ties; 0 off things) per pixel,
    comparing each tile's pixels with its (at most ``k``) candidates only. The loop over candidates
    is unrolled, keeping the running minimum in registers. Compiled once per ``k``."""
    if k not in _TILE_KERNELS:

        def kernel(offsets, thing_mask, centers, rank, count):
            n = tf.shape(centers)[0]
            y, x, things = _tiled_locations(offsets, thing_mask)
            slots = tf.equal(rank[..., tf.newaxis, :], tf.range(k)[:, tf.newaxis])  # [ty,tx,k,N]
            # The j-th candidate of each tile, in center order. An unused slot takes the last
            # (padding) center: one that is not a candidate is never strictly nearer than the
            # tile's candidates, so it changes nothing.
            index = tf.reduce_sum(tf.where(slots, tf.range(n), 0), axis=-1)
            index = tf.where(tf.reduce_any(slots, axis=-1), index, n - 1)[:, tf.newaxis]
            cy, cx = tf.gather(centers[:, 0], index), tf.gather(centers[:, 1], index)
            best = tf.fill(tf.shape(y), tf.float32.max)
            nearest = tf.zeros(tf.shape(y), tf.int32)
            for j in range(k):
                dy, dx = y - cy[..., j : j + 1], x - cx[..., j : j + 1]
                distance = dy * dy + dx * dx
                closer = distance < best  # strict: equal distances keep the earlier center
                best = tf.where(closer, distance, best)
                nearest = tf.where(closer, index[..., j : j + 1], nearest)
            ty, tx = tf.shape(y)[0], tf.shape(y)[2]
            nearest = tf.minimum(nearest, count - 1)  # a padding center never wins (even with NaN)
            raw = tf.reshape(tf.where(things, nearest + 1, 0), [ty * _TILE, tx * _TILE])
            return raw[: tf.shape(offsets)[0], : tf.shape(offsets)[1]]

        _TILE_KERNELS[k] = tf.function(
            kernel, jit_compile=True, reduce_retracing=True, autograph=False
        )
    return _TILE_KERNELS[k]


def _instance_map_xla(offsets, thing_mask, points):
    """Raw instance ids ``[H, W]`` (0 off things) with the tiled XLA kernels. Centers are padded
    to a power of two (>= 8) with far-away ones, so a new center count rarely means a compile."""
    count = tf.shape(points)[0]
    padded = tf.pad(
        points,
        [[0, _next_power_of_two(tf.maximum(count, 8)) - count], [0, 0]],
        constant_values=1e15,
    )
    rank, most = _tile_candidates(offsets, thing_mask, padded)
    kernels = [
        lambda k=k: _nearest_in_tiles_fn(k)(offsets, thing_mask, padded, rank, count)
        for k in _CANDIDATE_SIZES
    ]

    def brute_force():
        width = tf.shape(offsets)[1]
        thing_index = tf.cast(tf.where(tf.reshape(thing_mask, [-1]))[:, 0], tf.int32)
        coords = tf.stack([thing_index // width, thing_index % width], axis=1)
        locations = tf.cast(coords, tf.float32) + tf.gather(
            tf.reshape(offsets, [-1, 2]), thing_index
        )
        raw = _nearest_center(locations, points) + 1
        size = tf.shape(offsets)[0] * width
        return tf.reshape(
            tf.math.unsorted_segment_sum(raw, thing_index, size), tf.shape(thing_mask)
        )

    branch = tf.reduce_sum(tf.cast(most > tf.constant(_CANDIDATE_SIZES), tf.int32))
    return tf.switch_case(branch, [*kernels, brute_force])


def _post_process_single(
    semantic,
    heatmap,
    offsets,
    *,
    thing_class_ids,
    label_divisor,
    void_label,
    center_threshold,
    nms_kernel,
    keep_k_centers,
    stuff_area_limit,
    semantic_is_probability,
    xla,
):
    """One image; per-center outputs are padded to ``keep_k_centers`` (see ``num_centers``)."""
    semantic = tf.cast(semantic, tf.float32)
    heatmap = tf.cast(heatmap, tf.float32)
    offsets = tf.cast(offsets, tf.float32)
    num_classes = tf.shape(semantic)[-1]
    height, width = tf.shape(semantic)[0], tf.shape(semantic)[1]

    thing_ids = tf.constant(list(thing_class_ids), tf.int32, shape=[len(thing_class_ids)])
    class_range = tf.range(num_classes, dtype=tf.int32)
    is_thing_class = tf.reduce_any(
        tf.equal(class_range[:, tf.newaxis], thing_ids[tf.newaxis, :]), axis=1
    )

    threshold = tf.cast(center_threshold, tf.float32)
    labels, thing_mask, peaks = _dense_fn(nms_kernel, xla)(
        semantic, heatmap, is_thing_class, threshold
    )
    points, scores = _select_centers(peaks, keep_k_centers)
    n = tf.shape(points)[0]

    # Grouping: with XLA per tile of the image (see _instance_map_xla); without, per thing pixel.
    # Flat indices: a 1-D where/gather/scatter costs about half of the 2-D forms.
    thing_index = tf.cast(tf.where(tf.reshape(thing_mask, [-1]))[:, 0], tf.int32)  # row-major
    points_f = tf.cast(points, tf.float32)
    if xla:
        instance_map = tf.cond(
            n > 0,
            lambda: _instance_map_xla(offsets, thing_mask, points_f),
            lambda: tf.zeros_like(labels),
        )
    else:
        thing_coords = tf.stack([thing_index // width, thing_index % width], axis=1)
        locations = tf.cast(thing_coords, tf.float32) + tf.gather(
            tf.reshape(offsets, [-1, 2]), thing_index
        )
        raw_id = tf.cond(
            n > 0,
            lambda: _nearest_center(locations, points_f) + 1,
            lambda: tf.zeros_like(thing_index),
        )  # [M], 0 only when there is no center
        # Each pixel index occurs once, so a segment sum is a scatter; TF's CPU kernel for it is
        # ~3x faster than scatter_nd's.
        instance_map = tf.reshape(
            tf.math.unsorted_segment_sum(raw_id, thing_index, height * width), [height, width]
        )

    # One count of (raw instance, label) over all pixels: rows 0..n are the instances (majority
    # vote, ties to the smaller label: argmax takes the first), row n + 1 the stuff pixels; the
    # column sums are the per-class areas.
    vote_key = tf.where(thing_mask, instance_map, n + 1) * num_classes + labels
    counts = tf.math.bincount(
        tf.reshape(vote_key, [-1]),
        minlength=(n + 2) * num_classes,
        maxlength=(n + 2) * num_classes,
        dtype=tf.int32,
    )
    counts = tf.reshape(counts, [n + 2, num_classes])
    class_area = tf.reduce_sum(counts, axis=0)
    counts = counts[: n + 1]
    area = tf.reduce_sum(counts, axis=1)
    vote = tf.argmax(counts, axis=1, output_type=tf.int32)
    present = area > 0
    # Per-class renumbering from 1, in raw-id order.
    seen = tf.cumsum(
        tf.one_hot(vote, num_classes, dtype=tf.int32) * tf.cast(present, tf.int32)[:, tf.newaxis],
        axis=0,
    )
    new_id = tf.where(present, tf.gather(seen, vote, batch_dims=1), 0)
    instance_panoptic = tf.where(present, vote * label_divisor + new_id, 0)

    # Stuff: whole-image area per class; <= limit becomes void (a limit of 0 disables it).
    area_limit = tf.cast(stuff_area_limit, tf.int32)
    small = tf.logical_and(class_area <= area_limit, area_limit > 0)
    stuff_value = tf.where(small, void_label * label_divisor, class_range * label_divisor)
    # One lookup for every pixel: stuff pixels index the per-class table, thing pixels the
    # per-instance table placed after it.
    table = tf.concat([stuff_value, instance_panoptic], axis=0)
    if xla:  # padded to a power of two, so a new center count rarely means a new compile
        size = tf.shape(table)[0]
        table = tf.pad(table, [[0, _next_power_of_two(size) - size]])
    panoptic = _compose_fn(xla)(table, thing_mask, instance_map, labels, num_classes)

    # AP score: mean probability of the instance's class over its mask x its center's score.
    # (Per thing pixel only: a dense pass over all pixels' logits costs more on CPU.)
    raw_id = tf.gather(tf.reshape(instance_map, [-1]), thing_index)
    pixel_class = tf.gather(vote, raw_id)
    thing_rows = tf.gather(tf.reshape(semantic, [-1, num_classes]), thing_index)
    prob = tf.gather(thing_rows, pixel_class, batch_dims=1)
    if not semantic_is_probability:  # softmax of one class: 1 / sum exp(l - l_class)
        prob = 1.0 / tf.reduce_sum(tf.exp(thing_rows - prob[:, tf.newaxis]), axis=1)
    prob_sum = tf.math.unsorted_segment_sum(prob, raw_id, n + 1)
    mean_prob = prob_sum / tf.cast(tf.maximum(area, 1), tf.float32)
    center_score = tf.concat([[0.0], scores], axis=0)
    instance_scores = tf.where(present, mean_prob * center_score, 0.0)

    pad = keep_k_centers - n

    def per_center(x, fill):
        return tf.pad(x[1:], [[0, pad]], constant_values=fill)

    return {
        "panoptic": panoptic,
        "semantic": labels,
        "instance_map": instance_map,
        "center_points": tf.pad(points, [[0, pad], [0, 0]], constant_values=-1),
        "center_scores": tf.pad(scores, [[0, pad]]),
        "num_centers": n,
        "instance_ids": per_center(instance_panoptic, 0),
        "instance_classes": per_center(tf.where(present, vote, -1), -1),
        "instance_areas": per_center(area, 0),
        "instance_scores": per_center(instance_scores, 0.0),
    }


def _run(semantic, heatmap, offsets, options: dict[str, Any], batched: bool):
    if not batched:
        out = _post_process_single(semantic, heatmap, offsets, **options)
        n = out["num_centers"]
        for key in (
            "center_points",
            "center_scores",
            "instance_ids",
            "instance_classes",
            "instance_areas",
            "instance_scores",
        ):
            out[key] = out[key][:n]
        return out
    signature = {
        "panoptic": tf.TensorSpec([None, None], tf.int32),
        "semantic": tf.TensorSpec([None, None], tf.int32),
        "instance_map": tf.TensorSpec([None, None], tf.int32),
        "center_points": tf.TensorSpec([options["keep_k_centers"], 2], tf.int32),
        "center_scores": tf.TensorSpec([options["keep_k_centers"]], tf.float32),
        "num_centers": tf.TensorSpec([], tf.int32),
        "instance_ids": tf.TensorSpec([options["keep_k_centers"]], tf.int32),
        "instance_classes": tf.TensorSpec([options["keep_k_centers"]], tf.int32),
        "instance_areas": tf.TensorSpec([options["keep_k_centers"]], tf.int32),
        "instance_scores": tf.TensorSpec([options["keep_k_centers"]], tf.float32),
    }
    return tf.map_fn(
        lambda args: _post_process_single(*args, **options),
        (tf.cast(semantic, tf.float32), tf.cast(heatmap, tf.float32), tf.cast(offsets, tf.float32)),
        fn_output_signature=signature,
    )


def _compose(table, thing_mask, instance_map, labels, num_classes):
    """Panoptic ids, one table lookup per pixel: stuff pixels index the per-class part of
    ``table``, thing pixels the per-instance part after it."""
    return tf.gather(table, tf.where(thing_mask, num_classes + instance_map, labels))


_COMPOSE_XLA = tf.function(_compose, jit_compile=True, reduce_retracing=True, autograph=False)


def _compose_fn(xla: bool):
    return _COMPOSE_XLA if xla else _compose


_COMPILED: dict[tuple, Any] = {}


def post_process(
    semantic_logits,
    center_heatmap,
    offsets,
    options: PostProcessOptions,
    *,
    semantic_is_probability: bool = False,
    xla: bool = True,
) -> dict[str, tf.Tensor]:
    """Fuse Panoptic-DeepLab outputs into a panoptic map (semantics in the module docstring), with
    the settings in ``options`` (a :class:`PostProcessOptions`).

    Inputs (NumPy arrays or tensors): ``semantic_logits [H, W, C]`` (probabilities when
    ``semantic_is_probability``), ``center_heatmap [H, W]`` or ``[H, W, 1]``, ``offsets [H, W, 2]``
    in (dy, dx) pixels; or the same with a leading batch axis.

    Returns a dict of tensors (batched: each with a leading batch axis, per-center entries padded to
    ``keep_k_centers`` with -1 / 0 and ``num_centers`` giving the count):
    ``panoptic`` int32 ``class * label_divisor + instance``; ``semantic`` int32 argmax labels;
    ``instance_map`` int32 raw center index + 1 on thing pixels (0 elsewhere);
    ``center_points [K, 2]`` int32 (y, x), ``center_scores [K]``, ``num_centers``;
    per center k: ``instance_ids`` (its panoptic id, 0 if it got no pixel), ``instance_classes``
    (-1 if none), ``instance_areas``, ``instance_scores`` (AP confidence).

    ``xla`` compiles the per-pixel part (argmax, NMS) with XLA (``jit_compile``), which is several
    times faster on CPU; pass False where XLA is unavailable (e.g. a TFLite conversion).
    """
    if not isinstance(options, PostProcessOptions):
        raise TypeError(
            "options must be a PostProcessOptions (see PostProcessOptions.from_config), "
            f"got {type(options).__name__}"
        )
    semantic_logits = tf.convert_to_tensor(semantic_logits)
    center_heatmap = tf.convert_to_tensor(center_heatmap)
    offsets = tf.convert_to_tensor(offsets)
    rank = semantic_logits.shape.rank
    if rank not in (3, 4):
        raise ValueError(
            f"semantic_logits must be [H, W, C] or [B, H, W, C], got shape {semantic_logits.shape}"
        )
    if center_heatmap.shape.rank == rank:  # [..., H, W, 1]
        center_heatmap = center_heatmap[..., 0]
    if (
        center_heatmap.shape.rank != rank - 1
        or offsets.shape.rank != rank
        or offsets.shape[-1] not in (2, None)
    ):
        raise ValueError(
            f"shapes do not fit: semantic {semantic_logits.shape}, center {center_heatmap.shape}, "
            f"offsets {offsets.shape} (expected [..., H, W, C], [..., H, W(, 1)], [..., H, W, 2])"
        )
    options = dict(
        options.to_dict(), semantic_is_probability=bool(semantic_is_probability), xla=bool(xla)
    )
    batched = rank == 4
    if not tf.executing_eagerly():  # already being traced: inline the ops
        return _run(semantic_logits, center_heatmap, offsets, options, batched)
    # The threshold and the area limit (and k for one image) are tensor arguments: tuning them, as
    # the app's knobs do, reuses the traced graph instead of tracing a new one (seconds).
    dynamic = {
        "center_threshold": tf.constant(options.pop("center_threshold"), tf.float32),
        "stuff_area_limit": tf.constant(options.pop("stuff_area_limit"), tf.int32),
    }
    if not batched:  # batched outputs need k in their static shapes
        dynamic["keep_k_centers"] = tf.constant(options.pop("keep_k_centers"), tf.int32)
    key = (batched, tuple(sorted(options.items())))
    fn = _COMPILED.get(key)
    if fn is None:
        static = dict(options)
        fn = tf.function(
            lambda s, c, o, d: _run(s, c, o, {**static, **d}, batched),
            reduce_retracing=True,
            autograph=False,
        )
        _COMPILED[key] = fn
    return fn(semantic_logits, center_heatmap, offsets, dynamic)
