"""Data sets on disk: class tables (specs), readers for the COCO-panoptic and Cityscapes layouts,
validation, and the synthetic street-scene generator. Nothing here imports TensorFlow.

Names are imported on first use, so that ``pdl pq`` (which needs only the PNG decoder) does not
pay for OpenCV, PIL and the generator at start-up.
"""

from importlib import import_module

_WHERE = {
    "Problem": "checks",
    "check_dataset": "checks",
    "CocoPanopticReader": "coco_panoptic",
    "dataset_spec_from_categories": "coco_panoptic",
    "dataset_spec_from_coco_json": "coco_panoptic",
    "Example": "reader_base",
    "Reader": "reader_base",
    "Record": "reader_base",
    "open_dataset": "readers",
    "DatasetSpec": "specs",
    "get_dataset_spec": "specs",
    "make_synthetic_dataset": "synthetic",
}
__all__ = sorted(_WHERE)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
