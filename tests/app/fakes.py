"""A stand-in for panoptic_deeplab.inference.Predictor with hand-made head outputs, so the app's
pages can be tested without building a network: two cars on a road, each car's pixels pointing at
its center and a heatmap peak (score 0.9 and 0.6) there. The real post-processing runs on them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from panoptic_deeplab.config import Config, PostProcessConfig
from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.postprocess import PostProcessOptions, post_process

ROAD, CAR = 0, 6
SCORES = (0.9, 0.6)


def car_boxes(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of the two cars, as fractions of the image so any size works."""
    return [
        (height // 4, height // 2, width // 8, width // 3),
        (height // 2, 3 * height // 4, width // 2, 3 * width // 4),
    ]


def car_centers(height: int, width: int) -> list[tuple[int, int]]:
    return [((y0 + y1 - 1) // 2, (x0 + x1 - 1) // 2) for y0, y1, x0, x1 in car_boxes(height, width)]


class FakePredictor:
    def __init__(self, path=None):
        self.spec = get_dataset_spec("synthetic")
        self.config = Config(
            postprocess=PostProcessConfig(
                center_threshold=0.1, nms_kernel=7, keep_k_centers=200, stuff_area_limit=0
            )
        )
        self.calls = 0

    def describe(self) -> str:
        return "tf, precision fp32 (as requested)"

    def __call__(self, image: np.ndarray, *, return_raw: bool = True):
        """Like Predictor.__call__, but only the raw outputs are filled in."""
        self.calls += 1
        h, w = image.shape[:2]
        c = self.spec.num_classes
        logits = np.zeros((h, w, c), np.float32)
        logits[..., ROAD] = 3.0
        heat = np.zeros((h, w), np.float32)
        offsets = np.zeros((h, w, 2), np.float32)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        for (y0, y1, x0, x1), (cy, cx), score in zip(car_boxes(h, w), car_centers(h, w), SCORES):
            logits[y0:y1, x0:x1, CAR] = 5.0
            offsets[y0:y1, x0:x1, 0] = cy - yy[y0:y1, x0:x1]
            offsets[y0:y1, x0:x1, 1] = cx - xx[y0:y1, x0:x1]
            heat = np.maximum(
                heat, score * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 2.0**2))
            )
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs = e / e.sum(axis=-1, keepdims=True)
        fused = post_process(
            probs,
            heat,
            offsets,
            PostProcessOptions.from_config(self.config, self.spec),
            semantic_is_probability=True,
        )
        panoptic = np.asarray(fused["panoptic"])
        n = (
            int(fused["num_centers"])
            if "num_centers" in fused
            else len(np.asarray(fused["instance_ids"]))
        )
        scores = {
            int(i): float(s)
            for i, s in zip(
                np.asarray(fused["instance_ids"])[:n], np.asarray(fused["instance_scores"])[:n]
            )
            if i > 0
        }
        segments = [
            SimpleNamespace(id=int(v), score=scores.get(int(v), 0.0))
            for v in np.unique(panoptic)
            if int(v) // self.spec.label_divisor != self.spec.ignore_label
        ]
        return SimpleNamespace(
            semantic_probs=probs,
            center_heatmap=heat,
            offsets=offsets,
            notes=[],
            panoptic=panoptic,
            semantic=np.asarray(fused["semantic"]),
            segments=segments,
        )
