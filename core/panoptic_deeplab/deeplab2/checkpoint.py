"""deeplab2 checkpoints: find one, read its variables, and map them one to one onto our model.

deeplab2's trainer saves ``tf.train.Checkpoint(global_step=..., **DeepLab.checkpoint_items)``, so
the keys are object paths such as ``encoder/_blocks/3/_conv2_bn_act/_batch_norm/gamma/.ATTRIBUTES/
VARIABLE_VALUE``. ``checkpoint_name`` translates each such path into the name of our Keras layer and
weight (``expanded_conv_2_depthwise_bn``, ``gamma``); the layer names are those of ``model/``. A
SavedModel's ``variables/variables`` uses the same keys.

The mapping must be a bijection: every weight of our model gets exactly one checkpoint variable of
the same shape, and every model variable of the checkpoint is used (the optimizer's slots and
counters are not model variables). Anything else is a ``CheckpointError`` listing what is left over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from ..model.backbones.architectures import ARCHITECTURES, stem_name

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
# Not model weights: counters, the object graph, the optimizer and its slots.
NON_MODEL = re.compile(
    r"^(_CHECKPOINTABLE_OBJECT_GRAPH|global_step|save_counter|optimizer)(/|$)|/\.OPTIMIZER_SLOT/"
)

RESNET_FAMILY = frozenset(ARCHITECTURES)
# Number of inverted bottlenecks: deeplab2 numbers the stem 0, the blocks 1..n and the last 1x1
# conv n+1.
MOBILENET_BLOCKS = {"mobilenet_v3_small": 11, "mobilenet_v3_large": 15}

# (deeplab2 path of one Conv2DSame / DepthwiseConv2DSame, our layer-name stem). The conv is
# ``<stem>_conv`` or the name a rule gives, its batch norm ``<stem>_bn``.
_DECODER_RULES = [
    (r"(semantic|instance)_decoder/_aspp/_conv_bn_act", r"\1_aspp_conv1x1"),
    (r"(semantic|instance)_decoder/_aspp/_aspp_conv(\d)/_conv_bn_act", r"\1_aspp_atrous\2"),
    (r"(semantic|instance)_decoder/_aspp/_aspp_pool/_conv_bn_act", r"\1_aspp_pool_proj"),
    (r"(semantic|instance)_decoder/_aspp/_proj_conv_bn_act", r"\1_aspp_project"),
    (r"(semantic|instance)_decoder/_low_level_conv(\d)", r"\1_decoder_project\2"),
]
# The 5x5 convs of decoders and heads: SeparableConv2DSame (".../_depthwise", ".../_pointwise",
# each with its BN) or, with decoder_conv_type / head_conv_type standard_conv, a Conv2DSame.
_FIVE_BY_FIVE_RULES = [
    (r"(semantic|instance)_decoder/_fusion_conv(\d)/_conv1_bn_act", r"\1_decoder_fuse\2"),
    (r"semantic_head_without_last_layer/_conv1_bn_act", "semantic_head_conv"),
    (r"instance_center_head_without_last_layer/_conv1_bn_act", "center_head_conv"),
    (r"instance_regression_head_without_last_layer/_conv1_bn_act", "offset_head_conv"),
]
_LAST_LAYERS = {
    "semantic_last_layer": "semantic_head_output",
    "instance_center_head_last_layer": "center_head_output",
    "instance_regression_head_last_layer": "offset_head_output",
}
_BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")
# deeplab2's Axial-ResNet family (model/backbones/resnet.py). A block's convs: "<block>_<k>".
_RESNET_CONVS = {
    "_conv1_bn_act": "1",
    "_conv2_bn_act": "2",
    "_conv2_bn": "2",  # the second conv of a basic block
    "_conv3_bn": "3",
    "_shortcut": "0",
}
_RESNET_BLOCK = re.compile(
    r"encoder/_(stage|decoder_stage)(\d)/_block(\d+)/(_conv1_bn_act|_conv2_bn_act|_conv2_bn|"
    r"_conv3_bn|_shortcut|_attention|_squeeze_and_excite)(/.*)?"
)
_AXIAL_NORMS = {"_batch_norm_qkv": "qkv", "_batch_norm_similarity": "similarity"}
_AXIAL_NORMS["_batch_norm_retrieved_output"] = "retrieved_output"
_MOBILENET_CONVS = {"_conv1_bn_act": "expand", "_conv2_bn_act": "depthwise", "_conv3_bn": "project"}


def checkpoint_name(key: str, backbone: str) -> tuple[str, str] | None:
    """Our ``(layer name, weight name)`` for a deeplab2 checkpoint key; None if no rule fits it."""
    path = key[: -len(SUFFIX)] if key.endswith(SUFFIX) else key
    head, _, weight = path.rpartition("/")
    if head in _LAST_LAYERS and weight in ("kernel", "bias"):
        return _LAST_LAYERS[head], weight
    if backbone in RESNET_FAMILY and path.startswith("encoder/"):
        return _resnet_family_name(path, stem_name(backbone))
    # A conv ("<prefix>/_conv/kernel", "<prefix>/_depthwise_conv/depthwise_kernel") or its BN.
    for part, kind in (("/_conv", "conv"), ("/_depthwise_conv", "conv"), ("/_batch_norm", "bn")):  # noqa: B007 - kind is read after the loop
        if head.endswith(part):
            prefix = head[: -len(part)]
            break
    else:
        return _squeeze_excite_name(head, weight, backbone)
    if (kind == "bn") != (weight in _BN_WEIGHTS) or (
        kind == "conv" and weight not in ("kernel", "depthwise_kernel")
    ):
        return None
    stem = _layer_stem(prefix, backbone)
    if stem is None:
        return None
    conv_name, bn_name = stem
    return (bn_name, weight) if kind == "bn" else (conv_name, "kernel")


def _layer_stem(prefix: str, backbone: str) -> tuple[str, str] | None:
    """``(conv layer, bn layer)`` of one deeplab2 conv-with-BN block."""
    for pattern, repl in _DECODER_RULES:
        if re.fullmatch(pattern, prefix):
            stem = re.sub(pattern, repl, prefix)
            return f"{stem}_conv", f"{stem}_bn"
    for pattern, repl in _FIVE_BY_FIVE_RULES:
        if re.fullmatch(pattern, prefix):  # a standard conv
            stem = re.sub(pattern, repl, prefix)
            return f"{stem}_conv", f"{stem}_bn"
        base, _, part = prefix.rpartition("/_")
        if part in ("depthwise", "pointwise") and re.fullmatch(pattern, base):
            stem = f"{re.sub(pattern, repl, base)}_{part}"
            return stem, f"{stem}_bn"
    if backbone in MOBILENET_BLOCKS:
        return _mobilenet_stem(prefix, MOBILENET_BLOCKS[backbone])
    return None


def _resnet_family_name(path: str, single_stem: str) -> tuple[str, str] | None:
    """Our (layer, weight) for an encoder variable of deeplab2's Axial-ResNet family."""
    head, _, weight = path.rpartition("/")
    stems = {
        "encoder/_stem": single_stem,  # the 7x7 stem (conv1) or the wide ResNets' 3x3 one (stem)
        "encoder/_stem/_conv1_bn_act": "stem1",  # the inception stem
        "encoder/_stem/_conv2_bn_act": "stem2",
        "encoder/_stem/_conv3_bn": "stem3",
    }
    for prefix, name in stems.items():
        if head in (f"{prefix}/_conv", f"{prefix}/_batch_norm"):
            return _conv_or_norm(name, head, weight)
    fuse = re.fullmatch(
        r"encoder/_decoder_stage(\d+)_resized_fuse/_(strided|resized)_conv_bn(\d+)/(_conv|_batch_norm)",
        head,
    )
    if fuse:  # the stacked decoder's feature fusion (ResizedFuse)
        stage, kind, index, _ = fuse.groups()
        return _conv_or_norm(f"decoder{stage}_{kind}{index}", head, weight)
    m = _RESNET_BLOCK.fullmatch(head)
    if not m:
        return None
    kind, stage, block, part, rest = m.groups()
    block_name = f"{'conv' if kind == 'stage' else 'decoder'}{stage}_block{block}"
    rest = rest or ""
    if part == "_squeeze_and_excite":
        return (f"{block_name}_se", weight) if rest == "/_se_conv" else None
    if part == "_attention":
        a = re.fullmatch(r"/_(height|width)_axis(/_\w+)?", rest)
        if not a:
            return None
        layer = f"{block_name}_attention_{a.group(1)}"
        inner = (a.group(2) or "")[1:]
        if not inner and weight == "qkv_kernel":
            return layer, weight
        if inner in ("_query_rpe", "_key_rpe", "_value_rpe") and weight == "embeddings":
            return layer, inner[1:]
        if inner in _AXIAL_NORMS and weight in _BN_WEIGHTS:
            return layer, f"{_AXIAL_NORMS[inner]}_{weight}"
        return None
    conv = f"{block_name}_{_RESNET_CONVS[part]}"
    if rest in ("/_conv", "/_batch_norm"):
        return _conv_or_norm(conv, head, weight)
    if rest == "/_conv/_switch" and weight in ("kernel", "bias"):
        return f"{conv}_conv", f"switch_{weight}"
    context = re.fullmatch(r"/_(pre|post)_global_context/convolution", rest)
    if context and weight in ("kernel", "bias"):
        return f"{conv}_{context.group(1)}_context", weight
    return None


