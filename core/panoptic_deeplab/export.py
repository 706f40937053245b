"""Export a model bundle as a TensorFlow SavedModel (whole pipeline) or a TFLite file (network only).

**SavedModel** (``export_saved_model``). Two signatures run exactly the Predictor's pipeline
(``inference.InferencePipeline.serve``: resize rules, padding with 127.5, the network with the
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

**TFLite** (``export_tflite``; meant for the MobileNetV3 models, works for any backbone). The
network alone at one fixed input size (default: the train crop, a ``k * OS + 1`` size), float32
input ``[1, H, W, 3]`` RGB 0..255 (normalisation inside) and the raw outputs ``semantic_logits``
``[1, H, W, C]``, ``center_heatmap`` ``[1, H, W, 1]``, ``offsets`` ``[1, H, W, 2]``. Padding,
post-processing and TTA are *not* inside: pad the image with 127.5 to the input size and run
``panoptic_deeplab.postprocess.post_process`` with ``PostProcessOptions(**meta["postprocess"])``
from the ``.json`` file written next to it (or your own port of it) on the outputs.

**ONNX** (``export_onnx``, tf2onnx) and **OpenVINO IR** (``export_openvino``, OpenVINO's converter
from a SavedModel of the network). The network alone, float32 input ``image`` ``[B, H, W, 3]`` RGB
0..255 with any batch and size (normalisation inside; ``k * OS + 1`` sizes are the exact ones), raw
outputs ``semantic_logits`` / ``center_heatmap`` / ``offsets`` as for TFLite. Post-processing is
not inside either: tf2onnx and OpenVINO's converter both fail on it (docs/deployment.md says
where). ``Predictor(..., backend="onnx"|"openvino")`` runs these files and does the padding,
test-time flip and post-processing around them, exactly as for TensorFlow. The files are float32;
OpenVINO runs them in bfloat16 when asked (``INFERENCE_PRECISION_HINT``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from .errors import UserError
from .postprocess import PostProcessOptions

SIGNATURE_BATCH = "serving_default"
RAW_OUTPUTS = ("semantic_logits", "center_heatmap", "offsets")
SIGNATURE_IMAGE = "serve_image"


def _bundle(bundle_or_path):
    """A loaded bundle; a path loads in float32 (an export may run anywhere, not only on CPUs with
    native bfloat16; pass a bundle loaded with ``precision="bf16"`` for a bfloat16 SavedModel)."""
    if isinstance(bundle_or_path, (str, Path)):
        from .bundle import load_bundle

        return load_bundle(bundle_or_path, precision="fp32")
    return bundle_or_path


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists():
        if not overwrite:
            raise UserError(f"{out}: already exists. Choose another --out or pass --overwrite.")
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
    out.parent.mkdir(parents=True, exist_ok=True)


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
    """Write a SavedModel with the whole pipeline (see the module docstring); returns ``out_dir``."""
    from .inference import InferencePipeline

    bundle = _bundle(bundle_or_path)
    out = Path(out_dir)
    _prepare_out(out, overwrite)
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
    # No custom gradients: the export is for inference, and saving them doubles the export time.
    tf.saved_model.save(
        module,
        str(out),
        signatures={SIGNATURE_BATCH: serve_batch, SIGNATURE_IMAGE: serve_image},
        options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
    )
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
    (out / "pdl_export.json").write_text(json.dumps(meta, indent=2))
    return out


def export_tflite(
    bundle_or_path,
    out_path: str | Path,
    *,
    input_size: tuple[int, int] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a TFLite file with the network at a fixed input size (see the module docstring)."""
    bundle = _bundle(bundle_or_path)
    out = Path(out_path)
    _prepare_out(out, overwrite)
    height, width = input_size or tuple(bundle.config.dataset.crop_size)
    if height < 1 or width < 1:
        raise UserError(f"--input-size must be positive, got {height}x{width}")
    model = bundle.model

    @tf.function(input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, name="image")])
    def network(image):
        outputs = model(image, training=False)
        return {
            k: tf.cast(outputs[k], tf.float32)
            for k in ("semantic_logits", "center_heatmap", "offsets")
        }

    # Through a SavedModel: the converter then freezes the weights into the file and keeps the
    # signature's output names (a bare concrete function keeps them as uninitialised variables).
    # (Keras' ExportArchive, which tracks Keras variables so that the converter can freeze them.)
    from keras.export import ExportArchive

    with tempfile.TemporaryDirectory() as tmp:
        archive = ExportArchive()
        archive.track(model)
        archive.add_endpoint(SIGNATURE_BATCH, network)
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            data = converter.convert()
        except Exception as err:  # noqa: BLE001 - the converter raises many types; report them plainly
            raise UserError(
                f"TFLite conversion of {bundle.config.model.backbone} failed ({str(err).splitlines()[0]}). "
                "Export a SavedModel instead (--format saved_model)."
            ) from None
    out.write_bytes(data)
    meta = {
        "format": "tflite",
        "input": {
            "name": "image",
            "shape": [1, height, width, 3],
            "dtype": "float32",
            "range": "RGB 0..255, pad with 127.5",
        },
        "outputs": ["semantic_logits", "center_heatmap", "offsets"],
        "postprocess_inside": False,
        "postprocess": PostProcessOptions.from_config(bundle.config, bundle.spec).to_dict(),
        "dataset_spec": bundle.spec.to_dict(),
    }
    out.with_suffix(out.suffix + ".json").write_text(json.dumps(meta, indent=2))
    return out


