"""Does a model know a data set's classes? Compared before evaluating, by category id, name and
thing/stuff, so a mismatch is reported as what it is (not as a broken annotation file).

A data set passes `pdl check-dataset` on its own; only against a model can its class table be
wrong. ``pdl evaluate``, ``pdl predict --dataset`` and the app's Evaluate page call
:func:`require_matching_classes`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from .specs import DatasetSpec


class ClassMismatchError(DatasetError):
    """The model's class table and the data set's differ; ``differences`` lists how."""

    def __init__(self, message: str, differences: list[str]):
        super().__init__(message)
        self.differences = differences


def class_table(spec: DatasetSpec) -> dict[int, tuple[str, bool]]:
    """``{category id: (name, is thing)}`` of a spec (COCO's void class left out)."""
    return {
        spec.category_id(t): (spec.class_names[t], spec.is_thing(t))
        for t in range(spec.num_classes)
        if not (spec.name == "coco" and t == spec.ignore_label)
    }


def class_differences(model: DatasetSpec, data: DatasetSpec, shown: int = 6) -> list[str]:
    """How the data set's classes differ from the model's, one line per kind of difference (empty
    when they agree)."""
    ours, theirs = class_table(model), class_table(data)

    def listed(ids, table):
        items = [f"{i} {table[i][0]!r}" for i in sorted(ids)]
        return ", ".join(items[:shown]) + (
            f" and {len(items) - shown} more" if len(items) > shown else ""
        )

    out = []
    only_data = set(theirs) - set(ours)
    only_model = set(ours) - set(theirs)
    if only_data:
        out.append(f"category ids only in the data set: {listed(only_data, theirs)}")
    if only_model:
        out.append(f"category ids only in the model: {listed(only_model, ours)}")
    renamed = [i for i in sorted(set(ours) & set(theirs)) if ours[i][0] != theirs[i][0]]
    if renamed:
        pairs = [
            f"{i} is {ours[i][0]!r} in the model but {theirs[i][0]!r} in the data set"
            for i in renamed
        ]
        out.append(
            "same id, other name: "
            + "; ".join(pairs[:shown])
            + (" ..." if len(pairs) > shown else "")
        )
    kind = [
        i
        for i in sorted(set(ours) & set(theirs))
        if ours[i][0] == theirs[i][0] and ours[i][1] != theirs[i][1]
    ]
    if kind:
        words = [
            f"{ours[i][0]!r} is a {'thing' if ours[i][1] else 'stuff'} class in the model"
            for i in kind
        ]
        out.append("thing/stuff differs: " + "; ".join(words[:shown]))
    return out


def require_matching_classes(
    model: DatasetSpec, root: str | Path, split: str, model_path: str | Path = "the model"
) -> DatasetSpec:
    """Raise a ClassMismatchError (saying what differs and what to do) unless the data set at
    ``root`` uses the model's classes; return the data set's own spec."""
    from .readers import open_dataset

    data = open_dataset(root, split).spec
    differences = class_differences(model, data)
    if differences:
        raise ClassMismatchError(
            f"{root} split '{split}': its classes ({data.num_classes}) are not the classes of "
            f"{model_path} ({model.num_classes}):\n  " + "\n  ".join(differences) + "\n"
            "The data set itself may be fine; this model cannot be evaluated on it. Fix: use a "
            "model trained on these classes, or fine-tune this one on this data set (`pdl train "
            f"--init-from MODEL --dataset {root}`, or the app's Train page): it then learns the "
            f"data set's {data.num_classes} classes.",
            differences,
        )
    return data
