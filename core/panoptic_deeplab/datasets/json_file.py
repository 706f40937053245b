"""Reading a data set's or a prediction's JSON file, with errors that name the file and the fix.
Light on purpose (no pathlib, no readers): ``pdl pq`` imports it too."""

from __future__ import annotations

import json
import os

from ..errors import DatasetError


def load_json(path: str | os.PathLike, what: str = "annotation") -> dict:
    """The JSON object in ``path``; ``what`` names the file in errors: "annotation", "GT", ..."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (FileNotFoundError, IsADirectoryError):
        raise DatasetError(
            f"{os.fspath(path)}: {what} file not found; check the data set root and split name "
            "(or the path given)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(
            f"{os.fspath(path)}: not valid JSON ({err}); regenerate or repair the file"
        ) from None
    if not isinstance(data, dict):
        raise DatasetError(
            f"{os.fspath(path)}: expected a JSON object with 'images', 'annotations', 'categories'"
        )
    return data
