"""Export a model bundle as a TensorFlow SavedModel with the whole pipeline inside.

**SavedModel** (``export_saved_model``). Two signatures run exactly the Predictor's pipeline
(``pipeline.InferencePipeline.serve``: resize rules, padding with 127.5, the network with the
chosen test-time scales / flip, post-processing, cropping and resizing back), all as TF ops, so the
export needs nothing from this package to run (pure-TF post-processing, no custom op):

* ``serving_default(images)``: ``images`` uint8 ``[B, H, W, 3]`` RGB (any H, W; one size per batch);
* ``serve_image(image)``: uint8 ``[H, W, 3]``; the same outputs without the batch axis.

Outputs: ``panoptic`` int32 ``[B, H, W]`` (``class * label_divisor + instance``, void =
``ignore_label * label_divisor``), ``semantic`` int32, ``semantic_probs`` float32 ``[B, H, W, C]``,
``center_heatmap`` float32 ``[B, H, W]``, ``offsets`` float32 ``[B, H, W, 2]`` (dy, dx pixels),
``center_points`` float32 ``[B, K, 2]`` (y, x; -1 = padding), ``center_scores`` ``[B, K]``,
``num_centers`` ``[B]``, and per center ``instance_ids`` / ``instance_classes`` /
``instance_areas`` (at the padded network size) / ``instance_scores`` ``[B, K]``, with
K = ``keep_k_centers``. ``pdl_export.json`` next to ``saved_model.pb`` holds the class table,
the config and these settings.

The network-only formats (TFLite, ONNX, OpenVINO IR) are written by ``converters.py``; ``pdl
export`` chooses between them. Every export replaces an earlier one only once it is complete
(``export_files.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

from .bundle import load_bundle
from .export_files import refuse_existing, replacing
from .pipeline import InferencePipeline

SIGNATURE_BATCH = "serving_default"
SIGNATURE_IMAGE = "serve_image"


def export_saved_model(
    bundle_or_path,
    out_dir: str | Path,
    *,
    scales=(1.0,),
    flip: bool = False,
    max_side: int | None = None,
    pad_to: str = "crop",
    overwrite: bool = False,
    **postprocess_overrides,
) -> Path:
    """Write a SavedModel with the whole pipeline (see the module docstring); returns ``out_dir``.
    A path loads in float32 (an export may run anywhere, not only on CPUs with native bfloat16;
    pass a bundle loaded with ``precision="bf16"`` for a bfloat16 SavedModel)."""
    out = Path(out_dir)
    refuse_existing([out], overwrite)
    bundle = bundle_or_path
    if isinstance(bundle, (str, Path)):
        bundle = load_bundle(bundle, precision="fp32")
    pipeline = InferencePipeline(
        bundle.model,
        bundle.config,
        bundle.spec,
        scales=scales,
        flip=flip,
        max_side=max_side,
        pad_to=pad_to,
        **postprocess_overrides,
    )

    # The pipeline is traced once, for batches; the single-image signature calls that function.
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def serve_batch(images):
        return pipeline.serve(images)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8, name="image")])
    def serve_image(image):
        result = serve_batch(image[tf.newaxis])
        return {k: v[0] for k, v in result.items()}

    module = tf.Module()
    module.model_variables = list(bundle.model.variables)  # tracked, so saved with the graph
    module.serve_batch, module.serve_image = serve_batch, serve_image
    meta = {
        "format": "saved_model",
        "signatures": {
            SIGNATURE_BATCH: "images uint8 [B, H, W, 3]",
            SIGNATURE_IMAGE: "image uint8 [H, W, 3]",
        },
        "scales": list(pipeline.scales),
        "flip": pipeline.flip,
        "max_side": pipeline.max_side,
        "pad_to": pipeline.pad_to,
        "postprocess": pipeline.postprocess.to_dict(),
        "dataset_spec": bundle.spec.to_dict(),
        "config": bundle.config.to_dict(),
    }
    with replacing([out], overwrite=overwrite, what="the SavedModel") as (tmp,):
        # No custom gradients: the export is for inference, and saving them doubles the export time.
        tf.saved_model.save(
            module,
            str(tmp),
            signatures={SIGNATURE_BATCH: serve_batch, SIGNATURE_IMAGE: serve_image},
            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
        )
        (tmp / "pdl_export.json").write_text(json.dumps(meta, indent=2))
    return out
