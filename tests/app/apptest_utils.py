"""Shared set-up for the app's AppTest suites: the installed app's files, an app environment in a
temp dir, and small encoded test images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from panoptic_deeplab import settings

ROOT = (
    Path(__file__).resolve().parents[2]
)  # the checkout (test data; the app itself is found as installed)
APP_DIR = settings.app_entry().parent  # app/ of the checkout, inside the package once installed
ENTRY = str(APP_DIR / "main.py")

TIMEOUT = 60


def set_app_env(
    monkeypatch, tmp_path: Path, model: Path | None = None, data: Path | None = None
) -> None:
    monkeypatch.setenv("PDL_APP_WORKDIR", str(tmp_path / "work"))
    for name, value in (("PDL_APP_MODEL", model), ("PDL_APP_DATA", data)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(value))


def street_image(height: int = 65, width: int = 97, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def encode(array: np.ndarray, fmt: str = "PNG", **save_kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **save_kwargs)
    return buf.getvalue()


def plotly_array(value) -> np.ndarray:
    """Plotly 6+ writes NumPy arrays as {"dtype", "bdata" (base64), "shape"}; lists stay lists."""
    if isinstance(value, dict) and "bdata" in value:
        import base64

        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        if shape:
            array = array.reshape([int(s) for s in str(shape).split(",")])
        return array
    return np.asarray(value, dtype=object if value and isinstance(value[0], (list, str)) else None)
