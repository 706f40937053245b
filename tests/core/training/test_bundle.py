"""Model bundles: round trip, and clear errors for incomplete or mismatched bundles."""

import json

import numpy as np
import pytest

from panoptic_deeplab.bundle import load_bundle, save_bundle
from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.errors import CheckpointError
from panoptic_deeplab.model.builder import build_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory, request):
    from tests.core.training.scenes import tiny_config

    config = tiny_config()
    spec = get_dataset_spec("synthetic")
    model = build_model(config, num_classes=spec.num_classes)
    path = save_bundle(
        tmp_path_factory.mktemp("b") / "model", model, config, spec, metrics={"pq": 0.5}, steps=7
    )
    return path, model, config, spec


def test_round_trip_gives_the_same_predictions_and_metadata(saved):
    path, model, config, spec = saved
    assert sorted(p.name for p in path.iterdir()) == [
        "bundle.json",
        "config.yaml",
        "dataset_spec.json",
        "metrics.json",
        "model.weights.h5",
    ]
    bundle = load_bundle(path)
    assert bundle.spec == spec
    assert bundle.config.model == config.model
    assert bundle.metrics == {"pq": 0.5}
    info = json.loads((path / "bundle.json").read_text())
    assert info["format_version"] == 1 and info["steps"] == 7
    assert info["param_count"] == model.count_params() == bundle.model.count_params()
    image = np.random.default_rng(0).uniform(0, 255, (1, 65, 97, 3)).astype(np.float32)
    a, b = model(image, training=False), bundle.model(image, training=False)
    for key in ("semantic_logits", "center_heatmap", "offsets"):
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), atol=1e-5)


def test_missing_file_names_the_file(saved, tmp_path):
    import shutil

    path = tmp_path / "m"
    shutil.copytree(saved[0], path)
    (path / "dataset_spec.json").unlink()
    with pytest.raises(CheckpointError, match="dataset_spec.json: missing"):
        load_bundle(path)
    with pytest.raises(CheckpointError, match="no such bundle directory"):
        load_bundle(tmp_path / "nowhere")


def test_weights_that_do_not_fit_the_config_are_a_checkpoint_error(saved, tmp_path):
    import shutil

    import yaml

    path = tmp_path / "m"
    shutil.copytree(saved[0], path)
    cfg = yaml.safe_load((path / "config.yaml").read_text())
    cfg["model"]["semantic_decoder"]["head_channels"] = 48  # different head width than the weights
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(CheckpointError, match="model.weights.h5: weights do not match"):
        load_bundle(path)


def test_saving_over_an_existing_bundle_replaces_it(saved, tmp_path):
    path, model, config, spec = saved
    target = tmp_path / "model"
    save_bundle(target, model, config, spec, metrics={"pq": 0.1})
    save_bundle(target, model, config, spec, metrics={"pq": 0.2})
    assert json.loads((target / "metrics.json").read_text()) == {"pq": 0.2}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folders left
