"""Build the Panoptic-DeepLab Keras model from a config (docs/method.md §1).

Input: float32 ``[B, H, W, 3]`` RGB in 0..255; normalisation ``x / 127.5 - 1`` is inside the model.
Outputs (float32, at the input resolution, corner-aligned bilinear upsampling from stride 4):

* ``semantic_logits`` ``[B, H, W, num_classes]``
* ``center_heatmap`` ``[B, H, W, 1]`` (raw, no activation)
* ``offsets`` ``[B, H, W, 2]`` as (dy, dx) in input pixels (rescaled by (H-1)/(h-1), (W-1)/(w-1))

Input sizes: DeepLab's sizes ``k * OS + 1`` (see ``valid_input_size``) keep every stride-2 layer
and every corner-aligned resize exact, and are what inference pads to. Any other size also runs
(strided convs pad symmetrically, like deeplab2), with sub-pixel misalignment between strides.
The ASPP pooling window comes from ``config.dataset.crop_size`` (see ``aspp.py`` for other sizes).
"""

from __future__ import annotations

import contextlib
import math

import keras

from ..config import Config
from .aspp import aspp, pool_size_for_crop
from .backbones import build_backbone
from .decoder import decoder
from .heads import head
from .layers import ResizeLike, ResizeOffsetsLike, make_norm
from .pretrained import load_pretrained_backbone

# The network's outputs (module docstring), in the order every list of them uses (exports, engines).
OUTPUTS = ("semantic_logits", "center_heatmap", "offsets")

# Parts built in float32 under a mixed policy (names: "<branch>_decoder" or "<head>"). The accuracy
# guard (tests/core/inference/test_precision_guard.py) found the center heatmap is what bfloat16
# breaks: with the whole network in bfloat16 the demo model loses 1.4 PQ on 60 held-out images
# (peaks rounded to 8 mantissa bits change which centers survive NMS); with a float32 center head
# it differs by 0.08, while a float32 offset head alone changes nothing. See README "Precision".
FLOAT32_PARTS: tuple[str, ...] = ("center_head",)


def valid_input_size(h: int, w: int, output_stride: int) -> tuple[int, int]:
    """The smallest sizes ``k * output_stride + 1 >= (h, w)`` (k >= 1), e.g. 1024 -> 1025 at OS32."""

    def fit(size: int) -> int:
        return max(1, math.ceil((int(size) - 1) / output_stride)) * output_stride + 1

    return fit(h), fit(w)


def build_model(
    config: Config, num_classes: int | None = None, input_shape: tuple[int, int] | None = None
) -> keras.Model:
    """Build the model. ``num_classes`` defaults to the config's data set; ``input_shape`` (H, W)
    fixes the spatial size (``None``: any size)."""
    m = config.model
    if num_classes is None:
        from ..datasets.specs import get_dataset_spec

        num_classes = get_dataset_spec(config.dataset.name).num_classes
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(m.dtype_policy)
    try:
        model = _build(config, int(num_classes), input_shape)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    if m.pretrained_backbone:
        load_pretrained_backbone(
            model.get_layer("backbone"), m.pretrained_backbone, backbone_name=m.backbone
        )
    return model


def _branch(features, cfg, m, pool_size, norm, branch):
    """One branch's ASPP and decoder."""
    y = aspp(
        features["res5"],
        channels=cfg.aspp_channels,
        rates=tuple(m.aspp_rates),
        pool_size=pool_size,
        separable=m.aspp_separable,
        dropout=m.aspp_dropout,
        norm=norm,
        name=f"{branch}_aspp",
    )
    return decoder(
        y,
        features,
        low_level=list(zip(m.low_level_endpoints, cfg.low_level_project_channels)),
        channels=cfg.decoder_channels,
        norm=norm,
        name=f"{branch}_decoder",
    )


@contextlib.contextmanager
def _float32_if(condition: bool):
    """Build the layers made inside in float32 (their inputs are cast up) when ``condition``."""
    previous = keras.config.dtype_policy()
    if condition:
        keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _build(config: Config, num_classes: int, input_shape: tuple[int, int] | None) -> keras.Model:
    m = config.model
    norm = make_norm(m.bn_momentum, m.bn_epsilon, m.sync_batch_norm)
    spatial = tuple(input_shape) if input_shape is not None else (None, None)
    image = keras.Input(shape=(*spatial, 3), dtype="float32", name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(image)

    # The backbone is a sub-model so that pretrained weights, freezing and summaries can address it.
    backbone_input = keras.Input(shape=(*spatial, 3), name="backbone_input")
    endpoints = build_backbone(
        m.backbone,
        backbone_input,
        output_stride=m.output_stride,
        width=m.backbone_width,
        norm=norm,
        stem_width=m.stem_width,
    )
    used = ("res5", *m.low_level_endpoints)
    backbone = keras.Model(backbone_input, {k: endpoints[k] for k in used}, name="backbone")
    features = backbone(x)

    pool_size = pool_size_for_crop(config.dataset.crop_size, m.output_stride)
    branches = {}
    for branch, cfg in (("semantic", m.semantic_decoder), ("instance", m.instance_decoder)):
        if len(cfg.low_level_project_channels) != len(m.low_level_endpoints):
            raise ValueError(
                f"model.{branch}_decoder.low_level_project_channels has {len(cfg.low_level_project_channels)} "
                f"entries but model.low_level_endpoints has {len(m.low_level_endpoints)}; give one per endpoint."
            )
        with _float32_if(f"{branch}_decoder" in FLOAT32_PARTS):
            branches[branch] = _branch(features, cfg, m, pool_size, norm, branch)

    sem_cfg, inst_cfg = m.semantic_decoder, m.instance_decoder
    heads = {}
    for name, inputs, channels, outputs in (
        ("semantic_head", branches["semantic"], sem_cfg.head_channels, num_classes),
        ("center_head", branches["instance"], inst_cfg.head_channels, 1),
        ("offset_head", branches["instance"], inst_cfg.head_channels, 2),
    ):
        with _float32_if(name in FLOAT32_PARTS):
            heads[name] = head(inputs, channels=channels, outputs=outputs, norm=norm, name=name)
    semantic, center, offsets = heads["semantic_head"], heads["center_head"], heads["offset_head"]

    semantic_name, center_name, offsets_name = OUTPUTS
    outputs = {
        semantic_name: ResizeLike(dtype="float32", name=semantic_name)([semantic, image]),
        center_name: ResizeLike(dtype="float32", name=center_name)([center, image]),
        offsets_name: ResizeOffsetsLike(dtype="float32", name=offsets_name)([offsets, image]),
    }
    return keras.Model(image, outputs, name=f"panoptic_deeplab_{m.backbone}_os{m.output_stride}")
