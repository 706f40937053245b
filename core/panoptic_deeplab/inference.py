"""Inference: run a model bundle on images of any size and dtype and return the raw outputs plus the
fused panoptic prediction (docs/method.md §2 "Evaluation" and §4).

Size rules, applied to an image of ``H x W`` (the same in :class:`Predictor` and in the exported
SavedModel, which share :class:`InferencePipeline`):

1. **Resize** (optional). When the config sets ``dataset.min_resize_value`` / ``max_resize_value``
   (COCO: 641 / 641), deeplab2's ``resize_to_range``: scale so the short side reaches the minimum,
   then down so the long side fits the maximum (sizes floored). Then, if the long side is still over
   ``max_side`` (default: the larger of 2049 and the crop's long side), scale it down to
   ``max_side`` with a notice instead of running out of memory. A network with axial attention
   takes at most ``model.input_limits.max_input_side`` pixels per side (2049 for the zoo's
   Axial-SWideRNet and MaX-DeepLab backbones): ``max_side`` is capped there, with the same notice
   naming the reason, and test-time scales above 1 are refused. Image resizing is corner-aligned
   bilinear, as in deeplab2, except that an image shrunk by 2x or more (on either side) is
   area-averaged (antialiased) instead.
2. **Pad** at the bottom/right with 127.5 (zero after the model's normalisation) to
   ``k * output_stride + 1`` per side, and (``pad_to="crop"``, the default, what deeplab2 evaluates
   with) to at least the config's ``dataset.crop_size``. ``pad_to="minimal"`` skips the latter.
3. **Network** on the padded image, for every test-time scale ``s`` (image resized to
   ``int((n - 1) * s + 1)`` per side, ASPP pooling window scaled the same way) and optionally its
   mirror image. Each output is resized back to the padded size (offsets rescaled; mirrored outputs
   flipped back with dx negated), logits turned into softmax probabilities, and probabilities,
   center heatmaps and offsets are averaged over all runs (deeplab2 ``DeepLab.call``).
4. **Post-processing** (``postprocess.post_process``) on the averaged maps at the padded size, in
   the same ``tf.function`` as the network (one trace per padded size and batch size).
5. **Undo**: crop the padding, then resize to ``H x W``: nearest (corner-aligned) for label maps,
   bilinear for probabilities and heatmaps, bilinear + rescale for offsets (deeplab2
   ``undo_preprocessing``). Center points are mapped to ``H x W`` coordinates.

Input dtypes (``as_rgb_float``): uint8 as is; uint16 / 257; bool x 255; other integers must lie in
0..255; floats are 0..1 when their maximum is <= 1, else 0..255 (clipped). Grayscale ``[H, W]`` or
``[H, W, 1]`` is replicated, an alpha channel dropped. Paths and encoded bytes go through
``image_io.load_image``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from .errors import ImageError
from .image_io import load_image
from .model.input_limits import describe_limit, max_input_side
from .model.layers import resize_align_corners
from .postprocess import PostProcessOptions, post_process

log = logging.getLogger(__name__)

PAD_VALUE = 127.5
DEFAULT_MAX_SIDE = 2049


# ------------------------------------------------------------------------------------------------
# Results


@dataclass
class Segment:
    """One segment of a prediction (COCO-panoptic ``segments_info`` plus the AP score)."""

    id: int  # panoptic value: category * label_divisor + instance
    category: int  # train id
    instance: int  # 0 for stuff
    isthing: bool
    area: int  # pixels at the image's own size
    score: float  # AP confidence for things (0 for stuff and for an image without centers)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "category": self.category,
            "instance": self.instance,
            "isthing": self.isthing,
            "area": self.area,
            "score": self.score,
        }


@dataclass
class Prediction:
    """The result for one image, at the image's own size ``image_size``."""

    image_size: tuple[int, int]
    panoptic: np.ndarray  # int32 [H, W], class * divisor + instance, void = ignore * divisor
    semantic: np.ndarray  # int32 [H, W] argmax of the averaged probabilities
    segments: list[Segment]
    center_points: np.ndarray  # float32 [N, 2] (y, x) in image pixels
    center_scores: np.ndarray  # float32 [N]
    network_size: tuple[int, int]  # size after the resize rules (before padding)
    padded_size: tuple[int, int]
    semantic_probs: np.ndarray | None = None  # float32 [H, W, C]
    center_heatmap: np.ndarray | None = None  # float32 [H, W]
    offsets: np.ndarray | None = None  # float32 [H, W, 2] (dy, dx) in image pixels
    notes: list[str] = field(default_factory=list)

    def raw(self) -> dict[str, np.ndarray]:
        """The raw outputs (for ``.npz`` files); empty when they were not kept."""
        out = {
            "semantic_probs": self.semantic_probs,
            "center_heatmap": self.center_heatmap,
            "offsets": self.offsets,
        }
        return {k: v for k, v in out.items() if v is not None}