def _conv_or_norm(stem: str, head: str, weight: str) -> tuple[str, str] | None:
    """``<stem>_conv`` / kernel or ``<stem>_bn`` / a batch-norm weight."""
    if head.endswith("/_conv") and weight == "kernel":
        return f"{stem}_conv", weight
    if head.endswith("/_batch_norm") and weight in _BN_WEIGHTS:
        return f"{stem}_bn", weight
    return None


def _mobilenet_prefix(index: int) -> str:
    """Our name prefix of deeplab2's block ``index`` (1-based), as Keras' MobileNetV3 names it."""
    return "expanded_conv_" if index == 1 else f"expanded_conv_{index - 1}_"


def _mobilenet_stem(prefix: str, blocks: int) -> tuple[str, str] | None:
    m = re.fullmatch(r"encoder/_blocks/(\d+)(?:/(_conv1_bn_act|_conv2_bn_act|_conv3_bn))?", prefix)
    if not m:
        return None
    index, part = int(m.group(1)), m.group(2)
    if part is None:
        if index == 0:
            return "conv", "conv_bn"
        if index == blocks + 1:
            return "conv_1", "conv_1_bn"
        return None
    if not 1 <= index <= blocks:
        return None
    stem = _mobilenet_prefix(index) + _MOBILENET_CONVS[part]
    return stem, f"{stem}_bn"


