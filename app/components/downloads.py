"""The Inspect page's panoptic downloads: the COCO-panoptic PNG and JSON `pdl predict` writes, made
by the library's one writer (prediction_io.coco_segments / panoptic_json), for one image."""

from __future__ import annotations

import re

import numpy as np

from panoptic_deeplab.evaluation.coco_io import encode_panoptic_png
from panoptic_deeplab.prediction_io import coco_segments, panoptic_json

IMAGE_ID = 1  # `pdl predict --images ONE_FILE` numbers its image 1 too


def panoptic_files(
    image_name: str, stem: str, spec, model_name: str, *, prediction, fused, knobs, model_knobs
) -> tuple[bytes, dict]:
    """(PNG bytes, JSON) of the shown image's panoptic result.

    At the model's own post-processing settings this is the Predictor's result, so the files equal
    `pdl predict`'s; with changed knobs it is the map on screen (re-fused at the image's size), and
    the JSON's ``info.postprocess`` records the knobs."""
    same_as_predict = knobs == model_knobs and hasattr(prediction, "segments")
    if same_as_predict:
        panoptic = np.asarray(prediction.panoptic)
        scores = {int(s.id): float(s.score) for s in prediction.segments}
    else:
        panoptic = np.asarray(fused.panoptic)
        scores = {int(row["id"]): float(row["score"]) for row in fused.instances if row["id"] > 0}
    ids, info = coco_segments(panoptic, spec, scores)
    for row in info:
        row["class"] = spec.class_names[row["panoptic_id"] // spec.label_divisor]
    height, width = panoptic.shape
    file_name = re.split(r"[/\\]", image_name)[-1] or f"{stem}.png"
    annotation = panoptic_json(
        images=[
            {"id": IMAGE_ID, "file_name": file_name, "height": int(height), "width": int(width)}
        ],
        annotations=[
            {"image_id": IMAGE_ID, "file_name": f"{stem}_panoptic.png", "segments_info": info}
        ],
        spec=spec,
        info={
            "model": model_name,
            "source": image_name,
            "postprocess": knobs.to_dict(),
            "same_as_pdl_predict": bool(same_as_predict),
        },
    )
    return encode_panoptic_png(ids), annotation
