"""The Inspect page's five views of one prediction (input, semantic, centers, offsets, panoptic):
each is a picture (via panoptic_deeplab.visualize) plus the per-pixel hover text for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from panoptic_deeplab import visualize
from panoptic_deeplab.datasets.specs import DatasetSpec

from .model_io import Fused, Heads

STAGES = ("Input", "Semantic", "Centers", "Offsets", "Panoptic")

HoverFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, str]]


@dataclass
class View:
    overlay: np.ndarray  # the picture blended on the input (what "overlay" mode shows)
    alone: np.ndarray  # the picture by itself (the right half of "side by side")
    hover: HoverFn  # (ys, xs) -> (customdata [n, k], hovertemplate)


def segment_table(fused: Fused, spec: DatasetSpec) -> list[dict]:
    """One row per segment of the fused panoptic map: id, class, kind, instance, area, score."""
    values, areas = np.unique(fused.panoptic, return_counts=True)
    by_id = {row["id"]: row for row in fused.instances if row["id"] > 0}
    rows = []
    for value, area in zip(values.tolist(), areas.tolist()):
        cls, inst = divmod(int(value), spec.label_divisor)
        if cls == spec.ignore_label:
            name, kind = "void", "void"
        else:
            name, kind = class_name(spec, cls), "thing" if spec.is_thing(cls) else "stuff"
        instance = by_id.get(int(value))
        center = fused.center_points[instance["center"]] if instance else None
        rows.append(
            {
                "segment id": int(value),
                "class": name,
                "kind": kind,
                "instance": inst,
                "area": int(area),
                "score": f"{instance['score']:.3f}" if instance else MISSING,  # stuff: none
                "center (y, x)": f"({center[0]}, {center[1]})" if center is not None else "",
            }
        )
    return rows


MISSING = "–"  # a table cell with no value (never "None" or "nan")


def text_cells(frame, digits: int = 3):
    """``frame`` with every number written with ``digits`` decimals and every missing value as
    ``MISSING``, for tables a person reads."""
    import pandas as pd

    def cell(value):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return MISSING
        if isinstance(value, (float, np.floating)):
            return f"{float(value):.{digits}f}"
        return value

    return pd.DataFrame({c: [cell(v) for v in frame[c]] for c in frame.columns})


def class_name(spec: DatasetSpec, cls: int) -> str:
    if 0 <= cls < spec.num_classes:
        return spec.class_names[cls]
    return "void" if cls == spec.ignore_label else f"class {cls}"


def _names(spec: DatasetSpec) -> np.ndarray:
    names = np.array([*spec.class_names, "void"], dtype=object)
    return names


def _name_index(spec: DatasetSpec, labels: np.ndarray) -> np.ndarray:
    return np.where((labels >= 0) & (labels < spec.num_classes), labels, spec.num_classes)


def build_view(
    stage: str,
    image: np.ndarray,
    heads: Heads,
    fused: Fused,
    spec: DatasetSpec,
    opacity: float,
) -> View:
    names = _names(spec)
    semantic = fused.semantic
    probs = heads.semantic_probs

    if stage == "Input":

        def hover(ys, xs):
            rgb = image[ys, xs]
            return rgb, "RGB (%{customdata[0]}, %{customdata[1]}, %{customdata[2]})"

        return View(image, image, hover)

    if stage == "Semantic":
        colored = visualize.semantic_to_color(semantic, spec.colors, spec.ignore_label)

        def hover(ys, xs):
            labels = semantic[ys, xs]
            p = probs[ys, xs, np.clip(labels, 0, probs.shape[-1] - 1)]
            return (
                np.stack([names[_name_index(spec, labels)], np.round(p, 3)], axis=1).astype(object),
                "class: %{customdata[0]}<br>probability: %{customdata[1]:.3f}",
            )

        return View(visualize.blend(image, colored, opacity), colored, hover)

    if stage == "Centers":
        heat = heads.center_heatmap
        top = max(float(heat.max(initial=0.0)), 1e-6)
        colored = visualize.heatmap_to_color(heat, 0.0, top)

        def hover(ys, xs):
            return np.round(heat[ys, xs], 4)[:, None], "center heatmap: %{customdata[0]:.4f}"

        return View(visualize.blend(image, colored, opacity), colored, hover)

    if stage == "Offsets":
        things = thing_mask(semantic, spec)
        colored = visualize.offsets_to_color(heads.offsets, mask=things)

        def hover(ys, xs):
            dy, dx = heads.offsets[ys, xs, 0], heads.offsets[ys, xs, 1]
            data = np.stack(
                [
                    np.round(dy, 2),
                    np.round(dx, 2),
                    np.round(np.hypot(dy, dx), 2),
                    np.round(ys + dy, 1),
                    np.round(xs + dx, 1),
                ],
                axis=1,
            )
            return data, (
                "offset (dy, dx): (%{customdata[0]}, %{customdata[1]})  |o| = %{customdata[2]}"
                "<br>votes for (y, x) = (%{customdata[3]}, %{customdata[4]})"
            )

        return View(visualize.blend(image, colored, opacity, mask=things), colored, hover)

    if stage == "Panoptic":
        pan = fused.panoptic
        colored, overlay, area_map = panoptic_overlay(image, pan, spec, opacity)
        score_of = {row["id"]: row["score"] for row in fused.instances if row["id"] > 0}

        def hover(ys, xs):
            v = pan[ys, xs]
            cls, inst = np.divmod(v, spec.label_divisor)
            score = np.array([score_of.get(int(s), np.nan) for s in v], dtype=float)
            score_text = np.array(["–" if np.isnan(s) else f"{s:.3f}" for s in score], dtype=object)
            data = np.stack(
                [names[_name_index(spec, cls)], inst, area_map[ys, xs], score_text, v], axis=1
            ).astype(object)
            return data, (
                "class: %{customdata[0]}<br>instance id: %{customdata[1]} "
                "(segment %{customdata[4]})"
                "<br>area: %{customdata[2]} px<br>score: %{customdata[3]}"
            )

        return View(overlay, colored, hover)

    raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")


def thing_mask(semantic: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    return np.isin(semantic, np.asarray(spec.thing_class_ids, dtype=semantic.dtype))


def legend_html(spec: DatasetSpec, semantic: np.ndarray) -> str:
    """Colour chips for the classes, with each one's share of the image; things marked."""
    counts = np.bincount(
        semantic[(semantic >= 0) & (semantic < spec.num_classes)].ravel(),
        minlength=spec.num_classes,
    )
    total = max(int(semantic.size), 1)
    chips = []
    for cls, (name, color) in enumerate(zip(spec.class_names, spec.colors)):
        share = 100.0 * counts[cls] / total
        weight = "600" if counts[cls] else "400; opacity:0.45"
        kind = "thing" if spec.is_thing(cls) else "stuff"
        chips.append(
            f'<span title="{kind}" style="display:inline-block;margin:2px 10px 2px 0;'
            f'font-weight:{weight}"><span style="display:inline-block;width:12px;height:12px;'
            f"border:1px solid #555;vertical-align:middle;"
            f'background:rgb{tuple(color)}"></span> {name}{" ●" if kind == "thing" else ""} '
            f"<small>{share:.1f}%</small></span>"
        )
    return "<div>" + "".join(chips) + "</div><small>● thing class (has instances)</small>"


def number(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals, never "-0.000" (a tiny negative rounds to plain zero)."""
    text = f"{float(value):.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def panoptic_overlay(image, panoptic, spec, opacity: float):
    """A panoptic map's colours, their blend on the image with white segment borders, and each
    pixel's segment area (for hover texts): what every panoptic view of the app draws."""
    colored = visualize.panoptic_to_color(
        panoptic, spec.colors, label_divisor=spec.label_divisor, ignore_label=spec.ignore_label
    )
    overlay = visualize.blend(image, colored, opacity)
    overlay[visualize.segment_boundaries(panoptic)] = (255, 255, 255)
    _, inverse, counts = np.unique(panoptic, return_inverse=True, return_counts=True)
    return colored, overlay, counts[inverse.reshape(panoptic.shape)]
