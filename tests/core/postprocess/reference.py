"""A slow, straightforward NumPy version of the post-processing rules, written from docs/method.md
§4 and deeplab2's C++ merge op, used as the oracle for random-case tests."""

from __future__ import annotations

import numpy as np


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def post_process_reference(
    logits,
    heatmap,
    offsets,
    *,
    thing_class_ids,
    label_divisor,
    void_label,
    center_threshold=0.1,
    nms_kernel=7,
    keep_k_centers=200,
    stuff_area_limit=2048,
):
    logits = np.asarray(logits, np.float32)
    heatmap = np.asarray(heatmap, np.float32).reshape(logits.shape[:2])
    offsets = np.asarray(offsets, np.float32)
    h, w, c = logits.shape
    things = set(int(t) for t in thing_class_ids)
    labels = logits.argmax(axis=-1)

    # Threshold, then NMS with an explicitly zero-padded k x k max filter.
    heat = np.where(heatmap > center_threshold, heatmap, np.float32(0))
    r = nms_kernel // 2
    padded = np.zeros((h + 2 * r, w + 2 * r), np.float32)
    padded[r : r + h, r : r + w] = heat
    peaks = []
    for y in range(h):
        for x in range(w):
            if (
                heat[y, x] > 0
                and heat[y, x] == padded[y : y + nms_kernel, x : x + nms_kernel].max()
            ):
                peaks.append((y, x))
    # Keep the k highest; equal scores keep the earlier peak in row-major order.
    order = sorted(range(len(peaks)), key=lambda i: (-heat[peaks[i]], i))[:keep_k_centers]
    centers = [peaks[i] for i in sorted(order)]
    scores = [float(heat[p]) for p in centers]

    # Grouping: nearest center (float32 L2, first on ties) to pixel + offset, thing pixels only.
    raw = np.zeros((h, w), np.int64)
    for y in range(h):
        for x in range(w):
            if labels[y, x] not in things or not centers:
                continue
            py = np.float32(y) + offsets[y, x, 0]
            px = np.float32(x) + offsets[y, x, 1]
            best, best_d = 0, None
            for i, (cy, cx) in enumerate(centers):
                dy, dx = py - np.float32(cy), px - np.float32(cx)
                d = dy * dy + dx * dx
                if best_d is None or d < best_d:
                    best, best_d = i, d
            raw[y, x] = best + 1

    # Merge (C++ op): majority vote with ties to the smaller label, per-class numbering.
    hist: dict[int, dict[int, int]] = {}
    stuff_area: dict[int, int] = {}
    for y in range(h):
        for x in range(w):
            s = int(labels[y, x])
            if s in things:
                hist.setdefault(int(raw[y, x]), {}).setdefault(s, 0)
                hist[int(raw[y, x])][s] += 1
            else:
                stuff_area[s] = stuff_area.get(s, 0) + 1
    new: dict[int, tuple[int, int]] = {}
    per_class: dict[int, int] = {}
    for inst in sorted(hist):
        label, best = -1, 0
        for s, n in sorted(hist[inst].items()):
            if n > best:
                label, best = s, n
        per_class[label] = per_class.get(label, 0) + 1
        new[inst] = (label, per_class[label])
    panoptic = np.zeros((h, w), np.int64)
    for y in range(h):
        for x in range(w):
            s = int(labels[y, x])
            if s in things:
                lab, i = new[int(raw[y, x])]
                panoptic[y, x] = lab * label_divisor + i
            elif stuff_area_limit > 0 and stuff_area[s] <= stuff_area_limit:
                panoptic[y, x] = void_label * label_divisor
            else:
                panoptic[y, x] = s * label_divisor

    probs = _softmax(logits.astype(np.float64))
    inst_ids, inst_scores = [], []
    for k in range(len(centers)):
        if k + 1 not in new:
            inst_ids.append(0)
            inst_scores.append(0.0)
            continue
        lab, i = new[k + 1]
        mask = raw == k + 1
        mask &= np.isin(labels, list(things))
        inst_ids.append(lab * label_divisor + i)
        inst_scores.append(float(probs[..., lab][mask].mean() * scores[k]))
    return {
        "panoptic": panoptic,
        "semantic": labels,
        "instance_map": raw,
        "center_points": np.array(centers, np.int64).reshape(-1, 2),
        "center_scores": np.array(scores),
        "instance_ids": np.array(inst_ids),
        "instance_scores": np.array(inst_scores),
    }