# ------------------------------------------------------------------------------------------------
# Input conversion


def as_rgb_float(image: Any, name: str = "image") -> np.ndarray:
    """Any image a user may have -> float32 RGB ``[H, W, 3]`` in 0..255 (rules in the module doc)."""
    if isinstance(image, (str, Path, bytes, bytearray)):
        return load_image(image).astype(np.float32)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageError(
            f"{name}: expected an image of shape [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got {array.shape}."
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"{name}: the image is empty ({array.shape}).")
    if array.shape[2] == 4:
        array = array[..., :3]
    if array.dtype == np.bool_:
        array = array.astype(np.float32) * 255.0
    elif array.dtype == np.uint8:
        array = array.astype(np.float32)
    elif array.dtype == np.uint16:
        array = array.astype(np.float32) / 257.0
    elif np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise ImageError(
                f"{name}: {array.dtype} values {array.min()}..{array.max()} are outside 0..255. Convert to uint8."
            )
        array = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise ImageError(f"{name}: the image holds NaN or infinite values.")
        if array.max() <= 1.0:
            array = array * 255.0
        array = np.clip(array, 0.0, 255.0)
    else:
        raise ImageError(f"{name}: unsupported dtype {array.dtype}. Give uint8 RGB.")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array, dtype=np.float32)


# ------------------------------------------------------------------------------------------------
# The pipeline shared by the Predictor and the exported SavedModel


def scaled_size(size: int, scale: float) -> int:
    """deeplab2's ``scale_mutable_sequence``: ``int((size - 1) * scale + 1)``."""
    return int((int(size) - 1) * float(scale) + 1.0)


