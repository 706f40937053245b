"""The bfloat16 accuracy guard as a reusable helper: run any bundle in fp32 and in a lower precision
on a labelled split and report how far the raw outputs and the PQ move."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RAW_KEYS = ("semantic_probs", "center_heatmap", "offsets")


@dataclass
class GuardReport:
    precision: str
    max_abs: dict  # raw output -> max |low - fp32| over all pixels of all images
    mean_abs: dict  # raw output -> mean |low - fp32|
    pq_fp32: float  # PQ in points (0..100)
    pq_low: float
    semantic_agreement: float  # fraction of pixels whose argmax class is the same

    @property
    def pq_delta(self) -> float:
        return abs(self.pq_low - self.pq_fp32)


def precision_guard(bundle_dir, dataset_root, split: str = "val", precision: str = "bf16", limit: int | None = None,
                    backend: str = "tf") -> GuardReport:
    """fp32 on TensorFlow against ``precision`` on ``backend``, image by image over the split."""
    from panoptic_deeplab.evaluation.evaluate_split import Evaluation
    from panoptic_deeplab.datasets.readers import open_dataset
    from panoptic_deeplab.bundle import load_bundle
    from panoptic_deeplab.inference import Predictor

    runs = {"fp32": Predictor(load_bundle(bundle_dir, precision="fp32")),
            precision: Predictor(load_bundle(bundle_dir, precision=precision), backend=backend)}
    reader = open_dataset(dataset_root, split, spec=runs["fp32"].spec)
    evaluations = {name: Evaluation(runs["fp32"].spec, ap="none") for name in runs}
    max_abs = dict.fromkeys(RAW_KEYS, 0.0)
    sums, count, agree, pixels = dict.fromkeys(RAW_KEYS, 0.0), 0, 0, 0
    for index, example in enumerate(list(reader)[:limit]):
        image = reader.load_image(index)
        gt = reader.load_panoptic(index)
        preds = {name: predictor(image, return_raw=True) for name, predictor in runs.items()}
        for name, pred in preds.items():
            evaluations[name].add(index, str(example.image_path), gt, pred)
        ref, low = preds["fp32"], preds[precision]
        for key in RAW_KEYS:
            diff = np.abs(getattr(low, key) - getattr(ref, key))
            max_abs[key] = max(max_abs[key], float(diff.max()))
            sums[key] += float(diff.sum()) / diff.size
        agree += int(np.count_nonzero(low.semantic == ref.semantic))
        pixels += ref.semantic.size
        count += 1
    pq = {name: 100.0 * ev.result()["panoptic"]["All"]["pq"] for name, ev in evaluations.items()}
    return GuardReport(precision, max_abs, {k: v / count for k, v in sums.items()}, pq["fp32"], pq[precision],
                       agree / pixels)
