"""Panoptic-DeepLab in TensorFlow 2 / Keras 3.

The names a user scripts with, imported on first use: `import panoptic_deeplab` must not import
TensorFlow, so that the metric and data-checking commands start fast.

    import panoptic_deeplab as pdl

    predictor = pdl.Predictor("runs/demo/model")  # a bundle folder
    prediction = predictor("street.jpg")  # .panoptic, .semantic, .segments, ...
    pdl.export_saved_model("runs/demo/model", "exports/demo")
    pdl.train("synthetic/demo", "data/synthetic", "runs/mine")  # returns a TrainResult
    result = pdl.evaluate("runs/mine/model", "data/synthetic", "val")  # or a predictions JSON
"""

from importlib import import_module

__version__ = "0.1.0"

# name -> the module (under this package) that defines it
_WHERE = {
    "Bundle": "bundle",
    "load_bundle": "bundle",
    "open_bundle": "bundle",
    "Predictor": "inference",
    "Prediction": "inference",
    "Segment": "inference",
    "PostProcessOptions": "postprocess",
    "post_process": "postprocess",
    "load_config": "config",
    "train": "training.api",
    "evaluate_split": "evaluation.evaluate_split",
    "evaluate": "evaluation.evaluate_split",
    "EvaluationResult": "evaluation.results",
    "PredictionSet": "prediction_sets",
    "export_saved_model": "export",
    "export_tflite": "converters",
    "export_onnx": "converters",
    "export_openvino": "converters",
    "UserError": "errors",
}
__all__ = sorted(_WHERE)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)


def __dir__():
    return sorted([*globals(), *_WHERE])
