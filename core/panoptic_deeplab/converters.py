"""Export the network alone (no post-processing) as a TFLite, ONNX or OpenVINO file.

**TFLite** (``export_tflite``; meant for the MobileNetV3 models, works for any backbone). The
network at one fixed input size (default: the train crop, a ``k * OS + 1`` size), float32 input
``[1, H, W, 3]`` RGB 0..255 (normalisation inside) and the raw outputs ``semantic_logits``
``[1, H, W, C]``, ``center_heatmap`` ``[1, H, W, 1]``, ``offsets`` ``[1, H, W, 2]``. Padding,
post-processing and TTA are *not* inside: pad the image with 127.5 to the input size and run
``panoptic_deeplab.postprocess.post_process`` with ``PostProcessOptions(**meta["postprocess"])``
from the ``.json`` file written next to it (or your own port of it) on the outputs.

**ONNX** (``export_onnx``) and **OpenVINO IR** (``export_openvino``). The network, float32 input
``image`` ``[B, H, W, 3]`` RGB 0..255 with any batch and size (normalisation inside; ``k * OS + 1``
sizes are the exact ones), the raw outputs as for TFLite. Post-processing is not inside: tf2onnx
and OpenVINO's converter both fail on it (docs/deployment.md says where).
``Predictor(..., backend="onnx"|"openvino")`` (``engines.py``) runs these files and does the
padding, test-time flip and post-processing around them, exactly as for TensorFlow. The files are
float32; OpenVINO runs them in bfloat16 when asked (``INFERENCE_PRECISION_HINT``).

The converters import their third-party packages only when called. tf2onnx peaks at about 4.6 GiB
for ResNet-50, in TensorFlow's graph optimiser, once its own ONNX optimisers' garbage is collected
(docs/performance.md has the measurement).
"""

from __future__ import annotations

import contextlib
import gc
import json
import threading
from pathlib import Path

import tensorflow as tf

from .errors import UserError
from .export_files import bundle_for_export, refuse_existing, replacing, work_folder
from .model.builder import OUTPUTS
from .postprocess import PostProcessOptions

SIGNATURE = "serving_default"
INPUT_NAME = "image"


def network_function(model, input_shape=(None, None, None, 3)):
    """The network as a ``tf.function`` of a float32 ``image`` batch with its raw float32
    outputs."""

    @tf.function(input_signature=[tf.TensorSpec(list(input_shape), tf.float32, name=INPUT_NAME)])
    def network(image):
        outputs = model(image, training=False)
        return {k: tf.cast(outputs[k], tf.float32) for k in OUTPUTS}

    return network


def _meta(bundle, fmt: str, input_shape: list) -> dict:
    """The sidecar JSON: what goes in, what comes out, what to run after."""
    return {
        "format": fmt,
        "input": {
            "name": INPUT_NAME,
            "shape": input_shape,
            "dtype": "float32",
            "range": "RGB 0..255, pad with 127.5 to k*output_stride+1 (and to the crop)",
        },
        "outputs": list(OUTPUTS),
        "postprocess_inside": False,
        "output_stride": bundle.config.model.output_stride,
        "crop_size": list(bundle.config.dataset.crop_size),
        "postprocess": PostProcessOptions.from_config(bundle.config, bundle.spec).to_dict(),
        "dataset_spec": bundle.spec.to_dict(),
        "config": bundle.config.to_dict(),
    }


def _write_network_saved_model(model, folder: Path, input_shape=(None, None, None, 3)) -> None:
    """The network alone as a SavedModel (Keras' ExportArchive tracks the Keras variables, so a
    converter can freeze them and keeps the signature's output names)."""
    from keras.export import ExportArchive

    archive = ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, network_function(model, input_shape))
    archive.write_out(str(folder), verbose=False)


def _conversion_failed(fmt: str, bundle, err: Exception) -> UserError:
    return UserError(
        f"{fmt} conversion of {bundle.config.model.backbone} failed "
        f"({str(err).splitlines()[0] if str(err) else type(err).__name__}). "
        "Export a SavedModel instead (--format saved_model)."
    )


