"""The inference pipeline as TensorFlow ops: size rules, padding, the network with test-time
augmentation, post-processing and the way back to the image's size. The Predictor
(``inference.py``) and the exported SavedModel (``export.py``) both run it; the rules are in
``inference.py``'s module docstring.

Post-processing compiles its per-pixel part with XLA only where that pays (``use_xla``): XLA's
start-up and compilation cost about 2.5 CPU-s once per process, and they save 4 ms per image at
257x513 (the demo model), 20 ms at 641x641, 70 ms at 1025x1025 and 140 ms at 1025x2049
(docs/performance.md).
"""

from __future__ import annotations

import contextlib
import math

import tensorflow as tf

from .errors import UserError
from .model.builder import OUTPUTS
from .model.input_limits import describe_limit, max_input_side
from .model.layers import resize_align_corners
from .postprocess import PostProcessOptions, post_process

PAD_VALUE = 127.5
DEFAULT_MAX_SIDE = 2049
# Padded images of at least this many pixels get XLA-compiled post-processing (module docstring):
# from there on it saves 70 ms or more per image, paid back after a few dozen images.
XLA_MIN_PIXELS = 1025 * 1025


def use_xla(padded_height: int | None, padded_width: int | None) -> bool:
    """Whether post-processing at this padded size compiles with XLA; an unknown size (an exported
    SavedModel serves any) does."""
    if padded_height is None or padded_width is None:
        return True
    return padded_height * padded_width >= XLA_MIN_PIXELS


def scaled_size(size: int, scale: float) -> int:
    """deeplab2's ``scale_mutable_sequence``: ``int((size - 1) * scale + 1)``."""
    return int((int(size) - 1) * float(scale) + 1.0)


class InferencePipeline:
    """The size rules, test-time augmentation and post-processing around a Keras model, as TF ops
    that run eagerly, inside ``tf.function`` and inside a SavedModel (see the module docstring).
    ``model`` may be None where only the size rules are needed (the training preview), or set
    later. ``xla``: compile post-processing with XLA (None: by size, see ``use_xla``)."""

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
        xla: bool | None = None,
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
                raise UserError(
                    f"--scales {' '.join(map(str, scales))}: {describe_limit(config.model)}; "
                    "test-time scales above 1 would exceed it. Use scales <= 1."
                )
            if self.max_side >= self.size_limit:
                self.max_side = self.size_limit
                self.limit_reason = describe_limit(config.model)
        self.pad_to = pad_to
        self.xla = xla
        self.postprocess = PostProcessOptions.from_config(config, spec, **postprocess_overrides)

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
        """``[B, H, W, 3]`` float -> resized to ``network_hw`` (corner-aligned bilinear, skipped
        when equal) and padded bottom/right with 127.5 to ``padded_hw``."""
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
                    logits, heat, off = (tf.cast(out[k], tf.float32) for k in OUTPUTS)
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
        xla = self.xla if self.xla is not None else use_xla(*static)
        result = post_process(
            prob, heat, off, self.postprocess, semantic_is_probability=True, xla=xla
        )
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
        """The whole pipeline on a ``[B, H, W, 3]`` batch (any numeric dtype in 0..255) as graph
        ops: what the exported SavedModel runs."""
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
        layers = _window_pool_layers(self.model) if scale != 1.0 else []
        saved = [layer.pool_size for layer in layers]
        try:
            if scale != 1.0:
                for layer in layers:
                    if layer.pool_size is not None:
                        layer.pool_size = tuple(
                            max(1, scaled_size(p, scale)) for p in layer.pool_size
                        )
            yield
        finally:
            for layer, size in zip(layers, saved):
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


def _window_pool_layers(model) -> list:
    from .model.aspp import WindowAveragePooling

    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, WindowAveragePooling):
            found.append(layer)
        stack.extend(getattr(layer, "layers", []))
    return found
