"""What the Review page draws and reads back: the zoomed crop around a segment (filled, outlined,
the rest dimmed), the model's labels beside it, and the shape a reviewer drew on the crop
(Plotly's click, box and lasso selections) turned into image pixels for the review library.

Plotly's own selections are the drawing surface: they need no extra component, work in every
Streamlit since 1.35, and the page already uses them for clicked pixels (see ``figures``).
"""

from __future__ import annotations

import numpy as np

from panoptic_deeplab import visualize
from panoptic_deeplab.review import brush_mask, polygon_mask

HIGHLIGHT = (255, 230, 0)  # the segment under review
MODEL_OUTLINE = (0, 229, 255)  # the model's overlapping segment, in the single-overlay view
MIN_CROP = 48  # a crop never smaller than this (pixels), so a tiny segment has context
DIM = 0.45  # brightness of everything outside the segment


def crop_box(bbox, shape: tuple[int, int], margin: float = 0.5) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the segment's box ``[x, y, w, h]`` grown by ``margin`` times its longer
    side on every side (at least :data:`MIN_CROP` wide and high), clipped to the image."""
    h, w = shape[:2]
    x, y, bw, bh = (int(v) for v in bbox)
    pad = int(round(margin * max(bw, bh, 1)))

    def span(start: int, length: int, size: int) -> tuple[int, int]:
        lo, hi = start - pad, start + length + pad
        short = MIN_CROP - (hi - lo)
        if short > 0:
            lo, hi = lo - short // 2, hi + short - short // 2
        if lo < 0:  # keep the context: slide the crop back inside the image
            lo, hi = 0, hi - lo
        if hi > size:
            lo, hi = lo - (hi - size), size
        return max(0, lo), min(size, hi)

    (x0, x1), (y0, y1) = span(x, bw, w), span(y, bh, h)
    return x0, y0, x1, y1


def _class_colors(ids: np.ndarray, category_of: dict, color_of) -> np.ndarray:
    """An RGB map colouring every segment of ``ids`` by its category (void: black)."""
    values, inverse = np.unique(ids, return_inverse=True)
    lut = np.zeros((len(values), 3), np.uint8)
    for k, v in enumerate(values.tolist()):
        cat = category_of.get(int(v))
        if cat is not None:
            lut[k] = color_of(int(cat))
    return lut[inverse.reshape(ids.shape)]


def label_view(
    image: np.ndarray,
    ids: np.ndarray,
    category_of: dict,
    color_of,
    focus: np.ndarray | None,
    *,
    alpha: float = 0.45,
    outline_of: np.ndarray | None = None,
) -> np.ndarray:
    """The image with each segment of ``ids`` filled with its class colour (``alpha``), every
    outline thin, the ``focus`` segment (a bool mask) outlined in :data:`HIGHLIGHT` and the rest
    dimmed; ``outline_of``: another mask outlined in :data:`MODEL_OUTLINE`."""
    colored = _class_colors(ids, category_of, color_of).astype(np.float32)
    out = image[..., :3].astype(np.float32) * (1 - alpha) + colored * alpha
    out[visualize.segment_boundaries(ids)] = 255
    if focus is not None:
        out[~focus] *= DIM
        out[visualize.segment_boundaries(focus.astype(np.uint8), thickness=2) & focus] = HIGHLIGHT
    if outline_of is not None and outline_of.any():
        out[visualize.segment_boundaries(outline_of.astype(np.uint8)) & outline_of] = MODEL_OUTLINE
    return np.clip(out, 0, 255).astype(np.uint8)


def zoom(rgb: np.ndarray, width: int = 420) -> np.ndarray:
    """The crop enlarged with square pixels (nearest neighbour), so a small segment is visible."""
    import cv2

    h, w = rgb.shape[:2]
    k = max(1, width // max(w, 1))
    return cv2.resize(rgb, (w * k, h * k), interpolation=cv2.INTER_NEAREST) if k > 1 else rgb


# -- what was drawn ---------------------------------------------------------------------------


def drawn_shape(event, offset: tuple[int, int] = (0, 0)) -> dict | None:
    """The last shape of a ``st.plotly_chart(on_select=...)`` event on a crop whose top-left corner
    is ``offset`` = (x0, y0) in the image, in image pixels: ``{"kind": "lasso", "points": [[x, y],
    ...]}``, ``{"kind": "box", "box": [x, y, w, h]}`` or ``{"kind": "click", "points": [[x, y],
    ...]}`` (the clicked grid points). None when nothing was drawn."""
    try:
        selection = event["selection"]
    except (KeyError, TypeError):
        return None
    if not selection:
        return None
    ox, oy = offset
    for lasso in reversed(list(selection.get("lasso") or [])):
        xs, ys = lasso.get("x") or [], lasso.get("y") or []
        if len(xs) >= 3 and len(xs) == len(ys):
            pts = [[float(x) + ox, float(y) + oy] for x, y in zip(xs, ys)]
            return {"kind": "lasso", "points": pts}
    for box in reversed(list(selection.get("box") or [])):
        xs, ys = box.get("x") or [], box.get("y") or []
        if len(xs) == 2 and len(ys) == 2:
            x0, x1 = sorted(float(v) for v in xs)
            y0, y1 = sorted(float(v) for v in ys)
            # the pixels whose centres lie inside the dragged range
            x0, y0, x1, y1 = (
                int(np.ceil(x0)),
                int(np.ceil(y0)),
                int(np.floor(x1)),
                int(np.floor(y1)),
            )
            if x1 >= x0 and y1 >= y0:
                return {"kind": "box", "box": [x0 + ox, y0 + oy, x1 - x0 + 1, y1 - y0 + 1]}
    points = [
        [int(round(float(p["x"]))) + ox, int(round(float(p["y"]))) + oy]
        for p in selection.get("points") or []
        if p.get("x") is not None and p.get("y") is not None
    ]
    return {"kind": "click", "points": points} if points else None


def describe_shape(shape: dict | None) -> str:
    if not shape:
        return "nothing drawn"
    if shape["kind"] == "lasso":
        return f"a polygon of {len(shape['points'])} corners"
    if shape["kind"] == "box":
        x, y, w, h = shape["box"]
        return f"a {w}x{h} box at ({x}, {y})"
    pts = shape["points"]
    return f"a click at ({pts[0][0]}, {pts[0][1]})" if len(pts) == 1 else f"{len(pts)} clicks"


def shape_mask(shape: dict, size: tuple[int, int], radius: float) -> np.ndarray:
    """The pixels of a drawn shape: the polygon's inside, the box, or a brush of ``radius`` along
    the clicks."""
    if shape["kind"] == "lasso":
        return polygon_mask(size, shape["points"])
    if shape["kind"] == "box":
        x, y, w, h = shape["box"]
        out = np.zeros(size[:2], bool)
        out[max(0, y) : y + h, max(0, x) : x + w] = True
        return out
    return brush_mask(size, shape["points"], radius)
