"""The Review page's drawing helpers: the zoomed crop and the shapes read from Plotly selection
events (the payload Streamlit's ``st.plotly_chart(on_select=...)`` returns)."""

from __future__ import annotations

import numpy as np

from panoptic_deeplab.app.components import review_view as rv
from panoptic_deeplab.review import polygon_mask


def test_the_crop_holds_the_box_with_a_margin_and_slides_inside_the_image():
    assert rv.crop_box([40, 30, 20, 10], (200, 300)) == (26, 11, 74, 59)  # pad 10, 48 x 48
    x0, y0, x1, y1 = rv.crop_box([0, 0, 4, 4], (100, 100))  # a tiny segment in the corner
    assert (x0, y0, x1 - x0, y1 - y0) == (0, 0, rv.MIN_CROP, rv.MIN_CROP)
    assert rv.crop_box([0, 0, 30, 20], (20, 30)) == (0, 0, 30, 20)  # never past the image


def test_a_lasso_a_box_and_clicks_become_image_pixels_of_the_crop():
    lasso = {"selection": {"points": [], "box": [], "lasso": [{"x": [1, 5, 5], "y": [2, 2, 6]}]}}
    assert rv.drawn_shape(lasso, (10, 20)) == {
        "kind": "lasso",
        "points": [[11.0, 22.0], [15.0, 22.0], [15.0, 26.0]],
    }
    box = {"selection": {"points": [], "box": [{"x": [4.6, 1.2], "y": [0.7, 3.4]}], "lasso": []}}
    # pixel centres inside the dragged range: x 2..4, y 1..3
    assert rv.drawn_shape(box, (10, 20)) == {"kind": "box", "box": [12, 21, 3, 3]}
    click = {"selection": {"points": [{"x": 3, "y": 4}], "box": [], "lasso": []}}
    assert rv.drawn_shape(click, (10, 20)) == {"kind": "click", "points": [[13, 24]]}
    assert rv.drawn_shape({"selection": {"points": [], "box": [], "lasso": []}}) is None
    assert rv.drawn_shape(None) is None


def test_shape_masks_are_the_librarys_polygon_the_box_and_a_brush():
    pts = [[2, 2], [8, 2], [8, 6]]
    lasso = rv.shape_mask({"kind": "lasso", "points": pts}, (10, 12), 0)
    assert np.array_equal(lasso, polygon_mask((10, 12), pts))
    box = rv.shape_mask({"kind": "box", "box": [3, 4, 2, 3]}, (10, 12), 0)
    assert box.sum() == 6 and box[4:7, 3:5].all()
    dab = rv.shape_mask({"kind": "click", "points": [[5, 5]]}, (10, 12), 1)
    assert dab.sum() == 5 and dab[5, 5]  # a disk of radius 1


def test_the_segment_is_outlined_and_the_rest_dimmed():
    image = np.full((20, 20, 3), 200, np.uint8)
    ids = np.zeros((20, 20), np.int32)
    ids[5:15, 5:15] = 7
    out = rv.label_view(image, ids, {7: 1}, lambda c: (0, 0, 0), ids == 7, alpha=0.0)
    assert tuple(out[10, 10]) == (200, 200, 200)  # inside: the image itself
    assert out[0, 0, 0] < 100  # outside: dimmed
    assert tuple(out[5, 10]) == rv.HIGHLIGHT  # the segment's edge
