"""Data sets on disk: class tables (specs), readers for the COCO-panoptic and Cityscapes layouts,
validation, and the synthetic street-scene generator. Nothing here imports TensorFlow."""
from .checks import Problem, check_dataset
from .coco_panoptic import CocoPanopticReader, dataset_spec_from_categories, dataset_spec_from_coco_json
from .readers import Example, Reader, Record, open_dataset
from .specs import DatasetSpec, get_dataset_spec
from .synthetic import make_synthetic_dataset

__all__ = [
    "CocoPanopticReader", "DatasetSpec", "Example", "Problem", "Reader", "Record", "check_dataset",
    "dataset_spec_from_categories", "dataset_spec_from_coco_json", "get_dataset_spec", "make_synthetic_dataset",
    "open_dataset",
]
