"""Cached calls into the library: load a model once, run its heads once per image, and re-run only
the post-processing when a knob changes.

The process keeps the last ``MAX_MODELS`` predictors (one per bundle, shared by sessions, loaded
off the script thread); one cache bounded by bytes (memory_cache.BytesLRU) keeps predictions keyed
by (bundle, image digest) and fused results keyed by the post-processing options as well, so moving
a slider back is instant.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from panoptic_deeplab.app.components import background
from panoptic_deeplab.app.components.memory_cache import BytesLRU, budget_bytes
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


LOADING = "Loading TensorFlow and the model (once per app start)"


def image_digest(image: np.ndarray) -> str:
    return hashlib.sha1(
        np.ascontiguousarray(image).tobytes() + str(image.shape).encode()
    ).hexdigest()


# -- model -----------------------------------------------------------------------------------


MAX_MODELS = 4  # loaded models kept (each holds its network and traced functions)
_models: OrderedDict[str, Any] = OrderedDict()
_models_lock = threading.Lock()


def load_predictor(path: str):
    """The bundle's Predictor, loaded once per process on a worker thread (``warm_up`` starts it
    before any page asks); the page shows the seconds waited meanwhile."""
    with _models_lock:
        if path in _models:
            _models.move_to_end(path)
            return _models[path]
    return background.wait(("model", path), lambda: _load_and_keep(path), LOADING)


def warm_up(path: str) -> None:
    """Start loading the model now, off the script thread, and trace its pipeline at the config's
    crop size (the size the demo data set's images pad to), so the first picture does not wait for
    it; a page that needs the model meanwhile waits for this work rather than doing it twice."""
    with _models_lock:
        if path in _models:
            return
    background.start(("model", path), lambda: _load_and_keep(path, trace=True))


def _load_and_keep(path: str, trace: bool = False):
    predictor = _load(path)
    if trace and hasattr(predictor, "warm_up"):
        try:
            predictor.warm_up()
            _warm_up_fuse(predictor)
        except Exception:
            log.warning("warming up %s failed", path, exc_info=True)
    with _models_lock:
        _models[path] = predictor
        while len(_models) > MAX_MODELS:
            _models.popitem(last=False)
    return predictor


def _warm_up_fuse(predictor) -> None:
    """Trace the page's post-processing with the model's settings at the crop size (the demo
    samples' size) and at a second size, after which TensorFlow keeps one trace for any size: no
    image waits for a trace of its own."""
    height, width = (int(v) for v in predictor.config.dataset.crop_size)
    classes = predictor.spec.num_classes
    for h, w in ((height, width), (height + 1, width + 1)):
        blank = Heads(
            np.full((h, w, classes), 1.0 / classes, np.float32),
            np.zeros((h, w), np.float32),
            np.zeros((h, w, 2), np.float32),
        )
        _fuse(default_options(predictor), blank)


def _load(path: str):
    from panoptic_deeplab.inference import Predictor

    return Predictor(path)


def model_spec(predictor) -> DatasetSpec:
    return predictor.spec


def default_options(predictor) -> PostProcessOptions:
    """The bundle's post-processing settings; the knobs are overrides of these (``.replace``)."""
    from panoptic_deeplab.postprocess import PostProcessOptions

    return PostProcessOptions.from_config(predictor.config, predictor.spec)


_image_results: BytesLRU | None = None


def image_results() -> BytesLRU:
    """Predictions and fused results of all sessions, bounded by bytes ($PDL_APP_CACHE_MB)."""
    global _image_results
    if _image_results is None:
        _image_results = BytesLRU(budget_bytes())
    return _image_results


def forget_all() -> None:
    """Drop the loaded models and cached image results (tests swap models between runs)."""
    with _models_lock:
        _models.clear()
    image_results().clear()


def cached(key: tuple, make, label: str | None = None):
    """``make()`` once per ``key`` while it fits the byte budget; with a ``label``, it runs on a
    worker thread while the page counts the seconds."""
    cache = image_results()
    if label is None or key in cache:
        return cache.get_or_make(key, make)

    def make_and_keep():  # on the worker: kept even if the asking session stopped waiting
        value = make()
        cache.put(key, value)
        return value

    return background.wait(key, make_and_keep, label)


def predict(model_path: str, digest: str, _image: np.ndarray):
    """The Predictor's full result for one image (raw outputs kept), as `pdl predict`/`evaluate`
    get it. The digest keys the cache, the array itself is not hashed; the loaded predictor's id
    too, so a model loaded again (or swapped by a test) never serves another's result."""
    predictor = load_predictor(model_path)
    return cached(
        ("predict", model_path, id(predictor), digest),
        lambda: predictor(_image, return_raw=True),
        "Running the model",
    )


def run_heads(model_path: str, digest: str, _image: np.ndarray) -> Heads:
    """The network's outputs for one image, resized back to the image's size."""
    prediction = predict(model_path, digest, _image)
    return Heads(
        semantic_probs=np.asarray(prediction.semantic_probs, np.float32),
        center_heatmap=np.asarray(prediction.center_heatmap, np.float32).reshape(_image.shape[:2]),
        offsets=np.asarray(prediction.offsets, np.float32),
        notes=list(prediction.notes),
    )


def fuse(model_path: str, digest: str, options: PostProcessOptions, _heads: Heads) -> Fused:
    """Post-processing only, on the cached head outputs at the image's size (the Predictor fuses at
    the padded network size, so a boundary pixel may differ from `pdl predict` after resizing)."""
    return cached(("fuse", model_path, digest, options), lambda: _fuse(options, _heads))


def _fuse(options: PostProcessOptions, _heads: Heads) -> Fused:
    from panoptic_deeplab.postprocess import post_process

    # Without XLA: XLA compiles per image size (3-13 s each on a 2-core CPU), and the page sees
    # a new size with each upload; the graph traced by _warm_up_fuse serves every size, and at
    # the page's sizes it runs in tens of milliseconds (docs/performance.md).
    out = post_process(
        _heads.semantic_probs,
        _heads.center_heatmap,
        _heads.offsets,
        options,
        semantic_is_probability=True,
        xla=False,
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
