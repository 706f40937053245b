"""Before training: every image that goes through the pipeline in evaluation mode (the TensorBoard
preview, periodic evaluation) must fit ``dataset.crop_size`` after the resize rule, since evaluation
mode pads to the crop instead of cropping. Found now, from the image headers, it is a one-line
error; found by the pipeline, it was a TensorFlow assertion after the start (or mid-run).
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..image_io import header_size


def resized_size(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """The size :func:`.augment.resize_to_range` gives (same float32 arithmetic)."""
    if not (min_size or max_size):
        return height, width
    shape = np.array([height, width], np.float32)
    factor = np.float32(1.0)
    if min_size:
        factor = np.float32(min_size) / shape.min()
    if max_size and shape.max() * factor > max_size:
        factor = np.float32(max_size) / shape.max()
    h, w = np.round(shape * factor).astype(int)
    return int(h), int(w)


def check_eval_inputs_fit(examples, config, use: str) -> None:
    """Raise a ConfigError naming the first image of ``examples`` that does not fit the crop;
    ``use`` says what reads these images in evaluation mode (for the message)."""
    data = config.dataset
    crop_h, crop_w = (int(v) for v in data.crop_size)
    for example in examples:
        size = header_size(example.image_path)
        if size is None:
            continue  # unreadable images are the data-set check's to report
        height, width = size
        h, w = resized_size(height, width, data.min_resize_value, data.max_resize_value)
        if h > crop_h or w > crop_w:
            resized = f" ({h}x{w} after the resize rule)" if (h, w) != (height, width) else ""
            fit_h, fit_w = (-(-(v - 1) // 32) * 32 + 1 for v in (h, w))  # k * 32 + 1, as the presets
            raise ConfigError(
                f"{example.image_path}: the image is {height}x{width}{resized}, larger than dataset.crop_size "
                f"{crop_h}x{crop_w}; {use} pads images to the crop instead of cropping them. Use a config made "
                f"for images of this size, or --set dataset.crop_size=[{max(fit_h, crop_h)},{max(fit_w, crop_w)}] "
                "(training crops grow with it), or shrink the images with dataset.max_resize_value (the long side).")
