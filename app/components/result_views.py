"""What the Evaluate page draws for one image of a result: the image, its ground truth and the
prediction that was evaluated, from the model (run again, cached) or from the prediction set's
files. The page passes its cached openers so that a data set or a prediction set is read once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from panoptic_deeplab.errors import UserError
from panoptic_deeplab.evaluation.results import EvaluationResult, ImageResult


def image_views(
    result: EvaluationResult, record: ImageResult, open_reader, open_predictions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image, GT panoptic map, predicted panoptic map)`` of ``record``. ``open_reader(root,
    split)`` and ``open_predictions(result)`` are the page's cached openers. A UserError says
    what is missing (the image, the model, the prediction set)."""
    try:
        reader = open_reader(result.dataset, result.split)
        index = next(
            i for i, ex in enumerate(reader) if Path(ex.image_path).name == record.file_name
        )
        image, gt = reader.load_image(index), reader.load_panoptic(index)
    except (UserError, StopIteration, OSError) as err:
        raise UserError(
            f"The image {record.file_name} cannot be read from {result.dataset} "
            f"({err or 'not found'})."
        ) from None
    if result.kind == "predictions":
        predictions = open_predictions(result)
        entry = predictions.example_entry(reader[index])
        if entry is None:
            raise UserError(
                f"{predictions.name}: no prediction for {record.file_name} any more "
                f"({result.predictions.folder} changed since it was evaluated)."
            )
        prediction = predictions.load(entry, reader[index].image_id, gt.shape)
        return image, np.asarray(gt), np.asarray(prediction.panoptic)
    from panoptic_deeplab.app.components import model_io

    if not Path(result.model or "").is_dir():
        raise UserError(
            f"{result.model}: the evaluated model is gone, so its prediction cannot be shown."
        )
    prediction = model_io.predict(result.model, model_io.image_digest(image), image)
    return image, np.asarray(gt), np.asarray(prediction.panoptic)
