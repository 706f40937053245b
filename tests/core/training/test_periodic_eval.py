"""make_periodic_evaluator: the library's post-processing and metrics on a validation split."""

import numpy as np
import tensorflow as tf

from panoptic_deeplab.datasets.readers import open_dataset
from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset
from panoptic_deeplab.training.periodic_eval import make_periodic_evaluator
from tests.core.training.scenes import tiny_config

SIDEWALK, ROAD = 1, 0


def network_with_a_small_stuff_region(features, training=False):
    """Road everywhere except a 3x3 sidewalk patch (9 px, under the area limit), no centers."""
    image = features
    b, h, w = image.shape[0], image.shape[1], image.shape[2]
    labels = np.full((b, h, w), ROAD)
    labels[:, 2:5, 2:5] = SIDEWALK
    logits = np.eye(8, dtype=np.float32)[labels] * 5.0
    return {
        "semantic_logits": tf.constant(logits),
        "center_heatmap": tf.zeros((b, h, w, 1)),
        "offsets": tf.zeros((b, h, w, 2)),
    }


def test_a_stuff_region_under_the_area_limit_becomes_void_not_an_unknown_class(tmp_path):
    root = make_synthetic_dataset(
        tmp_path / "synthetic", num_train=0, num_val=2, height=65, width=97, seed=3, workers=1
    )
    spec = get_dataset_spec("synthetic")
    config = tiny_config(**{"postprocess.stuff_area_limit": 50})
    evaluate = make_periodic_evaluator(open_dataset(root, "val"), "val", config, spec)
    metrics = evaluate(
        network_with_a_small_stuff_region, step=1
    )  # raised on an unknown class 255000
    assert metrics["images"] == 2
    # Only road is predicted: the voided sidewalk patch costs no false positive, so road's PQ is
    # what is left, and PQ over the classes is finite.
    assert 0.0 <= metrics["pq"] <= 100.0 and 0.0 < metrics["pq_stuff"]


def test_periodic_evaluation_gives_pdl_evaluates_numbers_on_the_saved_bundle(tmp_path):
    """`pdl train --eval-split` and `pdl evaluate` share one evaluation function: the periodic
    evaluator's numbers on a network in memory (the shipped demo model's, so things and stuff are
    found) are those `pdl evaluate` computes on the same network saved as a bundle, exactly: all /
    things / stuff, per class, mIoU, the error breakdown and per image."""
    import json

    from panoptic_deeplab.bundle import load_bundle, save_bundle
    from panoptic_deeplab.cli import main
    from panoptic_deeplab.settings import shipped_models_dir

    root = make_synthetic_dataset(
        tmp_path / "synthetic", num_train=0, num_val=3, height=65, width=97, seed=7, workers=1
    )
    demo = load_bundle(shipped_models_dir() / "synthetic_demo", precision="fp32")
    network, config, spec = (
        demo.model,
        demo.config,
        demo.spec,
    )  # what training evaluates: a network in memory
    bundle = save_bundle(tmp_path / "model", network, config, spec)

    evaluate = make_periodic_evaluator(open_dataset(root, "val"), "val", config, spec)
    periodic = evaluate(network, step=1)
    out = tmp_path / "r.json"
    # fp32 as the network in memory: keeps `--precision auto` from picking bf16 on a CPU or GPU
    # that has it.
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(bundle),
                "--dataset",
                str(root),
                "--split",
                "val",
                "--ap",
                "none",
                "--precision",
                "fp32",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    cli = json.loads(out.read_text())

    assert periodic["images"] == cli["num_images"] == 3
    panoptic = cli["panoptic"]
    assert (
        panoptic["Things"]["n"] > 0 and panoptic["Stuff"]["n"] > 0 and panoptic["All"]["pq"] > 0.3
    )
    expected = {
        "pq": panoptic["All"]["pq"],
        "sq": panoptic["All"]["sq"],
        "rq": panoptic["All"]["rq"],
        "pq_things": panoptic["Things"]["pq"],
        "pq_stuff": panoptic["Stuff"]["pq"],
        "miou": cli["semantic"]["miou"],
    }
    assert {k: periodic[k] for k in expected} == expected  # exactly, not approximately
    # The periodic evaluator's whole result, through the JSON `pdl evaluate --out` writes.
    kept = json.loads(json.dumps(evaluate.last_result.to_json()))
    assert kept["panoptic"]["per_class"] == panoptic["per_class"]
    assert kept["semantic"] == cli["semantic"]
    assert kept["errors"] == cli["errors"]
    assert kept["per_image"] == cli["per_image"]
