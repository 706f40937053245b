"""Panoptic-DeepLab in TensorFlow 2 / Keras 3.

Light imports only here: `import panoptic_deeplab` must not import TensorFlow, so that the metric
and data-checking commands start fast.
"""

__version__ = "0.1.0"
