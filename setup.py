"""Package layout for setuptools; the metadata is in pyproject.toml.

The repository keeps the library (core/), the app (app/) and the shipped assets (assets/) at the
top level; the wheel carries all three inside one package, the app as ``panoptic_deeplab.app`` and
the assets as ``panoptic_deeplab.assets`` (``panoptic_deeplab.settings`` finds them there).
"""

from setuptools import find_namespace_packages, find_packages, setup

_SKIP = ["*__pycache__*"]
packages = (
    find_packages("core")
    + ["panoptic_deeplab.app"]
    + [f"panoptic_deeplab.app.{name}" for name in find_namespace_packages("app", exclude=_SKIP)]
    + ["panoptic_deeplab.assets"]
)

setup(
    packages=packages,
    package_dir={"": "core", "panoptic_deeplab.app": "app", "panoptic_deeplab.assets": "assets"},
    package_data={
        "panoptic_deeplab": ["configs/**/*.yaml"],
        "panoptic_deeplab.assets": ["models/*/*", "samples/*"],
    },
)