class InferencePipeline:
    """The size rules, test-time augmentation and post-processing around a Keras model, as TF ops
    that run eagerly, inside ``tf.function`` and inside a SavedModel (see the module docstring).
    ``model`` may be None where only the size rules are needed (the training preview)."""

    def __init__(
        self,
        model,
        config,
        spec,
        *,
        scales=(1.0,),
        flip: bool = False,
        max_side: int | None = None,
        pad_to: str = "crop",
        **postprocess_overrides,
    ):
        if pad_to not in ("crop", "minimal"):
            raise ValueError(f"pad_to must be 'crop' or 'minimal', got {pad_to!r}")
        scales = tuple(float(s) for s in scales)
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"scales must be positive numbers, got {scales}")
        self.model = model
        self.config = config
        self.spec = spec
        self.scales = scales
        self.flip = bool(flip)
        self.output_stride = int(config.model.output_stride)
        self.crop_size = tuple(int(s) for s in config.dataset.crop_size)
        self.min_resize = int(config.dataset.min_resize_value)
        self.max_resize = int(config.dataset.max_resize_value)
        self.max_side = int(max_side) if max_side else max(DEFAULT_MAX_SIDE, *self.crop_size)
        # Axial attention fixes the largest feature size: shrink larger images to fit (step 1).
        self.size_limit = max_input_side(config.model)
        self.limit_reason = ""
        if self.size_limit is not None:
            if max(scales) > 1.0:
                from .errors import UserError

                raise UserError(
                    f"--scales {' '.join(map(str, scales))}: {describe_limit(config.model)}; "
                    "test-time scales above 1 would exceed it. Use scales <= 1."
                )
            if self.max_side >= self.size_limit:
                self.max_side = self.size_limit
                self.limit_reason = describe_limit(config.model)
        self.pad_to = pad_to
        self.postprocess = PostProcessOptions.from_config(config, spec, **postprocess_overrides)
        self._pool_layers = _window_pool_layers(model)

    # -- sizes (Python ints; ``network_size_tf`` / ``padded_size_tf`` are the graph twins) --------

    def network_size(self, height: int, width: int, *, cap: bool = True) -> tuple[int, int]:
        """Size after the resize rules (1); ``cap=False`` leaves out the ``max_side`` cap."""
        h, w = float(height), float(width)
        if self.min_resize > 0:
            factor = max(self.min_resize / h, self.min_resize / w)
            h, w = math.floor(h * factor), math.floor(w * factor)
        if self.max_resize > 0:
            factor = min(self.max_resize / h, self.max_resize / w, 1.0)
            h, w = math.floor(h * factor), math.floor(w * factor)
        if cap and max(h, w) > self.max_side:
            factor = self.max_side / max(h, w)
            h, w = math.floor(h * factor), math.floor(w * factor)
        return max(int(h), 1), max(int(w), 1)

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """Size the network runs at for a (resized) ``height x width`` image (2)."""
        os_ = self.output_stride

        def fit(n: int, crop: int) -> int:
            n = max(1, math.ceil((n - 1) / os_)) * os_ + 1
            return max(n, crop) if self.pad_to == "crop" else n

        return fit(height, self.crop_size[0]), fit(width, self.crop_size[1])

    def network_size_tf(self, height, width):
        h, w = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
        if self.min_resize > 0:
            factor = tf.maximum(self.min_resize / h, self.min_resize / w)
            h, w = tf.floor(h * factor), tf.floor(w * factor)
        if self.max_resize > 0:
            factor = tf.minimum(tf.minimum(self.max_resize / h, self.max_resize / w), 1.0)
            h, w = tf.floor(h * factor), tf.floor(w * factor)
        factor = tf.minimum(self.max_side / tf.maximum(h, w), 1.0)
        h = tf.where(factor < 1.0, tf.floor(h * factor), h)
        w = tf.where(factor < 1.0, tf.floor(w * factor), w)
        return tf.maximum(tf.cast(h, tf.int32), 1), tf.maximum(tf.cast(w, tf.int32), 1)

    def padded_size_tf(self, height, width):
        os_ = self.output_stride

        def fit(n, crop):
            k = tf.maximum(1, (n - 1 + os_ - 1) // os_)
            n = k * os_ + 1
            return tf.maximum(n, crop) if self.pad_to == "crop" else n

        return fit(height, self.crop_size[0]), fit(width, self.crop_size[1])

    # -- graph pieces ------------------------------------------------------------------------------

    @staticmethod
    def resize_and_pad(images, network_hw, padded_hw):
        """``[B, H, W, 3]`` float -> resized to ``network_hw`` (corner-aligned bilinear, skipped when
        equal) and padded bottom/right with 127.5 to ``padded_hw``."""
        images = tf.cast(images, tf.float32)
        size = tf.stack(network_hw)
        same = tf.reduce_all(tf.equal(tf.shape(images)[1:3], size))
        # Shrinking 2x or more: area averaging, not bilinear, which would sample only every other
        # pixel and alias (a 1024x2048 synthetic image shrunk for the demo: PQ 79.9 -> 80.8).
        shrink = tf.reduce_any(tf.shape(images)[1:3] >= 2 * size)
        images = tf.cond(
            same,
            lambda: images,
            lambda: tf.cond(
                shrink,
                lambda: tf.image.resize(images, size, method="area"),
                lambda: resize_align_corners(images, size),
            ),
        )
        pad_h = padded_hw[0] - network_hw[0]
        pad_w = padded_hw[1] - network_hw[1]
        return tf.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], constant_values=PAD_VALUE)

    def forward(self, padded_images, return_raw: bool = True) -> dict[str, tf.Tensor]:
        """Network with TTA + post-processing on ``[B, Hp, Wp, 3]`` float32 padded images."""
        shape = tf.shape(padded_images)
        size = shape[1:3]
        static = padded_images.shape[1:3]
        probs, heats, offsets = [], [], []
        for scale in self.scales:
            if scale == 1.0:
                scaled = padded_images
            elif static[0] is not None and static[1] is not None:
                scaled = resize_align_corners(
                    padded_images, (scaled_size(static[0], scale), scaled_size(static[1], scale))
                )
            else:
                target = tf.cast((tf.cast(size, tf.float32) - 1.0) * scale + 1.0, tf.int32)
                scaled = resize_align_corners(padded_images, target)
            with self._pool_scale(scale):
                for mirrored in (False, True) if self.flip else (False,):
                    x = tf.reverse(scaled, [2]) if mirrored else scaled
                    out = self.model(x, training=False)
                    logits = tf.cast(out["semantic_logits"], tf.float32)
                    heat = tf.cast(out["center_heatmap"], tf.float32)
                    off = tf.cast(out["offsets"], tf.float32)
                    if mirrored:
                        logits, heat = tf.reverse(logits, [2]), tf.reverse(heat, [2])
                        off = tf.reverse(off, [2]) * tf.constant([1.0, -1.0])
                    if scale != 1.0:
                        logits = resize_align_corners(logits, size)
                        heat = resize_align_corners(heat, size)
                        off = resize_offsets(off, size)
                    probs.append(tf.nn.softmax(logits, axis=-1))
                    heats.append(heat)
                    offsets.append(off)
        prob = tf.add_n(probs) / len(probs)
        heat = (tf.add_n(heats) / len(heats))[..., 0]
        off = tf.add_n(offsets) / len(offsets)
        result = post_process(prob, heat, off, self.postprocess, semantic_is_probability=True)
        result = {k: v for k, v in result.items() if k != "instance_map"}
        if return_raw:
            result.update(semantic_probs=prob, center_heatmap=heat, offsets=off)
        return result

    @staticmethod
    def undo(result: dict, network_hw, image_hw) -> dict:
        """Crop the padding and resize every map in ``result`` to ``image_hw`` (graph-friendly)."""
        nh, nw = network_hw[0], network_hw[1]
        out = dict(result)
        target = tf.stack(image_hw)
        resized = tf.logical_not(tf.reduce_all(tf.equal(tf.stack([nh, nw]), target)))

        def labels(x):
            x = x[:, :nh, :nw, tf.newaxis]
            return tf.cond(resized, lambda: resize_align_corners(x, target, "nearest"), lambda: x)[
                ..., 0
            ]

        def floats(x, offsets=False):
            squeeze = x.shape.rank == 3
            x = x[:, :nh, :nw, tf.newaxis] if squeeze else x[:, :nh, :nw, :]
            fn = resize_offsets if offsets else resize_align_corners
            x = tf.cond(resized, lambda: fn(x, target), lambda: x)
            return x[..., 0] if squeeze else x

        for key in ("panoptic", "semantic"):
            out[key] = labels(result[key])
        for key in ("semantic_probs", "center_heatmap"):
            if key in result:
                out[key] = floats(result[key])
        if "offsets" in result:
            out["offsets"] = floats(result["offsets"], offsets=True)
        # Center points (y, x) from the network grid to image pixels (corner-aligned).
        scale = (tf.cast(target, tf.float32) - 1.0) / tf.maximum(
            tf.cast(tf.stack([nh, nw]), tf.float32) - 1.0, 1.0
        )
        points = tf.cast(result["center_points"], tf.float32)
        out["center_points"] = tf.where(points >= 0, points * scale, -1.0)
        return out

    def serve(self, images) -> dict[str, tf.Tensor]:
        """The whole pipeline on a ``[B, H, W, 3]`` batch (any numeric dtype in 0..255) as graph ops:
        what the exported SavedModel runs."""
        images = tf.cast(images, tf.float32)
        h, w = tf.shape(images)[1], tf.shape(images)[2]
        network_hw = self.network_size_tf(h, w)
        padded_hw = self.padded_size_tf(*network_hw)
        padded = self.resize_and_pad(images, network_hw, padded_hw)
        return self.undo(self.forward(padded, return_raw=True), network_hw, (h, w))

    @contextlib.contextmanager
    def _pool_scale(self, scale: float):
        """Scale the ASPP pooling windows like the image while tracing one TTA scale (deeplab2's
        ``set_pool_size``); restored afterwards."""
        saved = [layer.pool_size for layer in self._pool_layers]
        try:
            if scale != 1.0:
                for layer in self._pool_layers:
                    if layer.pool_size is not None:
                        layer.pool_size = tuple(
                            max(1, scaled_size(p, scale)) for p in layer.pool_size
                        )
            yield
        finally:
            for layer, size in zip(self._pool_layers, saved):
                layer.pool_size = size


