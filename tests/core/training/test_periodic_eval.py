"""make_periodic_evaluator: the library's post-processing and metrics on a validation split."""
import numpy as np
import tensorflow as tf

from panoptic_deeplab.datasets.readers import open_dataset
from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset
from panoptic_deeplab.training.periodic_eval import make_periodic_evaluator
from scenes import tiny_config

SIDEWALK, ROAD = 1, 0


def network_with_a_small_stuff_region(features, training=False):
    """Road everywhere except a 3x3 sidewalk patch (9 px, under the area limit), no centers."""
    image = features
    b, h, w = image.shape[0], image.shape[1], image.shape[2]
    labels = np.full((b, h, w), ROAD)
    labels[:, 2:5, 2:5] = SIDEWALK
    logits = np.eye(8, dtype=np.float32)[labels] * 5.0
    return {"semantic_logits": tf.constant(logits), "center_heatmap": tf.zeros((b, h, w, 1)),
            "offsets": tf.zeros((b, h, w, 2))}


def test_a_stuff_region_under_the_area_limit_becomes_void_not_an_unknown_class(tmp_path):
    root = make_synthetic_dataset(tmp_path / "synthetic", num_train=0, num_val=2, height=65, width=97, seed=3,
                                  workers=1)
    spec = get_dataset_spec("synthetic")
    config = tiny_config(**{"postprocess.stuff_area_limit": 50})
    evaluate = make_periodic_evaluator(open_dataset(root, "val"), "val", config, spec)
    metrics = evaluate(network_with_a_small_stuff_region, step=1)  # raised on an unknown class 255000
    assert metrics["images"] == 2
    # Only road is predicted: the voided sidewalk patch costs no false positive, so road's PQ is
    # what is left, and PQ over the classes is finite.
    assert 0.0 <= metrics["pq"] <= 100.0 and 0.0 < metrics["pq_stuff"]