def _squeeze_excite_name(head: str, weight: str, backbone: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"encoder/_blocks/(\d+)/_squeeze_excitation/_se_(reduce|expand)", head)
    if not m or backbone not in MOBILENET_BLOCKS or weight not in ("kernel", "bias"):
        return None
    if not 1 <= int(m.group(1)) <= MOBILENET_BLOCKS[backbone]:
        return None
    suffix = "squeeze_excite_conv" if m.group(2) == "reduce" else "squeeze_excite_conv_1"
    return _mobilenet_prefix(int(m.group(1))) + suffix, weight


# ------------------------------------------------------------------------------------------------
# Finding and reading a checkpoint


def resolve_checkpoint(path: str | Path) -> str:
    """The checkpoint prefix for ``path``: a prefix (``.../ckpt-60000``), a directory with a
    ``checkpoint`` state file (its latest entry) or with ``ckpt-N.index`` files (the largest N), or
    a SavedModel directory (``variables/variables``)."""
    import tensorflow as tf

    path = Path(path)
    if path.is_dir():
        if (path / "variables" / "variables.index").is_file():
            return str(path / "variables" / "variables")
        if (path / "variables.index").is_file():  # the variables/ folder itself
            return str(path / "variables")
        if (path / "checkpoint").is_file():
            latest = tf.train.latest_checkpoint(str(path))
            if latest is None or not Path(latest + ".index").is_file():
                raise CheckpointError(
                    f"{path / 'checkpoint'}: names no checkpoint whose .index file exists here. "
                    "Copy the ckpt-N.index and ckpt-N.data-* files next to it, or give a "
                    "checkpoint prefix."
                )
            return latest
        numbered = sorted(
            path.glob("ckpt-*.index"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0)
        )
        if numbered:  # an unpacked model-zoo archive may come without the 'checkpoint' state file
            return str(numbered[-1])[: -len(".index")]
        raise CheckpointError(
            f"{path}: neither a checkpoint directory (no 'checkpoint' file) nor a SavedModel (no "
            "variables/variables.index). Give a prefix such as DIR/ckpt-60000, its folder, or a "
            "SavedModel folder."
        )
    prefix = str(path)[: -len(".index")] if str(path).endswith(".index") else str(path)
    if not Path(prefix + ".index").is_file():
        raise CheckpointError(
            f"{path}: no checkpoint here ({prefix}.index not found). Give a prefix such as "
            "DIR/ckpt-60000 (the part before .index), its folder, or a SavedModel folder."
        )
    return prefix


