"""The bfloat16 accuracy guard as a reusable helper: run any bundle in fp32 and in a lower precision
and report how far the raw outputs and the PQ move, on a labelled split (``precision_guard``) or,
for a model without labelled data, against its own fp32 panoptic maps (``agreement_guard``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RAW_KEYS = ("semantic_probs", "center_heatmap", "offsets")


@dataclass
class GuardReport:
    precision: str
    max_abs: dict  # raw output -> max |low - fp32| over all pixels of all images
    mean_abs: dict  # raw output -> mean |low - fp32| (the mean of the per-image means)
    pq_fp32: float  # PQ in points (0..100)
    pq_low: float
    semantic_agreement: float  # fraction of pixels whose argmax class is the same

    @property
    def pq_delta(self) -> float:
        return abs(self.pq_low - self.pq_fp32)


class _Differences:
    """Raw-output differences of the low-precision predictions against the fp32 ones, image by
    image."""

    def __init__(self):
        self.max_abs = dict.fromkeys(RAW_KEYS, 0.0)
        self.sums = dict.fromkeys(RAW_KEYS, 0.0)
        self.images = self.agree = self.pixels = 0

    def add(self, ref, low) -> None:
        for key in RAW_KEYS:
            diff = np.abs(getattr(low, key) - getattr(ref, key))
            self.max_abs[key] = max(self.max_abs[key], float(diff.max()))
            self.sums[key] += float(diff.sum()) / diff.size
        self.agree += int(np.count_nonzero(low.semantic == ref.semantic))
        self.pixels += ref.semantic.size
        self.images += 1

    def report(self, precision: str, evaluations: dict) -> GuardReport:
        pq = {name: 100.0 * ev.result().panoptic.all.pq for name, ev in evaluations.items()}
        return GuardReport(
            precision,
            self.max_abs,
            {k: v / self.images for k, v in self.sums.items()},
            pq["fp32"],
            pq[precision],
            self.agree / self.pixels,
        )


def _predictors(bundle_dir, precision: str, backend: str) -> dict:
    from panoptic_deeplab.bundle import load_bundle
    from panoptic_deeplab.inference import Predictor

    return {
        "fp32": Predictor(load_bundle(bundle_dir, precision="fp32")),
        precision: Predictor(load_bundle(bundle_dir, precision=precision), backend=backend),
    }


def precision_guard(
    bundle_dir,
    dataset_root,
    split: str = "val",
    precision: str = "bf16",
    limit: int | None = None,
    backend: str = "tf",
) -> GuardReport:
    """fp32 on TensorFlow against ``precision`` on ``backend``, image by image over the split."""
    from panoptic_deeplab.datasets.readers import open_dataset
    from panoptic_deeplab.evaluation.evaluate_split import Evaluation

    runs = _predictors(bundle_dir, precision, backend)
    reader = open_dataset(dataset_root, split, spec=runs["fp32"].spec)
    evaluations = {name: Evaluation(runs["fp32"].spec, ap="none") for name in runs}
    differences = _Differences()
    for index, example in enumerate(list(reader)[:limit]):
        image = reader.load_image(index)
        gt = reader.load_panoptic(index)
        preds = {name: predictor(image, return_raw=True) for name, predictor in runs.items()}
        for name, pred in preds.items():
            evaluations[name].add(index, str(example.image_path), gt, pred)
        differences.add(preds["fp32"], preds[precision])
    return differences.report(precision, evaluations)


def agreement_guard(
    bundle_dir, images, precision: str = "bf16", backend: str = "tf"
) -> GuardReport:
    """For a model without labelled data (an imported checkpoint with random weights): the fp32
    panoptic map is the ground truth, so ``pq_fp32`` is 100 by construction and ``pq_low`` is the PQ
    of the ``precision`` maps against the fp32 ones."""
    from panoptic_deeplab.evaluation.evaluate_split import Evaluation

    runs = _predictors(bundle_dir, precision, backend)
    evaluations = {name: Evaluation(runs["fp32"].spec, ap="none") for name in runs}
    differences = _Differences()
    for index, image in enumerate(images):
        preds = {name: predictor(image, return_raw=True) for name, predictor in runs.items()}
        for name, pred in preds.items():
            evaluations[name].add(index, f"image {index}", preds["fp32"].panoptic, pred)
        differences.add(preds["fp32"], preds[precision])
    return differences.report(precision, evaluations)


def weight_rounding_agreement(bundle_dir, images) -> float:
    """Fraction of pixels whose class stays when only the weights are rounded to bfloat16 and the
    arithmetic stays float32: how sensitive the network itself is to bfloat16-sized changes."""
    import tensorflow as tf

    from panoptic_deeplab.bundle import load_bundle
    from panoptic_deeplab.inference import Predictor

    exact = Predictor(load_bundle(bundle_dir, precision="fp32"))
    rounded = Predictor(load_bundle(bundle_dir, precision="fp32"))
    for weight in rounded.pipeline.model.weights:
        weight.assign(tf.cast(tf.cast(weight, tf.bfloat16), weight.dtype))
    agree = pixels = 0
    for image in images:
        a, b = exact(image, return_raw=False).semantic, rounded(image, return_raw=False).semantic
        agree += int(np.count_nonzero(a == b))
        pixels += a.size
    return agree / pixels