def export_tflite(
    bundle_or_path,
    out_path: str | Path,
    *,
    input_size: tuple[int, int] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a TFLite file with the network at a fixed input size (see the module docstring)."""
    out = Path(out_path)
    sidecar = out.with_suffix(out.suffix + ".json")
    refuse_existing([out, sidecar], overwrite)
    bundle = bundle_for_export(bundle_or_path)
    height, width = input_size or tuple(bundle.config.dataset.crop_size)
    if height < 1 or width < 1:
        raise UserError(f"--input-size must be positive, got {height}x{width}")
    with replacing([out, sidecar], overwrite=overwrite, what="the TFLite export") as tmps:
        with work_folder(out) as tmp:
            _write_network_saved_model(bundle.model, tmp, (1, height, width, 3))
            converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            try:
                data = converter.convert()
            except Exception as err:  # noqa: BLE001 - the converter raises many types; report them plainly
                raise _conversion_failed("TFLite", bundle, err) from None
        tmps[0].write_bytes(data)
        tmps[1].write_text(json.dumps(_meta(bundle, "tflite", [1, height, width, 3]), indent=2))
    return out


def export_onnx(
    bundle_or_path, out_path: str | Path, *, overwrite: bool = False, opset: int = 17
) -> Path:
    """Write the network as an ONNX file with tf2onnx (see the module docstring)."""
    import tf2onnx

    out = Path(out_path)
    sidecar = out.with_suffix(out.suffix + ".json")
    refuse_existing([out, sidecar], overwrite)
    bundle = bundle_for_export(bundle_or_path)
    with replacing([out, sidecar], overwrite=overwrite, what="the ONNX export") as tmps:
        network = network_function(bundle.model)
        try:
            with _collecting_garbage():
                tf2onnx.convert.from_function(
                    network,
                    input_signature=network.input_signature,
                    opset=opset,
                    output_path=str(tmps[0]),
                )
        except Exception as err:  # tf2onnx raises many types; report them plainly
            from .safe_files import is_disk_full

            if is_disk_full(err):
                raise
            raise _conversion_failed("ONNX", bundle, err) from None
        tmps[1].write_text(json.dumps(_meta(bundle, "onnx", ["B", "H", "W", 3]), indent=2))
    return out


@contextlib.contextmanager
def _collecting_garbage(every_s: float = 0.25):
    """Python's garbage collector run every ``every_s`` seconds while the block runs.

    tf2onnx deep-copies the whole graph, weights included, before each of its ONNX optimisers and
    drops the old copy inside reference cycles, which the collector's own schedule frees only now
    and then: ResNet-50's export peaked at 12.3 GiB without this (docs/performance.md)."""
    done = threading.Event()

    def collect():
        while not done.wait(every_s):
            gc.collect()

    thread = threading.Thread(target=collect, name="onnx-export-gc", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def export_openvino(bundle_or_path, out_path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the network as OpenVINO IR (``NAME.xml`` + ``NAME.bin``) converted from a
    SavedModel."""
    import openvino as ov

    out = Path(out_path)
    if out.suffix != ".xml":
        raise UserError(
            f"{out}: an OpenVINO model is NAME.xml (with NAME.bin beside it); give --out NAME.xml."
        )
    files = [out, out.with_suffix(".bin"), out.with_suffix(".json")]
    refuse_existing(files, overwrite)
    bundle = bundle_for_export(bundle_or_path)
    with replacing(files, overwrite=overwrite, what="the OpenVINO export") as tmps:
        with work_folder(out) as tmp:
            _write_network_saved_model(bundle.model, tmp)
            try:
                model = ov.convert_model(str(tmp))
            except Exception as err:  # noqa: BLE001 - the converter raises many types; report them plainly
                raise _conversion_failed("OpenVINO", bundle, err) from None
            # Keep float32 weights: OpenVINO's default would store them as float16. The IR is
            # written under its final name, so that the .xml and .bin belong together.
            ir = tmp / "ir" / out.name
            ov.save_model(model, str(ir), compress_to_fp16=False)
            ir.replace(tmps[0])
            ir.with_suffix(".bin").replace(tmps[1])
        tmps[2].write_text(json.dumps(_meta(bundle, "openvino", ["B", "H", "W", 3]), indent=2))
    return out
