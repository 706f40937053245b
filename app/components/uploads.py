"""Turning an upload or a sample file into an RGB array, with a message instead of a crash."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from panoptic_deeplab.errors import ImageError
from panoptic_deeplab.image_io import load_image

# Inference in the app runs on whatever machine serves it (often a CPU): larger images are
# downscaled, with a notice, so a 24-megapixel photo neither times out nor fills the memory.
MAX_SIDE = 1025
# Refused outright (before decoding) above this many pixels: decompression bombs.
MAX_PIXELS = 60_000_000


@dataclass
class LoadedImage:
    name: str
    array: np.ndarray  # uint8 RGB, possibly downscaled
    original_size: tuple[int, int]  # (H, W) before downscaling
    notice: str = ""


def read_image(data: bytes, name: str) -> LoadedImage:
    """Decode an uploaded file; raises ImageError (a message for the user) for anything unusable."""
    if len(data) == 0:
        raise ImageError(f"{name}: the file is empty (0 bytes). Upload a PNG or JPEG image.")
    array = load_image(data, name=name, max_pixels=MAX_PIXELS)
    return _fit(array, name)


def safe_stem(name: str) -> str:
    """A file-name stem for downloads made from an upload's name: the last path component without
    its suffix, characters other than letters, digits, "_", "-" and "." replaced ("../../x.png" ->
    "x")."""
    last = re.split(r"[/\\]", name)[-1]
    stem = last.rsplit(".", 1)[0] if "." in last else last
    return re.sub(r"[^\w.-]+", "_", stem).strip("._") or "image"


def read_image_file(path: Path) -> LoadedImage:
    return _fit(load_image(path, max_pixels=MAX_PIXELS), path.name)


def _fit(array: np.ndarray, name: str) -> LoadedImage:
    h, w = array.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return LoadedImage(name, array, (h, w))
    scale = MAX_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(array, size, interpolation=cv2.INTER_AREA)
    notice = (
        f"{name} is {w}x{h}; it was downscaled to {size[0]}x{size[1]} for inspection "
        f"(the app's limit is {MAX_SIDE} px on the long side). "
        "Use `pdl predict` for full resolution."
    )
    return LoadedImage(name, small, (h, w), notice)