def resize_offsets(offsets, size):
    """Corner-aligned resize of ``[B, h, w, 2]`` (dy, dx) offsets to ``size``, rescaled to the new
    pixel grid by ``(size - 1) / (h - 1)`` per axis (deeplab2 ``resize_and_rescale_offsets``)."""
    size = tf.cast(size, tf.int32)
    size_in = tf.cast(tf.shape(offsets)[1:3], tf.float32)
    size_out = tf.cast(size, tf.float32)
    scale = tf.where(
        size_in > 1, (size_out - 1.0) / tf.maximum(size_in - 1.0, 1.0), tf.ones_like(size_in)
    )
    return resize_align_corners(offsets * tf.reshape(scale, [1, 1, 1, 2]), size)


def choose_precision_name(requested: str) -> str:
    from .precision import choose_precision

    return choose_precision(requested).name


def _window_pool_layers(model) -> list:
    from .model.aspp import WindowAveragePooling

    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, WindowAveragePooling):
            found.append(layer)
        stack.extend(getattr(layer, "layers", []))
    return found


# ------------------------------------------------------------------------------------------------
# The Predictor


class Predictor:
    """Run a model bundle on images; see the module docstring for the size and TTA rules.

    ``bundle_or_path``: a bundle directory or a loaded ``bundle.Bundle``. ``precision``: auto |
    fp32 | bf16 | fp16 (None: ``$PDL_PRECISION``, else the bundle's default, else auto; see
    ``precision.py``). ``backend``: tf | onnx | openvino (see ``engines.py``; the exported network
    is ``engine_file`` or a cached export of the bundle). ``scales`` / ``flip``: test-time
    augmentation. ``batch_size``: images run together when they share a padded size.
    ``max_side``: long-side cap before padding (None: max(2049, crop)). ``pad_to``: "crop" or
    "minimal". Post-processing overrides: ``center_threshold``, ``nms_kernel``,
    ``keep_k_centers``, ``stuff_area_limit`` (default: the bundle config's ``postprocess``).
    """

    def __init__(
        self,
        bundle_or_path,
        *,
        precision: str | None = None,
        backend: str | None = None,
        engine_file: str | Path | None = None,
        scales=(1.0,),
        flip: bool = False,
        batch_size: int = 1,
        max_side: int | None = None,
        pad_to: str = "crop",
        **postprocess_overrides,
    ):
        from .bundle import load_bundle
        from .engines import ExportedNetwork, cached_export, choose_backend

        if isinstance(bundle_or_path, (str, Path)):
            bundle_or_path = load_bundle(bundle_or_path, precision=precision)
        elif (
            precision is not None
            and bundle_or_path.precision is not None
            and choose_precision_name(precision) != bundle_or_path.precision.name
        ):
            bundle_or_path = load_bundle(bundle_or_path.path, precision=precision)
        self.bundle = bundle_or_path
        self.spec = bundle_or_path.spec
        self.config = bundle_or_path.config
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.backend, self.precision = choose_backend(
            backend, bundle_or_path.precision, getattr(self.config.model, "dtype_policy", "float32")
        )
        network = bundle_or_path.model
        if self.backend != "tf":
            if tuple(scales) != (1.0,):
                from .errors import UserError

                raise UserError(
                    f"--scales {' '.join(map(str, scales))}: multi-scale test-time augmentation needs "
                    f"--backend tf (the {self.backend} export has a fixed ASPP pooling window)."
                )
            path = engine_file or cached_export(bundle_or_path, self.backend)
            network = ExportedNetwork(
                path, self.backend, self.precision.name, num_classes=self.spec.num_classes
            )
        self.pipeline = InferencePipeline(
            network,
            self.config,
            self.spec,
            scales=scales,
            flip=flip,
            max_side=max_side,
            pad_to=pad_to,
            **postprocess_overrides,
        )
        # One trace per (padded size, batch size, return_raw).
        self._forward = tf.function(self.pipeline.forward)

    def describe(self) -> str:
        """What runs the network, e.g. "tf, precision bf16 (auto: the CPU has amx_bf16)"."""
        return f"{self.backend}, {self.precision.describe()}"

    def __call__(self, image, *, return_raw: bool = True) -> Prediction:
        return next(self.predict_iter([image], return_raw=return_raw))

    def predict(self, images, *, return_raw: bool = True) -> list[Prediction]:
        """Predictions for a list of images, or for a ``[B, H, W, C]`` array."""
        if isinstance(images, np.ndarray) and images.ndim == 4:
            images = list(images)
        return list(self.predict_iter(images, return_raw=return_raw))

    def predict_iter(self, images: Iterable, *, return_raw: bool = False) -> Iterator[Prediction]:
        """Predictions in input order, batching consecutive images that share a padded size."""
        pending: list[tuple] = []
        for index, image in enumerate(images):
            item = self._prepare(image, f"image {index}")
            if pending and (len(pending) == self.batch_size or pending[0][2] != item[2]):
                yield from self._run(pending, return_raw)
                pending = []
            pending.append(item)
        if pending:
            yield from self._run(pending, return_raw)

    def _prepare(self, image, name: str):
        rgb = as_rgb_float(image, name)
        height, width = rgb.shape[:2]
        network = self.pipeline.network_size(height, width)
        padded = self.pipeline.padded_size(*network)
        notes = []
        if network != self.pipeline.network_size(height, width, cap=False):
            why = self.pipeline.limit_reason or f"max_side={self.pipeline.max_side}"
            notes.append(
                f"{name}: {height}x{width} is larger than {why}; "
                f"downscaled to {network[0]}x{network[1]} and the prediction resized back."
            )
            log.warning(notes[-1])
        batch = self.pipeline.resize_and_pad(rgb[None], network, padded)
        return batch, (height, width), padded, network, notes

    def _run(self, items: list[tuple], return_raw: bool) -> Iterator[Prediction]:
        batch = tf.concat([item[0] for item in items], axis=0)
        result = self._forward(batch, return_raw=return_raw)
        for i, (_, image_hw, padded, network, notes) in enumerate(items):
            one = {k: v[i : i + 1] for k, v in result.items()}
            one = {
                k: v[0].numpy() for k, v in InferencePipeline.undo(one, network, image_hw).items()
            }
            yield self._to_prediction(one, image_hw, network, padded, notes)

    def _to_prediction(self, r: dict, image_hw, network, padded, notes) -> Prediction:
        n = int(r["num_centers"])
        scores = {
            int(i): float(s)
            for i, s in zip(r["instance_ids"][:n], r["instance_scores"][:n])
            if i > 0
        }
        panoptic = r["panoptic"].astype(np.int32)
        divisor, ignore = self.spec.label_divisor, self.spec.ignore_label
        segments = []
        values, areas = np.unique(panoptic, return_counts=True)
        for value, area in zip(values.tolist(), areas.tolist()):
            category, instance = divmod(value, divisor)
            if category == ignore:
                continue
            segments.append(
                Segment(
                    id=value,
                    category=category,
                    instance=instance,
                    isthing=self.spec.is_thing(category),
                    area=area,
                    score=scores.get(value, 0.0),
                )
            )
        return Prediction(
            image_size=tuple(image_hw),
            panoptic=panoptic,
            semantic=r["semantic"].astype(np.int32),
            segments=segments,
            center_points=r["center_points"][:n].astype(np.float32),
            center_scores=r["center_scores"][:n].astype(np.float32),
            network_size=tuple(network),
            padded_size=tuple(padded),
            semantic_probs=r.get("semantic_probs"),
            center_heatmap=r.get("center_heatmap"),
            offsets=r.get("offsets"),
            notes=notes,
        )
