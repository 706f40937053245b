"""Panoptic-DeepLab in TensorFlow 2 / Keras 3.

Light imports only here: `import panoptic_deeplab` must not import TensorFlow, so that the metric
and data-checking commands start fast.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # The library's entry points, imported on first use (they import TensorFlow).
    if name == "train":
        from .training.api import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
