"""Annotation review, smart region: a region of the image around a click or inside a dragged box,
found from the image's colours alone with OpenCV's GrabCut (no model weights).

GrabCut runs on a crop around the prompt, so its cost depends on the object's size and not on the
image's. A box: the box is the probable object, the margin around it the background. A click: a
small disk around it is the object, a larger one probably the object, the crop's border the
background; the region is the connected part that holds the click.
"""

from __future__ import annotations

import numpy as np

from .errors import ReviewError

ITERATIONS = 4


def _crop(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> tuple[int, int, int, int]:
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def region_from_box(image: np.ndarray, box, iterations: int = ITERATIONS) -> np.ndarray:
    """The object inside ``box`` = [x, y, width, height] (image pixels), as an HxW bool mask."""
    import cv2

    h, w = image.shape[:2]
    x, y, bw, bh = (int(round(v)) for v in box)
    if bw < 2 or bh < 2:
        raise ReviewError(f"the box {bw}x{bh} is too small; drag a box around the object")
    x, y = max(0, x), max(0, y)
    bw, bh = min(bw, w - x), min(bh, h - y)
    if bw < 2 or bh < 2:
        raise ReviewError("the box lies outside the image; drag it on the image")
    margin = max(8, (bw + bh) // 8)
    cx0, cy0, cx1, cy1 = _crop(h, w, x - margin, y - margin, x + bw + margin, y + bh + margin)
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1, :3], np.uint8)
    mask = np.zeros(crop.shape[:2], np.uint8)
    rect = (x - cx0, y - cy0, bw, bh)
    if rect[2] >= crop.shape[1] - 1 and rect[3] >= crop.shape[0] - 1:
        # The box covers the whole crop (an image-sized box): no background to learn from.
        mask[:] = cv2.GC_PR_FGD
        mask[0, :] = mask[-1, :] = cv2.GC_BGD
        mask[:, 0] = mask[:, -1] = cv2.GC_BGD
        mode, rect = cv2.GC_INIT_WITH_MASK, None
    else:
        mode = cv2.GC_INIT_WITH_RECT
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(crop[..., ::-1], mask, rect, bgd, fgd, iterations, mode)
    out = np.zeros((h, w), bool)
    out[cy0:cy1, cx0:cx1] = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return out


def region_from_click(
    image: np.ndarray, point, radius: float | None = None, iterations: int = ITERATIONS
) -> np.ndarray:
    """The object around the clicked ``point`` = [x, y], looked for within ``radius`` pixels
    (default a tenth of the image's longer side), as an HxW bool mask."""
    import cv2

    h, w = image.shape[:2]
    px, py = (int(round(v)) for v in point)
    if not (0 <= px < w and 0 <= py < h):
        raise ReviewError(f"the click ({px}, {py}) lies outside the {w}x{h} image")
    r = int(round(radius if radius else max(h, w) / 10))
    r = max(r, 6)
    cx0, cy0, cx1, cy1 = _crop(h, w, px - r, py - r, px + r + 1, py + r + 1)
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1, :3], np.uint8)
    mask = np.full(crop.shape[:2], cv2.GC_PR_BGD, np.uint8)
    centre = (px - cx0, py - cy0)
    cv2.circle(mask, centre, max(2, r // 2), int(cv2.GC_PR_FGD), -1)
    cv2.circle(mask, centre, max(1, r // 8), int(cv2.GC_FGD), -1)
    # The crop's border is background, except where it is the image's own border.
    if cy0 > 0:
        mask[0, :] = cv2.GC_BGD
    if cy1 < h:
        mask[-1, :] = cv2.GC_BGD
    if cx0 > 0:
        mask[:, 0] = cv2.GC_BGD
    if cx1 < w:
        mask[:, -1] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(crop[..., ::-1], mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    _, labels = cv2.connectedComponents(fg, connectivity=4)
    keep = labels == labels[centre[1], centre[0]]
    out = np.zeros((h, w), bool)
    out[cy0:cy1, cx0:cx1] = keep & fg.astype(bool)
    return out


def smart_region(image: np.ndarray, *, click=None, box=None, radius: float | None = None):
    """A region from a click ([x, y]) or a box ([x, y, w, h]); exactly one of them."""
    if (click is None) == (box is None):
        raise ReviewError("give a click or a box for the smart region (one of them)")
    if box is not None:
        return region_from_box(image, box)
    return region_from_click(image, click, radius)
