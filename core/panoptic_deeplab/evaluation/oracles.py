"""Oracle ablations (the Panoptic-DeepLab paper's oracle experiments, per class and image): ground
truth in place of one or more heads' outputs, then the same post-processing and the same PQ.

The ground truth comes from the trainer's own ``make_targets`` (at the image's own size, with the
config's ``data.sigma``):

* ``semantic``: one-hot GT classes in place of the softmax probabilities, wherever the GT has a
  class (void pixels keep the model's probabilities: there is no ground truth there);
* ``center``: the GT heatmap in place of the predicted one: a Gaussian with peak exactly 1 at each
  non-crowd instance's mass center, rounded half to even, the very point the offset targets point
  at and the grouping measures distances to;
* ``offset``: the GT offsets (integer center - pixel) on non-crowd instance pixels; elsewhere
  (stuff, crowd, void) the model's offsets, which the grouping only reads where the semantic map
  says thing;
* ``all``: the three together; ``none``: nothing replaced, the model's raw maps fused again at the
  image's size (a check of the route: it equals the model's own PQ when the network ran unresized).

Post-processing runs on the maps at the image's own size (the raw outputs the Predictor returns),
with the evaluated model's settings. Why ``all`` stays below 100 is counted by :func:`shortfall`.
TensorFlow is imported on first use only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError

HEADS = ("semantic", "center", "offset")


def parse_oracles(text: str) -> dict[str, tuple[str, ...]]:
    """``"semantic,center,offset,all"`` -> {name: heads replaced}; ``a+b`` combines heads."""
    out: dict[str, tuple[str, ...]] = {}
    for name in (t.strip() for t in str(text).split(",")):
        if not name:
            continue
        if name == "all":
            heads = HEADS
        elif name == "none":
            heads = ()
        else:
            parts = name.split("+")
            bad = [p for p in parts if p not in HEADS]
            if bad:
                raise UserError(
                    f"--oracle: unknown head {bad[0]!r} in {text!r}. Give a comma-separated list "
                    "of semantic, center, offset, all (the three), none, or combinations such as "
                    "semantic+center."
                )
            heads = tuple(h for h in HEADS if h in parts)
        out[name] = heads
    if not out:
        raise UserError(
            f"--oracle {text!r}: no oracle named. Give for example --oracle "
            "semantic,center,offset,all."
        )
    return out


@dataclass
class OracleOutput:
    """What the evaluator reads of a prediction (panoptic and semantic maps), plus the centers."""

    panoptic: np.ndarray
    semantic: np.ndarray
    center_points: np.ndarray
    segments: tuple = ()  # no AP scores are computed for oracles


class OracleRunner:
    """An image's GT targets once, then post-processing of each oracle's mix of GT and model."""

    def __init__(self, spec, options, sigma: float):
        self.spec = spec
        self.options = options  # a postprocess.PostProcessOptions: the evaluated model's settings
        self.sigma = float(sigma)

    def targets(self, gt_panoptic: np.ndarray) -> dict[str, np.ndarray]:
        from ..data.targets import make_targets

        spec = self.spec
        t = make_targets(
            np.asarray(gt_panoptic, np.int64),
            thing_class_ids=spec.thing_class_ids,
            label_divisor=spec.label_divisor,
            ignore_label=spec.ignore_label,
            sigma=self.sigma,
        )
        return {
            k: t[k].numpy() for k in ("semantic", "center_heatmap", "offsets", "offset_weights")
        }

    def run(self, prediction, targets: dict, heads: tuple[str, ...]) -> OracleOutput:
        from ..postprocess import post_process

        probs, heat, offsets = (
            prediction.semantic_probs,
            prediction.center_heatmap,
            prediction.offsets,
        )
        if probs is None or heat is None or offsets is None:
            raise ValueError("oracles need the raw outputs: predict with return_raw=True")
        if "semantic" in heads:
            gt = targets["semantic"]
            known = (gt >= 0) & (gt < probs.shape[-1])
            one_hot = np.eye(probs.shape[-1], dtype=np.float32)[np.where(known, gt, 0)]
            probs = np.where(known[..., None], one_hot, probs)
        if "center" in heads:
            heat = targets["center_heatmap"]
        if "offset" in heads:
            offsets = np.where(
                targets["offset_weights"][..., None] > 0, targets["offsets"], offsets
            )
        out = post_process(probs, heat, offsets, self.options, semantic_is_probability=True)
        n = int(out["num_centers"])
        return OracleOutput(
            np.asarray(out["panoptic"]),
            np.asarray(out["semantic"]),
            np.asarray(out["center_points"])[:n],
        )


def instance_centers(gt_panoptic: np.ndarray, spec) -> dict[int, tuple[int, int]]:
    """Non-crowd GT instance id -> its center as ``make_targets`` places it (mass center, rounded
    half to even)."""
    label = np.asarray(gt_panoptic, np.int64)
    things = np.isin(label // spec.label_divisor, list(spec.thing_class_ids)) & (
        label % spec.label_divisor > 0
    )
    out = {}
    for value in np.unique(label[things]).tolist():
        ys, xs = np.nonzero(label == value)
        out[int(value)] = (int(np.round(ys.mean())), int(np.round(xs.mean())))
    return out


def center_accounting(gt_panoptic: np.ndarray, found_points: np.ndarray, spec) -> dict:
    """Of the GT instances of one image: how many have no center of their own (their center pixel
    is an earlier instance's, so one peak stands for both) and how many centers the post-processing
    did not return (more instances than keep_k_centers, or a peak not above the threshold)."""
    centers = instance_centers(gt_panoptic, spec)
    found = {(int(y), int(x)) for y, x in np.asarray(found_points).reshape(-1, 2).tolist()}
    points = list(centers.values())
    shared = len(points) - len(set(points))
    lost = sum(p not in found for p in set(points))
    return {"instances": len(points), "shared_center": shared, "center_not_found": lost}


def shortfall(result: dict, accounting: dict, crowd_segments: int) -> list[str]:
    """Why an oracle's PQ is below 100, in sentences with the counts (for the output and docs)."""
    errors = result.get("errors") or {}
    overall = errors.get("All") or {}
    pq = overall.get("pq")
    if pq is None:
        return []
    if pq >= 100.0 - 1e-9:
        return [
            "PQ 100.00: nothing lost (no shared centers, no stuff voided by the area limit, "
            "no crowd in the way)."
        ]
    lines = [f"PQ {pq:.2f}: {100 - pq:.2f} points short of 100."]
    points = overall.get("points", {})
    counts = overall.get("counts", {})
    from .error_breakdown import LABELS

    for key, value in sorted(points.items(), key=lambda kv: -kv[1]):
        if value >= 0.005:
            count = f" ({counts[key]} segments)" if key in counts else ""
            lines.append(f"  {value:.2f} points: {LABELS.get(key, key)}{count}")
    if accounting.get("shared_center"):
        lines.append(
            f"  {accounting['shared_center']} GT instances have no center of their own: their mass "
            "center is another instance's pixel (one peak for both), so the grouping merges them."
        )
    if accounting.get("center_not_found"):
        lines.append(
            f"  {accounting['center_not_found']} GT centers were not returned by post-processing "
            "(more instances than keep_k_centers)."
        )
    if counts.get("stuff_area_limit"):
        lines.append(
            f"  {counts['stuff_area_limit']} GT stuff segments have a class area <= "
            "stuff_area_limit in their image and are voided by post-processing (a rule of the "
            "method, not of a head)."
        )
    if crowd_segments:
        lines.append(
            f"  {crowd_segments} crowd regions: their pixels have the class but no center; the "
            "grouping gives them to the nearest instance, which lowers that instance's IoU."
        )
    return lines
