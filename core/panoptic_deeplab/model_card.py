"""What a model was trained on, and whether an image looks like it.

A bundle's ``bundle.json`` may carry ``domain`` (one line: the images the model was trained on);
its ``metrics.json`` may carry ``scene_confidence``: the distribution, over the model's own
validation images, of the *scene confidence* of an image, the mean over its pixels of the largest
semantic probability. An image whose score falls below the low end of that distribution (its 5th
percentile) is unlike what the model was validated on, and its output deserves suspicion. Bundles
without these fields (older ones) fall back to the class table's name and give no verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LOW_PERCENTILE = 5


@dataclass(frozen=True)
class ModelCard:
    domain: str  # what the model knows, for people
    recorded: bool  # False: the bundle names no domain (the text is a fallback)
    reference: dict | None  # metrics.json "scene_confidence", None when absent


def scene_confidence(semantic_probs: np.ndarray) -> float:
    """Mean over pixels of the largest class probability (softmax), in [1/C, 1]."""
    probs = np.asarray(semantic_probs, np.float32)
    return float(probs.max(axis=-1).mean())


def reference_figure(scores, data: str) -> dict:
    """The ``scene_confidence`` entry of metrics.json from a validation set's per-image scores."""
    scores = np.asarray(list(scores), np.float64)
    if scores.size == 0:
        raise ValueError("no scores: the validation set had no readable image")
    return {
        "measure": "mean max semantic probability per image",
        "images": int(scores.size),
        "mean": round(float(scores.mean()), 4),
        "low": round(float(np.percentile(scores, LOW_PERCENTILE)), 4),
        "low_percentile": LOW_PERCENTILE,
        "min": round(float(scores.min()), 4),
        "data": data,
    }


def read_model_card(directory: str | Path) -> ModelCard:
    """The domain and reference figure of a bundle (JSON only; unreadable parts fall back)."""
    directory = Path(directory)
    info, metrics = _json(directory / "bundle.json"), _json(directory / "metrics.json")
    domain = info.get("domain")
    reference = metrics.get("scene_confidence")
    reference = reference if isinstance(reference, dict) and "low" in reference else None
    if isinstance(domain, str) and domain.strip():
        return ModelCard(domain.strip(), True, reference)
    spec = _json(directory / "dataset_spec.json")
    names = spec.get("class_names") or []
    fallback = (
        f"no domain recorded in this bundle; it knows the {len(names)} classes of "
        f"'{spec.get('name', '?')}'"
        + (f" ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})" if names else "")
    )
    return ModelCard(fallback, False, reference)


def domain_warning(score: float, card: ModelCard) -> str | None:
    """A sentence when ``score`` is below the model's validation low end, else None."""
    ref = card.reference
    if ref is None or score >= float(ref["low"]):
        return None
    return (
        "This image looks unlike what the model was trained on: its scene confidence (mean max "
        f"class probability) is {score:.2f}, below {float(ref['low']):.2f}, the "
        f"{ref.get('low_percentile', LOW_PERCENTILE)}th percentile of the model's own validation "
        f"images (mean {float(ref['mean']):.2f}, {ref.get('images', '?')} images). The model "
        f"knows: {card.domain}. Treat its output as unreliable."
    )


def measure_reference(
    bundle_dir: str | Path, dataset_root: str | Path, split: str = "val", limit: int | None = None
) -> dict:
    """Scene confidences of a bundle on a data set split (the model's validation images)."""
    from .datasets.readers import open_dataset
    from .inference import Predictor

    predictor = Predictor(bundle_dir)
    reader = open_dataset(dataset_root, split)
    count = len(reader) if limit is None else min(limit, len(reader))
    scores = [
        scene_confidence(predictor(reader.load_image(i), return_raw=True).semantic_probs)
        for i in range(count)
    ]
    return reference_figure(scores, f"{Path(dataset_root).name}/{split}")


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
