"""Model cards: the domain a bundle names, its reference scene confidence, and the warning for an
image far from it; bundles without them fall back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from panoptic_deeplab.model_card import (
    ModelCard,
    domain_warning,
    read_model_card,
    reference_figure,
    scene_confidence,
)

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "models" / "synthetic_demo"


def test_scene_confidence_is_the_mean_max_probability():
    probs = np.array([[[0.9, 0.1], [0.5, 0.5]]], np.float32)
    assert scene_confidence(probs) == np.float32(0.7)
    figure = reference_figure([0.9, 0.95, 1.0], "val")
    assert figure["images"] == 3 and figure["mean"] == 0.95 and 0.9 <= figure["low"] < 0.91


def test_the_shipped_demo_names_its_domain_and_reference():
    card = read_model_card(SHIPPED)
    assert (
        card.recorded
        and "synthetic street scenes" in card.domain
        and "not real photographs" in card.domain
    )
    assert (
        card.reference["images"] == 60 and 0.9 < card.reference["low"] < card.reference["mean"] < 1
    )


def test_an_old_bundle_falls_back_and_gives_no_verdict(tmp_path):
    (tmp_path / "bundle.json").write_text(json.dumps({"format_version": 1}))
    (tmp_path / "dataset_spec.json").write_text(
        json.dumps({"name": "synthetic", "class_names": ["road", "car"]})
    )
    card = read_model_card(tmp_path)
    assert not card.recorded and card.reference is None
    assert "no domain recorded" in card.domain and "road, car" in card.domain
    assert domain_warning(0.1, card) is None


def test_a_low_scene_confidence_is_warned_about():
    card = ModelCard(
        "street scenes", True, {"mean": 0.95, "low": 0.94, "images": 60, "low_percentile": 5}
    )
    assert domain_warning(0.96, card) is None
    warning = domain_warning(0.62, card)
    assert "0.62, below 0.94" in warning and "street scenes" in warning