@dataclass
class CheckpointContents:
    prefix: str
    shapes: dict[str, tuple[int, ...]]  # model variables only, keys without the .ATTRIBUTES suffix
    skipped: list[str]  # non-model entries (optimizer, counters)
    reader: object  # tf.train.CheckpointReader

    def read(self, key: str) -> np.ndarray:
        try:
            return self.reader.get_tensor(key + SUFFIX if not key.endswith(SUFFIX) else key)
        except Exception as err:  # noqa: BLE001 - DataLossError, OutOfRange...: the data file is damaged
            raise CheckpointError(
                f"{self.prefix}: cannot read variable {key} ({type(err).__name__}: "
                f"{str(err).splitlines()[0]}). The checkpoint's data file is truncated or damaged; "
                "copy it again."
            ) from None


def open_checkpoint(prefix: str) -> CheckpointContents:
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
        shape_map = reader.get_variable_to_shape_map()
    except Exception as err:  # noqa: BLE001 - TF raises several types for an unreadable index
        raise CheckpointError(
            f"{prefix}: not a readable TensorFlow checkpoint ({type(err).__name__}: "
            f"{str(err).splitlines()[0]}). Give the checkpoint deeplab2 saved (ckpt-N with its "
            ".index and .data-* files)."
        ) from None
    shapes, skipped = {}, []
    for key, shape in shape_map.items():
        if NON_MODEL.search(key):
            skipped.append(key)
            continue
        shapes[key[: -len(SUFFIX)] if key.endswith(SUFFIX) else key] = tuple(int(d) for d in shape)
    return CheckpointContents(prefix=prefix, shapes=shapes, skipped=sorted(skipped), reader=reader)


# ------------------------------------------------------------------------------------------------
# Mapping onto our model


def model_weights(model) -> dict[tuple[str, str], object]:
    """``(layer name, weight name) -> variable`` over every layer of ``model`` and nested models."""
    import keras

    out: dict[tuple[str, str], object] = {}

    def visit(layer):
        if isinstance(layer, keras.Model):
            for sub in layer.layers:
                visit(sub)
            return
        for weight in layer.weights:
            key = (layer.name, weight.name.split("/")[-1].split(":")[0])
            if key in out:
                raise RuntimeError(f"two weights are called {key}")
            out[key] = weight

    visit(model)
    return out


