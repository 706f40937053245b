"""Load ImageNet-pretrained backbone weights from a local Keras weights file (never a download).

``config.model.pretrained_backbone`` names a ``.h5`` or ``.weights.h5`` file. Two layouts load:

1. **Weights saved from this package's own backbone**
   (``model.get_layer("backbone").save_weights(path)``), any backbone: loaded with Keras
   ``load_weights``, which needs the same architecture and width.
2. **``keras.applications.ResNet50`` weights** (e.g.
   ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``, or
   ``keras.applications.ResNet50(include_top=False).save_weights(...)``) for ``resnet50``: our layer
   names follow Keras', so weights are copied layer by layer by name. Keras' convs have a bias and
   ours do not (BN follows); the bias is folded exactly into the next BN's moving mean
   (``BN(conv + b)`` with mean ``m`` equals ``BN(conv)`` with mean ``m - b``). Keras' ResNet50 is
   v1 (stride in the first 1x1) while deeplab2's puts it in the 3x3; kernel shapes are the same, so
   the weights load and serve as an initialisation, as in deeplab2's own ImageNet checkpoints.
   Layers of ours absent from the file (e.g. the ResNet-50-beta inception stem) keep their
   initialisation; a layer whose shapes differ is an error naming the file and the layer.

Errors are ``CheckpointError`` with the file name and the fix.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from ..errors import CheckpointError

log = logging.getLogger(__name__)

KERAS_APPLICATION_LAYOUTS = {"resnet50": "ResNet50", "resnet50_beta": "ResNet50"}


def load_pretrained_backbone(
    backbone: keras.Model, path: str | Path, backbone_name: str
) -> dict[str, list[str]]:
    """Load ``path`` into ``backbone``; returns ``{"loaded": [...], "skipped": [...]}`` (layers)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"model.pretrained_backbone: {path} not found. Give a local .h5/.weights.h5 file, or "
            "set it to null."
        )
    if not (path.name.endswith(".h5")):
        raise CheckpointError(
            f"model.pretrained_backbone: {path} is not a Keras .h5 / .weights.h5 weights file."
        )
    try:
        backbone.load_weights(str(path))
        names = [layer.name for layer in backbone.layers if layer.weights]
        log.info("loaded %s into backbone '%s' (%d layers)", path, backbone_name, len(names))
        return {"loaded": names, "skipped": []}
    except Exception as own_error:  # noqa: BLE001 - try the keras.applications layout next
        application = KERAS_APPLICATION_LAYOUTS.get(backbone_name)
        if application is None:
            raise CheckpointError(
                f"model.pretrained_backbone: {path} does not match backbone '{backbone_name}' "
                f"(width {_width_hint(backbone)}): {own_error}. Save the file from this package's "
                "backbone with the same backbone and width."
            ) from None
    return _load_from_application(backbone, path, application, backbone_name)


def _width_hint(backbone: keras.Model) -> str:
    return f"{backbone.count_params():,} backbone params"


def _load_from_application(
    backbone: keras.Model, path: Path, application: str, backbone_name: str
) -> dict:
    reference = getattr(keras.applications, application)(
        include_top=False, weights=None, input_shape=(None, None, 3)
    )
    try:
        reference.load_weights(str(path))
    except Exception as err:  # noqa: BLE001 - any failure means the layout does not match
        raise CheckpointError(
            f"model.pretrained_backbone: {path} matches neither this package's '{backbone_name}' "
            f"backbone nor keras.applications.{application}(include_top=False): {err}"
        ) from None

    ours = {layer.name: layer for layer in backbone.layers}
    loaded, folded_bias = [], {}
    for ref_layer in reference.layers:
        ref_weights = ref_layer.get_weights()
        if not ref_weights or ref_layer.name not in ours:
            continue
        layer = ours[ref_layer.name]
        own = layer.get_weights()
        if isinstance(ref_layer, keras.layers.Conv2D) and len(ref_weights) == 2 and len(own) == 1:
            folded_bias[ref_layer.name.removesuffix("_conv") + "_bn"] = ref_weights[1]
            ref_weights = ref_weights[:1]
        _check_shapes(path, layer.name, own, ref_weights, application)
        layer.set_weights(ref_weights)
        loaded.append(layer.name)
    for bn_name, bias in folded_bias.items():
        if bn_name not in ours:
            raise CheckpointError(
                f"{path}: conv bias of '{bn_name}' has no batch norm to fold into."
            )
        gamma, beta, mean, variance = ours[bn_name].get_weights()
        ours[bn_name].set_weights([gamma, beta, mean - bias, variance])
    skipped = [name for name, layer in ours.items() if layer.weights and name not in loaded]
    if not loaded:
        raise CheckpointError(
            f"model.pretrained_backbone: no layer of {path} matches backbone '{backbone_name}'."
        )
    if skipped:
        log.warning(
            "%s: %d backbone layers not in the file keep their initialisation: %s",
            path,
            len(skipped),
            skipped,
        )
    return {"loaded": loaded, "skipped": skipped}


def _check_shapes(
    path: Path, name: str, own: list[np.ndarray], theirs: list[np.ndarray], application: str
) -> None:
    own_shapes = [tuple(w.shape) for w in own]
    their_shapes = [tuple(w.shape) for w in theirs]
    if own_shapes != their_shapes:
        raise CheckpointError(
            f"model.pretrained_backbone: layer '{name}' in {path} "
            f"(keras.applications.{application} layout) has shapes {their_shapes}, the backbone "
            f"needs {own_shapes}. Use a file for this backbone and width (model.backbone_width "
            "must be 1.0 for ImageNet weights)."
        )
