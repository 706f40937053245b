"""Read a deeplab2 experiment textproto (``configs/*/panoptic_deeplab/*.textproto``) as a Config.

The file is parsed by protobuf's own ``text_format`` against a schema written here (``_schema``),
which declares only the fields the importer reads, in deeplab2's ``config.proto`` field numbers and
defaults. Two passes keep the model strict and the rest lenient:

* ``model_options`` is parsed **strictly**: a field the schema does not declare (another meta
  architecture, a depth head, a future option) is a ConfigError naming it, because it would change
  the network. Declared fields whose values we cannot reproduce (``decoder_conv_type:
  "standard_conv"``, squeeze-and-excite in a ResNet, ...) are rejected by ``to_config``.
* everything else (trainer, data, evaluator options) is parsed with ``allow_unknown_field``: paths
  to TFRecords, checkpoint schedules and the like do not change the model and are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config, DecoderConfig
from ..errors import ConfigError
from ..model.backbones.architectures import ARCHITECTURES

PACKAGE = "deeplab2"
# deeplab2's data set name -> our dataset spec name (datasets/specs.py).
DATASETS = {
    "cityscapes_panoptic": "cityscapes",
    "coco_panoptic": "coco",
    "kitti_step": "kitti_step",
}
MOBILENETS = ("mobilenet_v3_large", "mobilenet_v3_small")
# deeplab2's Axial-ResNet family as Panoptic-DeepLab encoders (model/backbones/resnet.py).
RESNET_FAMILY = tuple(ARCHITECTURES)
BACKBONES = (*RESNET_FAMILY, *MOBILENETS)
CONV_TYPES = {"depthwise_separable_conv": "separable", "standard_conv": "standard"}

# (message, [(field, number, type, label, default or type name)]); type "msg" takes a message name.
_O, _R = "optional", "repeated"
_MESSAGES = {
    "ExperimentOptions": [
        ("experiment_name", 1, "string", _O, None),
        ("model_options", 2, "msg", _O, "ModelOptions"),
        ("trainer_options", 3, "msg", _O, "TrainerOptions"),
        ("train_dataset_options", 4, "msg", _O, "DatasetOptions"),
        ("evaluator_options", 5, "msg", _O, "EvaluatorOptions"),
        ("eval_dataset_options", 6, "msg", _O, "DatasetOptions"),
    ],
    "ModelOptions": [
        ("backbone", 1, "msg", _O, "BackboneOptions"),
        ("decoder", 2, "msg", _O, "DecoderOptions"),
        ("panoptic_deeplab", 5, "msg", _O, "PanopticDeeplabOptions"),
        ("initial_checkpoint", 6, "string", _O, None),
        ("restore_semantic_last_layer_from_initial_checkpoint", 8, "bool", _O, "true"),
        ("restore_instance_last_layer_from_initial_checkpoint", 9, "bool", _O, "true"),
    ],
    "BackboneOptions": [
        ("name", 1, "string", _O, "resnet50"),
        ("output_stride", 2, "int32", _O, "32"),
        ("pretrained_weights", 3, "string", _O, None),
        ("use_squeeze_and_excite", 4, "bool", _O, "false"),
        ("drop_path_keep_prob", 5, "float", _O, "1.0"),  # training-time only
        ("drop_path_schedule", 6, "string", _O, "constant"),
        ("stem_width_multiplier", 7, "float", _O, "1.0"),
        ("backbone_width_multiplier", 8, "float", _O, "1.0"),
        ("backbone_layer_multiplier", 9, "float", _O, "1.0"),
        ("use_sac_beyond_stride", 10, "int32", _O, "-1"),
    ],
    "DecoderOptions": [
        ("feature_key", 1, "string", _O, None),
        ("decoder_channels", 2, "int32", _O, "256"),
        ("aspp_channels", 3, "int32", _O, "256"),
        ("atrous_rates", 4, "int32", _R, None),
        ("decoder_conv_type", 5, "string", _O, "depthwise_separable_conv"),
        ("aspp_use_only_1x1_proj_conv", 6, "bool", _O, "false"),
    ],
    "LowLevelOptions": [
        ("feature_key", 1, "string", _O, None),
        ("channels_project", 2, "int32", _O, None),
    ],
    "HeadOptions": [
        ("output_channels", 1, "int32", _O, None),
        ("head_channels", 2, "int32", _O, None),
        ("head_conv_type", 3, "string", _O, "depthwise_separable_conv"),
        ("max_value_after_activation", 4, "float", _O, "0"),
        ("min_value_after_activation", 5, "float", _O, "0"),
    ],
    "InstanceOptions": [
        ("enable", 1, "bool", _O, "true"),
        ("low_level_override", 2, "msg", _R, "LowLevelOptions"),
        ("instance_decoder_override", 3, "msg", _O, "DecoderOptions"),
        ("center_head", 4, "msg", _O, "HeadOptions"),
        ("regression_head", 5, "msg", _O, "HeadOptions"),
        ("next_regression_head", 6, "msg", _O, "HeadOptions"),  # not built by Panoptic-DeepLab
    ],
    "PanopticDeeplabOptions": [
        ("low_level", 1, "msg", _R, "LowLevelOptions"),
        ("instance", 2, "msg", _O, "InstanceOptions"),
        ("semantic_head", 3, "msg", _O, "HeadOptions"),
        ("depth_head", 4, "msg", _O, "HeadOptions"),  # not built by Panoptic-DeepLab
    ],
    "TrainerOptions": [
        ("loss_options", 5, "msg", _O, "LossOptions"),
        ("solver_options", 6, "msg", _O, "SolverOptions"),
    ],
    "SolverOptions": [
        ("use_sync_batchnorm", 1, "bool", _O, "true"),
        ("base_learning_rate", 3, "float", _O, "0.001"),
        ("poly_learning_power", 4, "float", _O, "0.9"),
        ("poly_end_learning_rate", 5, "float", _O, "0.0"),
        ("warmup_steps", 6, "int32", _O, "0"),
        ("training_number_of_steps", 11, "int32", _O, "60000"),
        ("batchnorm_momentum", 14, "float", _O, "0.99"),
        ("batchnorm_epsilon", 15, "float", _O, "0.001"),
    ],
    "LossOptions": [
        ("semantic_loss", 1, "msg", _O, "SingleLossOptions"),
        ("center_loss", 2, "msg", _O, "SingleLossOptions"),
        ("regression_loss", 3, "msg", _O, "SingleLossOptions"),
    ],
    "SingleLossOptions": [
        ("name", 1, "string", _O, None),
        ("weight", 2, "float", _O, "1.0"),
        ("top_k_percent", 3, "float", _O, "1.0"),
    ],
    "DatasetOptions": [
        ("dataset", 1, "string", _O, None),
        ("batch_size", 3, "int32", _O, "32"),
        ("crop_size", 4, "int32", _R, None),
        ("min_resize_value", 5, "int32", _R, None),
        ("max_resize_value", 6, "int32", _R, None),
        ("resize_factor", 7, "int32", _O, None),
        ("augmentations", 8, "msg", _O, "AugmentationOptions"),
        ("sigma", 9, "float", _O, "8.0"),
        ("increase_small_instance_weights", 10, "bool", _O, "false"),
        ("small_instance_threshold", 11, "int32", _O, "4096"),
        ("small_instance_weight", 12, "float", _O, "3.0"),
    ],
    "AugmentationOptions": [
        ("min_scale_factor", 1, "float", _O, "1.0"),
        ("max_scale_factor", 2, "float", _O, "1.0"),
        ("scale_factor_step_size", 3, "float", _O, "0.25"),
    ],
    "EvaluatorOptions": [
        ("add_flipped_images", 5, "bool", _O, "false"),
        ("stuff_area_limit", 6, "int32", _O, "0"),
        ("center_score_threshold", 7, "float", _O, "0.1"),
        ("nms_kernel", 8, "int32", _O, "3"),
        ("keep_k_centers", 9, "int32", _O, "400"),
        ("eval_scales", 15, "float", _R, None),
        ("merge_semantic_and_instance_with_tf_op", 16, "bool", _O, "true"),
    ],
}


def _schema():
    """The ExperimentOptions message class, built once from ``_MESSAGES`` in a private pool."""
    global _EXPERIMENT
    if _EXPERIMENT is None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        F = descriptor_pb2.FieldDescriptorProto
        types = {
            "string": F.TYPE_STRING,
            "int32": F.TYPE_INT32,
            "float": F.TYPE_FLOAT,
            "bool": F.TYPE_BOOL,
            "msg": F.TYPE_MESSAGE,
        }
        proto = descriptor_pb2.FileDescriptorProto(
            name="pdl_deeplab2_subset.proto", package=PACKAGE, syntax="proto2"
        )
        for name, fields in _MESSAGES.items():
            message = proto.message_type.add(name=name)
            for fname, number, ftype, label, extra in fields:
                f = message.field.add(
                    name=fname,
                    number=number,
                    type=types[ftype],
                    label=F.LABEL_REPEATED if label == _R else F.LABEL_OPTIONAL,
                )
                if ftype == "msg":
                    f.type_name = f".{PACKAGE}.{extra}"
                elif extra is not None:
                    f.default_value = extra
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        _EXPERIMENT = message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"{PACKAGE}.ExperimentOptions")
        )
    return _EXPERIMENT


_EXPERIMENT = None


def model_options_span(text: str) -> tuple[int, int] | None:
    """Start and end offsets of the top-level ``model_options { ... }`` block (strings and ``#``
    comments skipped), or None if there is none."""
    depth, i, n = 0, 0, len(text)
    start = None
    while i < n:
        ch = text[i]
        if ch == "#":
            i = text.find("\n", i)
            i = n if i < 0 else i
            continue
        if ch in "\"'":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if ch in "{<":
            depth += 1
        elif ch in "}>":
            depth -= 1
            if depth == 0 and start is not None:
                return start, i + 1
        elif (
            depth == 0
            and start is None
            and text.startswith("model_options", i)
            and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))
        ):
            rest = text[i + len("model_options") :].lstrip()
            if rest[:1] in ("{", "<", ":"):
                start = i
        i += 1
    return None


def parse_textproto(path: str | Path):
    """Parse ``path`` into an ExperimentOptions message (see the module docstring)."""
    from google.protobuf import text_format

    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the config ({err}).") from None
    experiment = _schema()
    span = model_options_span(text)
    if span is None:
        raise ConfigError(
            f"{path}: no model_options block. Give the deeplab2 experiment textproto the model was "
            "trained with."
        )
    # Same line numbers as the file: everything but model_options blanked out.
    masked = "".join(c if c == "\n" else " " for c in text[: span[0]]) + text[span[0] : span[1]]
    try:
        text_format.Parse(masked, experiment())
    except text_format.ParseError as err:
        raise ConfigError(
            f"{path}: {_describe(str(err))} pdl import reproduces deeplab2's Panoptic-DeepLab with "
            "the options listed in docs/bundle-format.md; a field outside them would change the "
            "network, so it is not ignored. Remove it if it is not meant, or import a model "
            "without it."
        ) from None
    message = experiment()
    try:
        text_format.Parse(text, message, allow_unknown_field=True)
    except text_format.ParseError as err:
        raise ConfigError(f"{path}: not a valid textproto ({err}).") from None
    return message


def _describe(error: str) -> str:
    """'Message type "deeplab2.X" has no field named "y".' -> a sentence naming the field."""
    import re

    m = re.search(
        r'^(\d+):(\d+) : Message type "deeplab2\.(\w+)" has no field named "(\w+)"', error
    )
    if m:
        return (
            f"line {m.group(1)}: model field '{m.group(4)}' (in {m.group(3)}) is not supported "
            "by the importer."
        )
    return f"model_options is not valid ({error})."


# ------------------------------------------------------------------------------------------------
# ExperimentOptions -> our Config


@dataclass
class Imported:
    config: Config
    dataset: str | None  # our spec name, from the data set name (None if unknown)
    deeplab2_dataset: str
    semantic_outputs: int
    notes: list[str] = field(default_factory=list)


def to_config(message, source: str) -> Imported:
    """Our Config for a parsed ExperimentOptions; unsupported model settings raise ConfigError."""
    mo = message.model_options
    notes: list[str] = []

    def fail(where: str, what: str) -> None:
        raise ConfigError(f"{source}: model_options.{where}: {what}")

    backbone = mo.backbone
    if backbone.name in ("max_deeplab_s", "max_deeplab_l"):
        fail(
            "backbone.name",
            f"'{backbone.name}' is MaX-DeepLab's whole encoder (transformer and extra decoder), "
            f"not a Panoptic-DeepLab backbone; its backbone alone is '{backbone.name}_backbone'.",
        )
    if backbone.name not in BACKBONES:
        fail(
            "backbone.name",
            f"'{backbone.name}' is not supported; pdl import reads {', '.join(BACKBONES)}.",
        )
    if backbone.output_stride not in (8, 16, 32):
        fail("backbone.output_stride", f"{backbone.output_stride} is not supported (8, 16 or 32).")
    if backbone.drop_path_schedule not in ("constant", "linear"):
        fail(
            "backbone.drop_path_schedule",
            f"'{backbone.drop_path_schedule}' is not one of deeplab2's (constant, linear).",
        )
    if not 0.0 < backbone.drop_path_keep_prob <= 1.0:
        fail("backbone.drop_path_keep_prob", f"{backbone.drop_path_keep_prob} is not in (0, 1].")
    mobilenet = backbone.name in MOBILENETS
    if mobilenet:  # deeplab2's create_mobilenet_encoder asserts these
        for field_name, value, required in (
            ("use_squeeze_and_excite", backbone.use_squeeze_and_excite, True),
            ("drop_path_keep_prob", backbone.drop_path_keep_prob, 1.0),
            ("use_sac_beyond_stride", backbone.use_sac_beyond_stride, -1),
            ("backbone_layer_multiplier", backbone.backbone_layer_multiplier, 1.0),
        ):
            if value != required:
                fail(
                    f"backbone.{field_name}",
                    f"{value} is not accepted by deeplab2 for MobileNetV3 (it must be {required}).",
                )
        if backbone.stem_width_multiplier != 1.0:
            notes.append(
                "backbone.stem_width_multiplier is ignored for MobileNetV3, as deeplab2 ignores it"
            )
    elif backbone.backbone_layer_multiplier <= 0:
        fail(
            "backbone.backbone_layer_multiplier",
            f"{backbone.backbone_layer_multiplier} must be > 0.",
        )
    if not mo.HasField("panoptic_deeplab"):
        fail("panoptic_deeplab", "missing: only Panoptic-DeepLab models can be imported.")
    pd = mo.panoptic_deeplab
    inst = pd.instance
    if not inst.enable:
        fail(
            "panoptic_deeplab.instance.enable",
            "false (a semantic-only model, no center or offset heads) is not a panoptic model; "
            "a bundle needs all three heads.",
        )
    for where, present in (
        ("panoptic_deeplab.depth_head", pd.HasField("depth_head")),
        ("panoptic_deeplab.instance.next_regression_head", inst.HasField("next_regression_head")),
    ):
        if present:
            notes.append(
                f"model_options.{where} is ignored: deeplab2's Panoptic-DeepLab builds no such head"
            )

    sem_dec = mo.decoder
    inst_dec = (
        inst.instance_decoder_override if inst.HasField("instance_decoder_override") else sem_dec
    )
    decoders = {}
    for branch, where, dec in (
        ("semantic", "decoder", sem_dec),
        ("instance", "panoptic_deeplab.instance.instance_decoder_override", inst_dec),
    ):
        if dec.decoder_conv_type not in CONV_TYPES:
            fail(
                f"{where}.decoder_conv_type",
                f"'{dec.decoder_conv_type}' is not supported ({', '.join(CONV_TYPES)}).",
            )
        if not dec.aspp_use_only_1x1_proj_conv and len(dec.atrous_rates) != 3:
            fail(f"{where}.atrous_rates", f"needs three rates, got {list(dec.atrous_rates)}.")
        decoders[branch] = dec

    sem_low = [(lv.feature_key, lv.channels_project) for lv in pd.low_level]
    inst_low = [(lv.feature_key, lv.channels_project) for lv in inst.low_level_override] or sem_low
    for where, low in (
        ("panoptic_deeplab.low_level", sem_low),
        ("panoptic_deeplab.instance.low_level_override", inst_low),
    ):
        for key, channels in low:
            if not key or not channels:
                fail(where, f"every entry needs feature_key and channels_project, got {low}.")

    heads = {
        "semantic_head": pd.semantic_head,
        "instance.center_head": inst.center_head,
        "instance.regression_head": inst.regression_head,
    }
    for where, head in heads.items():
        if head.head_conv_type not in CONV_TYPES:
            fail(
                f"panoptic_deeplab.{where}.head_conv_type",
                f"'{head.head_conv_type}' is not supported ({', '.join(CONV_TYPES)}).",
            )
        if head.max_value_after_activation or head.min_value_after_activation:
            notes.append(
                f"model_options.panoptic_deeplab.{where}: min/max_value_after_activation is "
                "ignored, as deeplab2's Panoptic-DeepLab heads ignore it"
            )
        if not head.head_channels:
            fail(f"panoptic_deeplab.{where}.head_channels", "missing.")
    for where, expected in (("instance.center_head", 1), ("instance.regression_head", 2)):
        got = heads[where].output_channels
        if got not in (0, expected):
            fail(f"panoptic_deeplab.{where}.output_channels", f"{got} (must be {expected}).")

    solver = message.trainer_options.solver_options
    train_data, eval_data = message.train_dataset_options, message.eval_dataset_options
    train_crop = tuple(train_data.crop_size) or tuple(eval_data.crop_size)
    eval_crop = tuple(eval_data.crop_size) or train_crop
    if len(train_crop) != 2:
        raise ConfigError(
            f"{source}: train_dataset_options.crop_size must give height and width, got "
            f"{list(train_crop)}."
        )
    if eval_crop != train_crop:
        raise ConfigError(
            f"{source}: eval_dataset_options.crop_size {list(eval_crop)} differs from the train "
            f"crop {list(train_crop)}; here one crop sets both the ASPP pooling window and the "
            "eval padding. Set both to the same size."
        )
    evaluator = message.evaluator_options
    if (
        evaluator.eval_scales and list(evaluator.eval_scales) != [1.0]
    ) or evaluator.add_flipped_images:
        notes.append(
            "evaluator_options asks for test-time augmentation (scales "
            f"{list(evaluator.eval_scales) or [1.0]}, flip {evaluator.add_flipped_images}); pass "
            "--scales / --flip to pdl predict or evaluate for that"
        )

    config = Config()
    config.name = message.experiment_name or Path(source).stem
    m = config.model
    m.backbone = backbone.name
    m.output_stride = int(backbone.output_stride)
    m.backbone_width = float(backbone.backbone_width_multiplier)
    m.stem_width = (
        None
        if mobilenet or backbone.stem_width_multiplier == backbone.backbone_width_multiplier
        else float(backbone.stem_width_multiplier)
    )
    if not mobilenet:
        m.backbone_layers = _f32(backbone.backbone_layer_multiplier)
        m.sac_beyond_stride = max(0, int(backbone.use_sac_beyond_stride))
        m.squeeze_excite = bool(backbone.use_squeeze_and_excite)
        m.drop_path_keep_prob = _f32(backbone.drop_path_keep_prob)
        m.drop_path_schedule = str(backbone.drop_path_schedule)
    m.low_level_endpoints = tuple(k for k, _ in sem_low)
    if len(sem_dec.atrous_rates) == 3:
        m.aspp_rates = tuple(int(r) for r in sem_dec.atrous_rates)
    m.aspp_separable = False
    m.aspp_dropout = 0.1
    for branch, low, head_name in (
        ("semantic", sem_low, "semantic_head"),
        ("instance", inst_low, "instance.center_head"),
    ):
        dec = decoders[branch]
        rates = tuple(int(r) for r in dec.atrous_rates)
        keys = tuple(k for k, _ in low)
        decoder_config = DecoderConfig(
            aspp_channels=int(dec.aspp_channels),
            low_level_project_channels=tuple(int(c) for _, c in low),
            decoder_channels=int(dec.decoder_channels),
            head_channels=int(heads[head_name].head_channels),
            feature_key=dec.feature_key or "res5",
            low_level_endpoints=None if keys == m.low_level_endpoints else keys,
            aspp_rates=None if rates in (m.aspp_rates, ()) else rates,
            aspp_projection_only=bool(dec.aspp_use_only_1x1_proj_conv),
            fuse_conv=CONV_TYPES[dec.decoder_conv_type],
            head_conv=CONV_TYPES[heads[head_name].head_conv_type],
        )
        setattr(m, f"{branch}_decoder", decoder_config)
    center, regression = inst.center_head, inst.regression_head
    if regression.head_channels != center.head_channels:
        m.instance_decoder.offset_head_channels = int(regression.head_channels)
    if regression.head_conv_type != center.head_conv_type:
        m.instance_decoder.offset_head_conv = CONV_TYPES[regression.head_conv_type]
    m.bn_momentum = _f32(solver.batchnorm_momentum)
    m.bn_epsilon = _f32(solver.batchnorm_epsilon)
    m.sync_batch_norm = bool(solver.use_sync_batchnorm)

    deeplab2_dataset = train_data.dataset or eval_data.dataset
    d = config.dataset
    d.name = DATASETS.get(deeplab2_dataset, deeplab2_dataset)
    d.crop_size = (int(train_crop[0]), int(train_crop[1]))
    d.min_resize_value = int(eval_data.min_resize_value[0]) if eval_data.min_resize_value else 0
    d.max_resize_value = int(eval_data.max_resize_value[0]) if eval_data.max_resize_value else 0
    aug = train_data.augmentations
    d.min_scale, d.max_scale, d.scale_step = (
        _f32(aug.min_scale_factor),
        _f32(aug.max_scale_factor),
        _f32(aug.scale_factor_step_size),
    )
    d.sigma = _f32(train_data.sigma)
    d.increase_small_instance_weights = bool(train_data.increase_small_instance_weights)
    d.small_instance_area = int(train_data.small_instance_threshold)
    d.small_instance_weight = _f32(train_data.small_instance_weight)

    losses = message.trainer_options.loss_options
    config.loss.semantic_weight = _f32(losses.semantic_loss.weight)
    config.loss.center_weight = _f32(losses.center_loss.weight)
    config.loss.offset_weight = _f32(losses.regression_loss.weight)
    config.loss.top_k_percent = _f32(losses.semantic_loss.top_k_percent)
    t = config.train
    t.batch_size = int(train_data.batch_size)
    t.steps = int(solver.training_number_of_steps)
    t.base_learning_rate = _f32(solver.base_learning_rate)
    t.end_learning_rate = _f32(solver.poly_end_learning_rate)
    t.poly_power = _f32(solver.poly_learning_power)
    t.warmup_steps = int(solver.warmup_steps)

    p = config.postprocess
    p.center_threshold = _f32(evaluator.center_score_threshold)
    p.nms_kernel = int(evaluator.nms_kernel)
    p.keep_k_centers = int(evaluator.keep_k_centers)
    p.stuff_area_limit = int(evaluator.stuff_area_limit)
    return Imported(
        config=config,
        dataset=DATASETS.get(deeplab2_dataset),
        deeplab2_dataset=deeplab2_dataset,
        semantic_outputs=int(pd.semantic_head.output_channels),
        notes=notes,
    )


def _f32(value: float) -> float:
    """A float field as written in the file (protobuf keeps float32: 1e-05 reads 9.99999974e-06)."""
    return float(f"{value:.7g}")