def _network_function(model, input_shape=(None, None, None, 3)):
    """The network as a ``tf.function`` of a float32 ``image`` batch with the raw float32 outputs."""

    @tf.function(input_signature=[tf.TensorSpec(list(input_shape), tf.float32, name="image")])
    def network(image):
        outputs = model(image, training=False)
        return {k: tf.cast(outputs[k], tf.float32) for k in RAW_OUTPUTS}

    return network


def _network_meta(bundle, fmt: str) -> dict:
    """The sidecar JSON of the network-only formats: what goes in, what comes out, what to run after."""
    return {
        "format": fmt,
        "input": {
            "name": "image",
            "shape": ["B", "H", "W", 3],
            "dtype": "float32",
            "range": "RGB 0..255, pad with 127.5 to k*output_stride+1 (and to the crop)",
        },
        "outputs": list(RAW_OUTPUTS),
        "postprocess_inside": False,
        "output_stride": bundle.config.model.output_stride,
        "crop_size": list(bundle.config.dataset.crop_size),
        "postprocess": PostProcessOptions.from_config(bundle.config, bundle.spec).to_dict(),
        "dataset_spec": bundle.spec.to_dict(),
        "config": bundle.config.to_dict(),
    }


def _float32_bundle(bundle):
    """Exports hold float32 weights and arithmetic (the runtime picks its precision)."""
    if bundle.precision is not None and bundle.precision.name != "fp32":
        from .bundle import load_bundle

        return load_bundle(bundle.path, precision="fp32")
    return bundle


def export_onnx(
    bundle_or_path, out_path: str | Path, *, overwrite: bool = False, opset: int = 17
) -> Path:
    """Write the network as an ONNX file with tf2onnx (see the module docstring)."""
    import tf2onnx

    bundle = _float32_bundle(_bundle(bundle_or_path))
    out = Path(out_path)
    _prepare_out(out, overwrite)
    network = _network_function(bundle.model)
    try:
        tf2onnx.convert.from_function(
            network, input_signature=network.input_signature, opset=opset, output_path=str(out)
        )
    except Exception as err:  # noqa: BLE001 - the converter raises many types; report them plainly
        out.unlink(missing_ok=True)
        raise UserError(
            f"ONNX conversion of {bundle.config.model.backbone} failed ({str(err).splitlines()[0]}). "
            "Export a SavedModel instead (--format saved_model)."
        ) from None
    out.with_suffix(out.suffix + ".json").write_text(
        json.dumps(_network_meta(bundle, "onnx"), indent=2)
    )
    return out


def export_openvino(bundle_or_path, out_path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the network as OpenVINO IR (``NAME.xml`` + ``NAME.bin``) converted from a SavedModel."""
    import openvino as ov
    from keras.export import ExportArchive

    bundle = _float32_bundle(_bundle(bundle_or_path))
    out = Path(out_path)
    if out.suffix != ".xml":
        raise UserError(
            f"{out}: an OpenVINO model is NAME.xml (with NAME.bin beside it); give --out NAME.xml."
        )
    for path in (out, out.with_suffix(".bin")):
        if path.exists():
            _prepare_out(path, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = ExportArchive()
        archive.track(bundle.model)
        archive.add_endpoint(SIGNATURE_BATCH, _network_function(bundle.model))
        archive.write_out(tmp, verbose=False)
        try:
            model = ov.convert_model(tmp)
        except Exception as err:  # noqa: BLE001
            raise UserError(
                f"OpenVINO conversion of {bundle.config.model.backbone} failed "
                f"({str(err).splitlines()[0]}). Export a SavedModel instead."
            ) from None
    # Keep float32 weights: OpenVINO's default would store them as float16.
    ov.save_model(model, str(out), compress_to_fp16=False)
    out.with_suffix(".json").write_text(json.dumps(_network_meta(bundle, "openvino"), indent=2))
    return out
