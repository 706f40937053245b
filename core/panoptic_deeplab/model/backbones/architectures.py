"""deeplab2's Axial-ResNet family: which architecture each backbone name is (``resnet.py`` builds
them). Plain Python, so that the importer and the size rules can read it without TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass

HIGH_RESOLUTION_STRIDE = 4  # where MaX-DeepLab's stacked decoder turns back


@dataclass(frozen=True)
class Architecture:
    """One of deeplab2's ``axial_resnet_instances`` (as its builder configures an encoder)."""

    stem: str  # resnet | resnet_beta | wider_resnet
    blocks: tuple[int, int, int, int]  # stages 2-5 (the wide ResNets' stage 1 always has 3)
    axial_from: int = 0  # axial blocks where the stride reaches this (0: none)
    attention_expansion: int = 2  # width of an axial block's 1x1 conv, times f
    key_expansion: float = 1.0  # attention key / value depths, times f
    value_expansion: float = 2.0
    drop_path_from: int = 16  # drop path where the stride reaches this
    decoder_stacks: int = 0  # MaX-DeepLab-L's stacked decoder in the backbone


RESNET_BLOCKS, WIDE_BLOCKS = (3, 4, 6, 3), (3, 6, 3, 3)
_AXIAL_WIDE = dict(axial_from=16, attention_expansion=4, key_expansion=2.0, value_expansion=4.0)
ARCHITECTURES: dict[str, Architecture] = {
    "resnet50": Architecture("resnet", RESNET_BLOCKS),
    "resnet50_beta": Architecture("resnet_beta", RESNET_BLOCKS),
    # deeplab2's instances set width 0.5 for the -S variants, but its encoder builder always passes
    # the config's width, which wins: -S and -L differ only by the width given in the config.
    "axial_resnet_s": Architecture("resnet", RESNET_BLOCKS, axial_from=2),
    "axial_resnet_l": Architecture("resnet", RESNET_BLOCKS, axial_from=2),
    "axial_deeplab_s": Architecture("resnet_beta", RESNET_BLOCKS, axial_from=2),
    "axial_deeplab_l": Architecture("resnet_beta", RESNET_BLOCKS, axial_from=2),
    "wide_resnet41": Architecture("wider_resnet", WIDE_BLOCKS, drop_path_from=4),
    "swidernet": Architecture("wider_resnet", WIDE_BLOCKS, drop_path_from=4),
    "axial_swidernet": Architecture("wider_resnet", WIDE_BLOCKS, drop_path_from=4, **_AXIAL_WIDE),
    "max_deeplab_s_backbone": Architecture("resnet_beta", RESNET_BLOCKS, axial_from=16),
    "max_deeplab_l_backbone": Architecture(
        "wider_resnet", WIDE_BLOCKS, drop_path_from=4, decoder_stacks=1, **_AXIAL_WIDE
    ),
}


def min_axial_stride(name: str, output_stride: int) -> int | None:
    """The finest feature stride axial attention runs at (its input); None without axial blocks."""
    arch = ARCHITECTURES[name]
    if not arch.axial_from:
        return None
    # A block is axial once its (nominal) stride reaches axial_from; it runs on its input, whose
    # real stride is the nominal one capped at the output stride.
    return min(arch.axial_from, output_stride)


def stem_name(name: str) -> str:
    """Our layer name of a single-conv stem: ``conv1`` (7x7, Keras' ResNet50) or ``stem`` (3x3)."""
    return "stem" if ARCHITECTURES[name].stem == "wider_resnet" else "conv1"
