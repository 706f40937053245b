"""Panoptic-DeepLab in TensorFlow 2 / Keras 3.

Light imports only here: `import panoptic_deeplab` must not import TensorFlow, so that the metric
and data-checking commands start fast.
"""

__version__ = "0.1.0"

# The library's entry points, imported on first use (none of them imports TensorFlow by itself).
_EXPORTS = {
    "evaluate": "panoptic_deeplab.evaluation.evaluate_split",
    "EvaluationResult": "panoptic_deeplab.evaluation.results",
    "PredictionSet": "panoptic_deeplab.prediction_sets",
}


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(_EXPORTS[name]), name)


def __dir__():
    return sorted([*globals(), *_EXPORTS])
