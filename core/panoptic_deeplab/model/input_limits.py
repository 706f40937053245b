"""The input sizes a network accepts (docs/zoo.md "Input size").

Every backbone runs on any size except those with axial attention: deeplab2 builds its axial
layers for one feature size and refuses an axis longer than 129 positions (``query_shape``), so a
network whose first axial layer runs at stride ``s`` takes at most ``128 * s + 1`` pixels per side
(2049 for Axial-SWideRNet and the MaX-DeepLab backbones at stride 16, a ``k * OS + 1`` size).
Inference (``inference.InferencePipeline``) shrinks larger images to fit and pads no further; the
training crop must fit too.
"""

from __future__ import annotations

from .backbones.architectures import ARCHITECTURES, min_axial_stride

MAX_LENGTH = 129  # deeplab2's query_shape (axial_attention.MAX_LENGTH; here without TensorFlow)


def axial_stride(model_config) -> int | None:
    """The finest feature stride any axial-attention layer of the model runs at, or None."""
    if model_config.backbone not in ARCHITECTURES:
        return None
    return min_axial_stride(model_config.backbone, int(model_config.output_stride))


def max_input_side(model_config) -> int | None:
    """The largest input height and width the network takes (None: no limit)."""
    stride = axial_stride(model_config)
    return None if stride is None else (MAX_LENGTH - 1) * stride + 1


def describe_limit(model_config) -> str:
    """Why the network has its size limit, for notes and errors ("" when it has none)."""
    stride = axial_stride(model_config)
    if stride is None:
        return ""
    return (
        f"{model_config.backbone} takes at most {max_input_side(model_config)} pixels per side "
        f"(axial attention over at most {MAX_LENGTH} positions per axis at stride {stride})"
    )
