"""``pdl import deeplab2``: a deeplab2 Panoptic-DeepLab checkpoint + its config -> a model bundle.

Steps: read the config (deeplab2 textproto, or one of our presets / YAML files), pick the data set
spec, build our model, map the checkpoint's variables one to one onto it (``checkpoint.py``), copy
the values, and save a normal bundle. Every check runs before anything is written; the bundle
itself is written atomically by ``save_bundle``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config, load_config
from ..errors import CheckpointError, ConfigError
from . import checkpoint as ckpt
from .textproto import DATASETS, parse_textproto, to_config

TEXTPROTO_SUFFIXES = (".textproto", ".pbtxt", ".prototxt", ".txt")


@dataclass
class ImportResult:
    bundle: Path
    config: Config
    spec: object
    prefix: str
    mapped: int  # checkpoint variables copied
    values: int  # scalars copied
    params: int  # model parameter count
    skipped: list[str] = field(default_factory=list)  # non-model checkpoint entries
    notes: list[str] = field(default_factory=list)
    registered: Path | None = None  # the app work directory that lists the bundle


def read_config(
    config_arg: str, dataset_spec: str | None
) -> tuple[Config, object, int | None, list[str]]:
    """Config, dataset spec, the semantic head's output count from the textproto (None for our own
    configs) and notes."""
    from ..datasets.specs import get_dataset_spec

    path = Path(config_arg)
    notes: list[str] = []
    semantic_outputs = None
    if path.suffix in TEXTPROTO_SUFFIXES:
        if not path.is_file():
            raise ConfigError(
                f"{path}: config file not found. Give the deeplab2 experiment textproto the model "
                "was trained with."
            )
        imported = to_config(parse_textproto(path), str(path))
        config, notes, semantic_outputs = imported.config, imported.notes, imported.semantic_outputs
        name = dataset_spec or imported.dataset
        if name is None:
            raise ConfigError(
                f"{path}: data set '{imported.deeplab2_dataset}' has no class table here (known: "
                f"{', '.join(DATASETS)}). Give one with --dataset-spec NAME (cityscapes, coco, "
                "kitti_step, synthetic)."
            )
    else:
        config = load_config(config_arg)
        name = dataset_spec or config.dataset.name
    try:
        spec = get_dataset_spec(name)
    except ValueError as err:
        raise ConfigError(f"--dataset-spec: {err}.") from None
    config.dataset.name = name
    if semantic_outputs and semantic_outputs != spec.num_classes:
        raise ConfigError(
            f"{config_arg}: semantic_head.output_channels is {semantic_outputs} but the "
            f"'{spec.name}' class table has {spec.num_classes} classes. Give the matching "
            "--dataset-spec."
        )
    return config, spec, semantic_outputs, notes


def import_deeplab2(
    checkpoint: str | Path,
    config_arg: str,
    out: str | Path,
    *,
    dataset_spec: str | None = None,
    overwrite: bool = False,
    app_root: str | Path | None = None,
    log=None,
) -> ImportResult:
    from ..bundle import is_bundle, save_bundle
    from ..model.builder import build_model

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    out = Path(out)
    if out.exists() and not (is_bundle(out) and overwrite):
        what = (
            "a model bundle"
            if is_bundle(out)
            else ("a file" if out.is_file() else "a folder that is not a bundle")
        )
        if out.is_file() or is_bundle(out) or any(out.iterdir()):
            raise CheckpointError(
                f"{out}: already exists ({what}). Give a new --out folder"
                + (", or --overwrite to replace the bundle." if is_bundle(out) else ".")
            )

    config, spec, _, notes = read_config(config_arg, dataset_spec)
    m = config.model
    log(
        f"config: {m.backbone} OS{m.output_stride}, backbone width {m.backbone_width}, "
        f"{spec.num_classes} classes ({spec.name}), BN epsilon {m.bn_epsilon:g}"
    )
    prefix = ckpt.resolve_checkpoint(checkpoint)
    contents = ckpt.open_checkpoint(prefix)
    log(
        f"checkpoint: {prefix} ({len(contents.shapes)} model variables, {len(contents.skipped)} "
        "other entries)"
    )

    m.pretrained_backbone = None
    model = build_model(config, num_classes=spec.num_classes)
    mapping = ckpt.map_variables(contents.shapes, model, m.backbone, prefix)
    log(f"mapping: all {len(mapping.pairs)} variables pair one to one with the model's weights")

    step = max(1, len(mapping.pairs) // 4)

    def progress(i: int, n: int) -> None:
        if i % step == 0 or i == n:
            log(f"  read {i}/{n} variables")

    ckpt.assign_weights(contents, mapping, model, progress=progress)
    source = {
        "format": "deeplab2",
        "checkpoint": str(Path(prefix).resolve()),
        "config": str(config_arg),
    }
    steps = _global_step(contents)
    # fp32 unless asked otherwise: bfloat16 is verified on our trained models, not on imported
    # weights (on the random-weight deeplab2 fixtures it changes the class of 15-41 % of the
    # pixels; README, Precision).
    bundle = save_bundle(
        out, model, config, spec, metrics={}, steps=steps, source=source, precision="fp32"
    )
    log(
        "precision: fp32 by default (bundle.json); --precision auto or bf16 runs it in bfloat16 "
        "where the machine has it"
    )
    registered = _register(bundle, app_root, log)
    return ImportResult(
        bundle=bundle,
        config=config,
        spec=spec,
        prefix=prefix,
        mapped=len(mapping.pairs),
        values=mapping.values,
        params=int(model.count_params()),
        skipped=contents.skipped,
        notes=notes,
        registered=registered,
    )


def _global_step(contents: ckpt.CheckpointContents) -> int | None:
    try:
        return int(contents.reader.get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE"))
    except Exception:  # noqa: BLE001 - a SavedModel has no step counter
        return None


def _register(bundle: Path, root: str | Path | None, log) -> Path | None:
    """List the bundle among the models of the work directory ``root`` (its job store's registry);
    without one, nothing is registered (a throwaway import stays out of every list)."""
    if root is None:
        return None
    from ..jobs.store import JobStore

    root = Path(root).expanduser()
    try:
        JobStore(root).register_model(bundle, name=bundle.name, base_model="deeplab2 checkpoint")
        return root
    except Exception as err:  # noqa: BLE001 - the bundle is fine; only the app's list misses it
        log(
            f"note: could not add the bundle to the model list of {root} ({err}); open it with "
            f"pdl app --model {bundle}"
        )
        return None
