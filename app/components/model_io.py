"""Cached calls into the library: load a model once, run its heads once per image, and re-run only the
post-processing when a knob changes.

Streamlit caches: ``cache_resource`` for the predictor (one per bundle, shared by sessions),
``cache_data`` for head outputs keyed by (bundle, image digest) and for fused results keyed by the
post-processing options as well, so moving a slider back is instant.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from panoptic_deeplab.datasets.specs import DatasetSpec

if TYPE_CHECKING:
    from panoptic_deeplab.postprocess import PostProcessOptions

log = logging.getLogger(__name__)


@dataclass
class Heads:
    """Raw head outputs at input resolution."""

    semantic_probs: np.ndarray  # float32 [H, W, C], softmax probabilities
    center_heatmap: np.ndarray  # float32 [H, W]
    offsets: np.ndarray  # float32 [H, W, 2], (dy, dx) in pixels, pointing at the instance center
    notes: list[str] = field(default_factory=list)  # the predictor's notices (e.g. downscaling)


@dataclass
class Fused:
    """The post-processing result for one set of knobs (NumPy)."""

    panoptic: np.ndarray  # int32 [H, W] class * divisor + instance
    semantic: np.ndarray  # int32 [H, W]
    instance_map: np.ndarray  # int32 [H, W] center index + 1 on thing pixels
    center_points: np.ndarray  # int32 [N, 2] (y, x)
    center_scores: np.ndarray  # float32 [N]
    instances: list[dict] = field(default_factory=list)  # per center: id, class, area, score


def image_digest(image: np.ndarray) -> str:
    return hashlib.sha1(
        np.ascontiguousarray(image).tobytes() + str(image.shape).encode()
    ).hexdigest()


# -- model -----------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def load_predictor(path: str):
    from panoptic_deeplab.inference import Predictor

    return Predictor(path)


@st.cache_resource(show_spinner=False)
def warm_up_in_background(path: str) -> threading.Thread:
    """Once per app process and model: on a daemon thread, import TensorFlow, load the model
    (``load_predictor``'s cache) and trace its pipeline for the config's crop size (the size the
    demo data set's images pad to), while the page draws, so that the first picture does not wait
    for all of it. A page that needs the model meanwhile waits for this work (Streamlit computes a
    cached value once; the Predictor traces each size once) rather than doing it twice."""

    def work() -> None:
        try:
            load_predictor(path).warm_up()
        except Exception:  # the page that uses the model shows the error
            log.warning("warming up %s failed", path, exc_info=True)

    thread = threading.Thread(target=work, name="pdl-warm-up", daemon=True)
    thread.start()
    return thread


def model_spec(predictor) -> DatasetSpec:
    return predictor.spec


def default_options(predictor) -> PostProcessOptions:
    """The bundle's post-processing settings; the knobs are overrides of these (``.replace``)."""
    from panoptic_deeplab.postprocess import PostProcessOptions

    return PostProcessOptions.from_config(predictor.config, predictor.spec)


@st.cache_data(show_spinner="Running the model…", max_entries=16)
def predict(model_path: str, digest: str, _image: np.ndarray):
    """The Predictor's full result for one image (raw outputs kept), as `pdl predict`/`evaluate` get it.
    The digest keys the cache; the array itself is not hashed."""
    return load_predictor(model_path)(_image, return_raw=True)


def run_heads(model_path: str, digest: str, _image: np.ndarray) -> Heads:
    """The network's outputs for one image, resized back to the image's size."""
    prediction = predict(model_path, digest, _image)
    return Heads(
        semantic_probs=np.asarray(prediction.semantic_probs, np.float32),
        center_heatmap=np.asarray(prediction.center_heatmap, np.float32).reshape(_image.shape[:2]),
        offsets=np.asarray(prediction.offsets, np.float32),
        notes=list(prediction.notes),
    )


@st.cache_data(show_spinner=False, max_entries=64)
def fuse(model_path: str, digest: str, options: PostProcessOptions, _heads: Heads) -> Fused:
    """Post-processing only, on the cached head outputs at the image's size (the Predictor fuses at
    the padded network size, so a boundary pixel may differ from `pdl predict` after resizing)."""
    from panoptic_deeplab.postprocess import post_process

    out = post_process(
        _heads.semantic_probs,
        _heads.center_heatmap,
        _heads.offsets,
        options,
        semantic_is_probability=True,
    )
    out = {k: np.asarray(v) for k, v in out.items()}
    instances = [
        {"center": k, "id": int(i), "class_id": int(c), "area": int(a), "score": float(s)}
        for k, (i, c, a, s) in enumerate(
            zip(
                out["instance_ids"],
                out["instance_classes"],
                out["instance_areas"],
                out["instance_scores"],
            )
        )
    ]
    return Fused(
        out["panoptic"],
        out["semantic"],
        out["instance_map"],
        out["center_points"].reshape(-1, 2),
        out["center_scores"],
        instances,
    )


@st.cache_data(show_spinner=False, ttl=60)
def available_samples(data_root: Path | None, limit: int = 12) -> dict[str, Path]:
    """Sample images: from the app's data set (val split first) and the shipped samples."""
    from panoptic_deeplab.settings import samples_dir

    samples: dict[str, Path] = {}
    assets = samples_dir()
    if assets is not None:
        for p in sorted(assets.iterdir()):
            if p.suffix.lower() in (".png", ".jpg", ".jpeg"):
                samples[p.name] = p
    if data_root is not None and data_root.is_dir():
        from panoptic_deeplab.datasets.readers import open_dataset
        from panoptic_deeplab.errors import UserError

        for split in ("val", "train"):
            try:
                reader = open_dataset(data_root, split)
            except UserError:
                continue
            for example in list(reader)[:limit]:
                samples[f"{split}/{Path(example.image_path).name}"] = Path(example.image_path)
            break
    return samples
