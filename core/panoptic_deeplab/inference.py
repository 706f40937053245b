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

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from .bundle import open_bundle
from .engines import ExportedNetwork, cached_export, choose_backend
from .errors import ImageError, UserError
from .image_io import load_image
from .pipeline import (  # noqa: F401 - InferencePipeline, scaled_size, PAD_VALUE: re-exported
    PAD_VALUE,
    InferencePipeline,
    scaled_size,
)
from .precision import choose_precision

log = logging.getLogger(__name__)


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
    """Any image a user may have -> float32 RGB ``[H, W, 3]`` in 0..255 (module docstring)."""
    if isinstance(image, (str, Path, bytes, bytearray)):
        return load_image(image).astype(np.float32)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageError(
            f"{name}: expected an image of shape [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], "
            f"got {array.shape}."
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
                f"{name}: {array.dtype} values {array.min()}..{array.max()} are outside 0..255. "
                "Convert to uint8."
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


class Predictor:
    """Run a model bundle on images; see the module docstring for the size and TTA rules.

    ``bundle_or_path``: a bundle directory or a ``bundle.Bundle``. ``precision``: auto | fp32 |
    bf16 | fp16 (None: ``$PDL_PRECISION``, else the bundle's default, else auto; see
    ``precision.py``). ``backend``: tf | onnx | openvino (see ``engines.py``; the exported network
    is ``engine_file`` or a cached export of the bundle). ``scales`` / ``flip``: test-time
    augmentation. ``batch_size``: images run together when they share a padded size.
    ``max_side``: long-side cap before padding (None: max(2049, crop)). ``pad_to``: "crop" or
    "minimal". ``xla``: XLA for post-processing (None: where it pays, see ``pipeline.use_xla``).
    Post-processing overrides: ``center_threshold``, ``nms_kernel``, ``keep_k_centers``,
    ``stuff_area_limit`` (default: the bundle config's ``postprocess``).

    The pipeline is traced once per padded size and batch size (on the first image of that size,
    or ahead of it with ``warm_up``).
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
        xla: bool | None = None,
        **postprocess_overrides,
    ):
        bundle = bundle_or_path
        if isinstance(bundle, (str, Path)):
            bundle = open_bundle(bundle, precision=precision)
        elif (
            precision is not None
            and bundle.precision is not None
            and bundle.path is not None
            and choose_precision(precision).name != bundle.precision.name
        ):
            bundle = open_bundle(bundle.path, precision=precision)
        self.bundle = bundle
        self.spec = bundle.spec
        self.config = bundle.config
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.backend, self.precision = choose_backend(
            backend, bundle.precision, getattr(self.config.model, "dtype_policy", "float32")
        )
        network = bundle.model if self.backend == "tf" else None  # a bad weights file fails here
        if self.backend != "tf":
            if tuple(scales) != (1.0,):
                raise UserError(
                    f"--scales {' '.join(map(str, scales))}: multi-scale test-time augmentation "
                    f"needs --backend tf (the {self.backend} export has a fixed ASPP pooling "
                    "window)."
                )
            path = engine_file or cached_export(bundle, self.backend)
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
            xla=xla,
            **postprocess_overrides,
        )
        # (padded batch shape, return_raw) -> the pipeline traced for it
        self._functions: dict[tuple, Any] = {}
        self._lock = threading.Lock()

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

    def warm_up(self, image_size: tuple[int, int] | None = None, *, return_raw: bool = True):
        """Compile the pipeline for images of ``image_size`` (default: the config's crop size,
        which the resize rules map most images of its data set to the same padded size as) by
        running it once on a blank image, so that the first real image runs at full speed."""
        height, width = image_size or tuple(self.config.dataset.crop_size)
        self(np.zeros((height, width, 3), np.uint8), return_raw=return_raw)
        return self

    def _function(self, shape: tuple[int, ...], return_raw: bool):
        """The pipeline traced for a padded float32 batch of ``shape`` (once per shape; the lock
        lets the app's background warm-up and a click share one trace)."""
        key = (shape, return_raw)
        with self._lock:
            if key not in self._functions:

                def forward(images):
                    return self.pipeline.forward(images, return_raw=return_raw)

                # No AutoGraph: the pipeline's control flow is written as TF ops, and converting its
                # code cost 2 of the 7 CPU-s a cold `pdl predict` spends beyond importing TF.
                traced = tf.function(forward, autograph=False)
                self._functions[key] = traced.get_concrete_function(
                    tf.TensorSpec(shape, tf.float32)
                )
            return self._functions[key]

    def _run(self, items: list[tuple], return_raw: bool) -> Iterator[Prediction]:
        batch = tf.concat([item[0] for item in items], axis=0)
        result = self._function(tuple(batch.shape), return_raw)(batch)
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