@dataclass
class Mapping:
    pairs: dict[str, tuple[str, str]]  # checkpoint key -> (layer, weight)
    values: int  # number of scalars mapped


def map_variables(shapes: dict[str, tuple[int, ...]], model, backbone: str, source: str) -> Mapping:
    """Pair every checkpoint model variable with one weight of ``model`` (same shape), or raise a
    CheckpointError that lists what is unmatched on either side, with shapes."""
    ours = {key: tuple(int(d) for d in w.shape) for key, w in model_weights(model).items()}
    pairs: dict[str, tuple[str, str]] = {}
    taken: dict[tuple[str, str], str] = {}
    unknown, wrong_shape = [], []
    for key in sorted(shapes):
        target = checkpoint_name(key, backbone)
        if target is None or target not in ours:
            unknown.append(f"{key} {list(shapes[key])}")
        elif ours[target] != shapes[key]:
            wrong_shape.append(
                f"{key} {list(shapes[key])} -> {'/'.join(target)} {list(ours[target])}"
            )
        elif target in taken:  # two checkpoint variables for one weight: not a bijection
            unknown.append(
                f"{key} {list(shapes[key])} (as {'/'.join(target)}, already given by "
                f"{taken[target]})"
            )
        else:
            pairs[key] = target
            taken[target] = key
    used = set(pairs.values()) | {checkpoint_name(k, backbone) for k in shapes}
    missing = [f"{'/'.join(k)} {list(s)}" for k, s in sorted(ours.items()) if k not in used]
    if unknown or wrong_shape or missing:
        parts = []
        for title, items in (
            ("shapes differ", wrong_shape),
            ("checkpoint variables with no place in the model", unknown),
            ("model weights the checkpoint does not provide", missing),
        ):
            if items:
                shown = "\n    ".join(items[:40]) + (
                    f"\n    ... and {len(items) - 40} more" if len(items) > 40 else ""
                )
                parts.append(f"  {title} ({len(items)}):\n    {shown}")
        family = _backbone_family(shapes)
        if family and not backbone.startswith(family[0]):
            parts.insert(
                0, f"  the checkpoint holds a {family[1]} backbone, the config asks for {backbone}"
            )
        raise CheckpointError(
            f"{source}: the checkpoint does not match the model the config describes "
            f"({len(pairs)} of {len(shapes)} variables match).\n"
            + "\n".join(parts)
            + "\nFix: give the config the checkpoint was trained with (backbone, output stride, "
            "widths, channels, class count), or the checkpoint that belongs to this config."
        )
    values = int(sum(np.prod(shapes[k], dtype=np.int64) for k in pairs))
    return Mapping(pairs=pairs, values=values)


def _backbone_family(shapes) -> tuple[str, str] | None:
    """(name prefix, description) of the backbone a checkpoint's encoder keys belong to."""
    if any(k.startswith("encoder/_blocks/") for k in shapes):
        return "mobilenet_v3", "MobileNetV3"
    if any(k.startswith("encoder/_stage") for k in shapes):
        return "resnet50", "ResNet-50"
    return None


def assign_weights(contents: CheckpointContents, mapping: Mapping, model, progress=None) -> None:
    """Copy the mapped checkpoint values into ``model``. Every value is read before any is assigned,
    so a damaged data file leaves the model untouched."""
    weights = model_weights(model)
    values = {}
    for i, key in enumerate(sorted(mapping.pairs), start=1):
        values[key] = contents.read(key)
        if progress is not None:
            progress(i, len(mapping.pairs))
    for key, value in values.items():
        weights[mapping.pairs[key]].assign(value)
