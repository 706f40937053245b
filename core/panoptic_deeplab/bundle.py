"""Model bundles: one directory with everything needed to run a trained model.

    DIR/bundle.json         format version, created time, backbone, steps, parameter count
    DIR/config.yaml         the full experiment config (model, dataset, post-processing, ...)
    DIR/dataset_spec.json   class names, colours, thing ids, label divisor, ignore label
    DIR/model.weights.h5    Keras weights of the network built by ``build_model(config)``
    DIR/metrics.json        training / evaluation metrics ({} when none)

A bundle is written to a temporary sibling directory and renamed into place, so a reader never sees
half a bundle. See docs/bundle-format.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from .config import Config, from_dict, save_config
from .datasets.specs import DatasetSpec
from .errors import CheckpointError, ConfigError

FORMAT_VERSION = 1
BUNDLE_FILES = ("bundle.json", "config.yaml", "dataset_spec.json", "model.weights.h5")
WEIGHTS_FILE = "model.weights.h5"


class Bundle:
    """A model bundle: its folder (None for a network built in memory), config, class table,
    metrics, ``bundle.json`` (``info``), the precision its network runs in, and the network
    (``model``, a ``keras.Model``), built from the folder's files on first use when not given, so
    that a command can check its other arguments first."""

    def __init__(
        self,
        path,
        config: Config,
        spec: DatasetSpec,
        model: Any = None,
        metrics: dict | None = None,
        info: dict | None = None,
        precision: Any = None,  # precision.Choice the network is built in
        input_shape: tuple[int, int] | None = None,
    ):
        self.path = Path(path) if path is not None else None
        self.config = config
        self.spec = spec
        self.metrics = metrics if metrics is not None else {}
        self.info = info if info is not None else {}
        self.precision = precision
        self._input_shape = input_shape
        self._model = model

    @property
    def model(self):
        """The Keras network (built and its weights loaded here on first use)."""
        if self._model is None:
            if self.path is None:
                raise ValueError("a Bundle without a folder needs its model")
            self._model = _build_network(self.path, self.config, self.spec, self._input_shape)
        return self._model

    @model.setter
    def model(self, value) -> None:
        self._model = value


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / "bundle.json").is_file()


def save_bundle(
    directory: str | Path,
    model,
    config: Config,
    spec: DatasetSpec,
    metrics: dict | None = None,
    steps: int | None = None,
    source: dict | None = None,
    domain: str | None = None,
    precision: str | None = None,
) -> Path:
    """Write ``model`` (built from ``config``) with its class metadata and metrics to ``directory``,
    replacing an existing bundle there atomically. ``source`` (e.g. where imported weights came
    from) goes into bundle.json, ``domain``: one line on the images it was trained on (shown
    beside the app's model picker), and ``precision``: the default when no ``--precision`` is
    given (left out: ``auto``). Returns the directory."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_config(config, tmp / "config.yaml")
        (tmp / "dataset_spec.json").write_text(json.dumps(spec.to_dict(), indent=2))
        model.save_weights(str(tmp / WEIGHTS_FILE))
        (tmp / "metrics.json").write_text(json.dumps(_plain(metrics or {}), indent=2))
        info = {
            "format_version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "name": config.name,
            "backbone": config.model.backbone,
            "output_stride": config.model.output_stride,
            "num_classes": spec.num_classes,
            "steps": steps,
            "param_count": int(model.count_params()),
        }
        if source:
            info["source"] = _plain(source)
        if domain:
            info["domain"] = str(domain)
        if precision:
            info["precision"] = str(precision)
        (tmp / "bundle.json").write_text(json.dumps(info, indent=2))
        old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def read_bundle_metadata(directory: str | Path) -> tuple[Config, DatasetSpec, dict, dict]:
    """Config, spec, metrics and bundle.json of a bundle, without TensorFlow."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(
            f"{directory}: no such bundle directory. Give the folder that holds bundle.json "
            "(e.g. WORKDIR/model)."
        )
    for name in BUNDLE_FILES:
        if not (directory / name).is_file():
            raise CheckpointError(
                f"{directory / name}: missing, so {directory} is not a complete model bundle. "
                "Point at the model/ folder a finished `pdl train` run wrote, or re-export the "
                "bundle."
            )
    info = _read_json(directory / "bundle.json")
    version = info.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{directory / 'bundle.json'}: bundle format version {version!r}; this version of the "
            f"toolkit reads version {FORMAT_VERSION}. Re-save the bundle with this toolkit."
        )
    import yaml

    try:
        config = from_dict(
            yaml.safe_load((directory / "config.yaml").read_text()) or {},
            source=str(directory / "config.yaml"),
        )
    except (ConfigError, yaml.YAMLError) as err:
        raise CheckpointError(f"{directory / 'config.yaml'}: not a valid config ({err}).") from None
    try:
        spec = DatasetSpec.from_dict(_read_json(directory / "dataset_spec.json"))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"{directory / 'dataset_spec.json'}: invalid class table ({err!r})."
        ) from None
    metrics_path = directory / "metrics.json"
    metrics = _read_json(metrics_path) if metrics_path.is_file() else {}
    return config, spec, metrics, info


def open_bundle(
    directory: str | Path, input_shape: tuple[int, int] | None = None, precision: str | None = None
) -> Bundle:
    """Read a bundle's metadata and choose its precision; the network is built on first use
    (``Bundle.model``), so a bad weights file is found then. ``precision``: auto | fp32 | bf16 |
    fp16; None: ``$PDL_PRECISION``, else bundle.json's ``precision``, else auto. The weights are
    float32 in every precision (mixed precision keeps float32 variables)."""
    from .precision import choose_precision, parse_precision
    from .settings import ENV_PRECISION, env

    directory = Path(directory)
    config, spec, metrics, info = read_bundle_metadata(directory)
    if precision is None and env(ENV_PRECISION):
        precision = parse_precision(env(ENV_PRECISION), source=ENV_PRECISION)
    from_bundle = precision is None and bool(info.get("precision"))
    if precision is None:
        precision = parse_precision(
            info.get("precision") or "auto", source=f"{directory / 'bundle.json'}: precision"
        )
    choice = choose_precision(precision)
    if from_bundle and choice.requested != "auto":
        choice = dataclasses.replace(
            choice, reason=f"the bundle's default, {directory / 'bundle.json'}"
        )
    # The config records the training precision; inference builds the network in the chosen one.
    config.model.dtype_policy = choice.policy
    # A bundle carries its weights; a pretrained-backbone path in the config is not needed (nor
    # present on another machine).
    config.model.pretrained_backbone = None
    return Bundle(
        path=directory,
        config=config,
        spec=spec,
        metrics=metrics,
        info=info,
        precision=choice,
        input_shape=input_shape,
    )


def load_bundle(
    directory: str | Path, input_shape: tuple[int, int] | None = None, precision: str | None = None
) -> Bundle:
    """``open_bundle`` with the network built and its weights loaded now (a CheckpointError naming
    the file when they do not fit)."""
    bundle = open_bundle(directory, input_shape=input_shape, precision=precision)
    bundle.model  # noqa: B018 - builds the network and loads its weights now
    return bundle


def _build_network(directory: Path, config: Config, spec: DatasetSpec, input_shape):
    from .model.builder import build_model

    model = build_model(config, num_classes=spec.num_classes, input_shape=input_shape)
    load_weights_checked(
        model,
        directory / WEIGHTS_FILE,
        hint="the bundle's config.yaml does not describe these weights; re-save the bundle",
    )
    return model


class WeightsMismatchError(CheckpointError):
    """Weights whose shapes do not fit the model; ``layers`` names the layers that differ."""

    def __init__(self, message: str, layers: list[str]):
        super().__init__(message)
        self.layers = layers


# The last layer of the semantic head: its size is the number of classes.
CLASS_LAYER = "semantic_head_output"


def load_weights_checked(model, path: str | Path, hint: str, skip_mismatch: bool = False) -> None:
    """``model.load_weights`` with a CheckpointError naming the file when they do not fit (a
    WeightsMismatchError saying which layers differ, and how, when the shapes disagree)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file missing. {hint}.")
    try:
        with warnings.catch_warnings():
            # Keras warns once per nested layer, with whole tensors; the error below says it in one
            # line.
            warnings.simplefilter("ignore")
            model.load_weights(str(path), skip_mismatch=skip_mismatch)
    except (ValueError, KeyError, OSError) as err:
        summary, layers = _describe_mismatch(str(err))
        message = f"{path}: weights do not match the model ({summary}). Fix: {hint}."
        raise (
            WeightsMismatchError(message, layers) if layers else CheckpointError(message)
        ) from None


def _describe_mismatch(text: str) -> tuple[str, list[str]]:
    """One line for Keras' load error ("N layers differ, e.g. conv/kernel is (3, 3, 3, 8) in the
    model but (3, 3, 3, 16) in the file") and the names of the layers it lists."""
    first = text.strip().splitlines()[0] if text.strip() else "unreadable file"
    listed = text.split("List of objects that could not be loaded:", 1)
    layers = re.findall(r"name=([^,>\s]+)", listed[1]) if len(listed) == 2 else []
    shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text)
    variable = re.search(r"Target variable: <Variable path=([^,>\s]+)", text)
    if not (layers and shapes and variable):
        return first, layers
    summary = (
        f"{len(layers)} layer(s) differ, e.g. {variable.group(1)} is {shapes.group(1)} in the "
        f"model but {shapes.group(2)} in the file"
    )
    if layers == [CLASS_LAYER]:
        summary += (
            "; only the class count differs (the weights were trained on another class table)"
        )
    return summary, layers


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{path}: not valid JSON ({err}). The bundle is damaged; save it again."
        ) from None


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value
