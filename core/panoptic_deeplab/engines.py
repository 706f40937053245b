"""Inference engines for the network: TensorFlow (the Keras model), ONNX Runtime or OpenVINO running
an export of it (``converters.export_onnx`` / ``export_openvino``).

An exported engine stands in for the Keras model inside ``pipeline.InferencePipeline``: it is called
like the model (``engine(images, training=False)`` -> the three raw outputs) from a
``tf.numpy_function``, so the padding, test-time flip, softmax, averaging and post-processing around
it are the Predictor's own, in TensorFlow. The export of a bundle is made on first use and cached
under ``$XDG_CACHE_HOME/panoptic_deeplab/engines/`` (``settings.user_cache``; keyed by the bundle's
weights and config). ONNX Runtime and OpenVINO are imported only when their engine is used.

Precisions per engine: TensorFlow fp32 / bf16 / fp16 (Keras mixed precision); OpenVINO fp32 / bf16
/ fp16 (its ``INFERENCE_PRECISION_HINT``; the file stays float32); ONNX Runtime fp32 only (its CPU
provider has no bfloat16 convolution kernels).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

import numpy as np
import tensorflow as tf

from . import settings
from .errors import UserError
from .model.builder import OUTPUTS
from .safe_files import disk_full_as_user_error, remove_quietly

log = logging.getLogger(__name__)

BACKENDS = ("tf", "onnx", "openvino")
SUFFIX = {"onnx": ".onnx", "openvino": ".xml"}
PRECISIONS = {
    "tf": ("fp32", "bf16", "fp16"),
    "onnx": ("fp32",),
    "openvino": ("fp32", "bf16", "fp16"),
}
OPENVINO_HINT = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def check_backend(backend: str, precision: str) -> None:
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}.")
    if precision not in PRECISIONS[backend]:
        raise UserError(
            f"--backend {backend} runs {' / '.join(PRECISIONS[backend])} only, not {precision}; "
            f"give --precision fp32 or another --backend."
        )


def engine_cache_dir() -> Path:
    return settings.user_cache() / "engines"


def cached_export(bundle, backend: str) -> Path:
    """The bundle's export for ``backend``, converted on first use (seconds for small models, about
    a minute for ResNet-50) and reused while the bundle's weights and config are unchanged."""
    from .converters import export_onnx, export_openvino

    digest = hashlib.sha256()
    for name in ("model.weights.h5", "config.yaml", "dataset_spec.json"):
        digest.update((Path(bundle.path) / name).read_bytes())
    path = (
        engine_cache_dir() / f"{Path(bundle.path).name}-{digest.hexdigest()[:16]}{SUFFIX[backend]}"
    )
    if not path.is_file():
        log.warning(
            "converting %s for %s (first use; cached in %s)", bundle.path, backend, path.parent
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{os.getpid()}-{path.name}")
        made = [tmp, tmp.with_suffix(".json"), tmp.with_suffix(tmp.suffix + ".json")]
        if backend == "openvino":
            made.append(tmp.with_suffix(".bin"))
        with disk_full_as_user_error(path.parent, f"the {backend} export", cleanup=made):
            (export_onnx if backend == "onnx" else export_openvino)(bundle, tmp, overwrite=True)
            if backend == "openvino":
                os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))
            os.replace(tmp, path)
        for leftover in made:  # the sidecar JSON: the bundle beside it says the same
            remove_quietly(leftover)
    return path


class ExportedNetwork:
    """An exported network, callable like the Keras model inside a ``tf.function``."""

    layers: list = []  # no Keras layers (InferencePipeline looks for ASPP pooling layers)

    def __init__(
        self,
        path: str | Path,
        backend: str,
        precision: str = "fp32",
        num_classes: int | None = None,
    ):
        check_backend(backend, precision)
        self.path, self.backend, self.precision, self.num_classes = (
            Path(path),
            backend,
            precision,
            num_classes,
        )
        if not self.path.is_file():
            raise UserError(
                f"{self.path}: no such {backend} model file. Export one with "
                f"`pdl export --format {backend}`."
            )
        self._run = self._onnx_runner() if backend == "onnx" else self._openvino_runner()

    def _onnx_runner(self):
        import onnxruntime as ort

        session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        input_name = session.get_inputs()[0].name

        def run(images: np.ndarray) -> dict:
            return dict(zip(names, session.run(None, {input_name: images})))

        return run

    def _openvino_runner(self):
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(
            str(self.path),
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": OPENVINO_HINT[self.precision],
                "PERFORMANCE_HINT": "LATENCY",
            },
        )
        request = compiled.create_infer_request()
        names = [o.get_any_name() for o in compiled.outputs]
        # TensorFlow may run two calls at once (the mirrored test-time run); one request serves one.
        busy = threading.Lock()

        def run(images: np.ndarray) -> dict:
            with busy:
                results = request.infer({0: images})
                return {
                    name: np.array(results[output]) for name, output in zip(names, compiled.outputs)
                }

        return run

    def run_numpy(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """The raw outputs for a float32 ``[B, H, W, 3]`` batch (RGB 0..255)."""
        out = self._run(np.ascontiguousarray(images, dtype=np.float32))
        return {k: np.asarray(out[k], np.float32) for k in OUTPUTS}

    def __call__(self, images, training: bool = False) -> dict:
        def run(x):
            out = self.run_numpy(x)
            return [out[k] for k in OUTPUTS]

        results = tf.numpy_function(
            run, [tf.cast(images, tf.float32)], [tf.float32] * 3, stateful=False
        )
        out = {}
        for key, value, channels in zip(OUTPUTS, results, (self.num_classes, 1, 2)):
            value.set_shape([*images.shape[:3], channels])
            out[key] = value
        return out


def choose_backend(backend: str | None, precision, model_policy: str = "float32"):
    """``(backend, precision.Choice)`` to run: ``backend`` None means ``$PDL_BACKEND`` or tf. An
    automatic precision the engine cannot run falls back to fp32 (said in the reason); an explicit
    one is an error."""
    from .precision import Choice

    if precision is None:  # a Bundle built by hand: the precision its model was built in
        from .precision import NAMES

        precision = Choice(NAMES.get(model_policy, "fp32"), "fp32", "as built")
    backend = (backend or settings.env(settings.ENV_BACKEND) or "tf").lower()
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}.")
    if precision.name not in PRECISIONS[backend] and precision.requested == "auto":
        precision = Choice("fp32", "auto", f"auto: {backend} runs float32 only")
    check_backend(backend, precision.name)
    return backend, precision
