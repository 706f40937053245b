"""Package layout for setuptools; the metadata is in pyproject.toml.

The repository keeps the library (core/), the app (app/) and the shipped assets (assets/) at the
top level; the wheel carries all three inside one package, the app as ``panoptic_deeplab.app`` and
the assets as ``panoptic_deeplab.assets`` (``panoptic_deeplab.settings`` finds them there).
"""

from setuptools import find_namespace_packages, setup

_SKIP = ["*__pycache__*"]
# Namespace packages throughout: folders holding only data (configs/<dataset>, assets/models/<name>)
# are listed too, as newer setuptools asks (else ~40 lines of "Package would be ignored" each).
packages = (
    find_namespace_packages(
        "core", include=["panoptic_deeplab", "panoptic_deeplab.*"], exclude=_SKIP
    )
    + ["panoptic_deeplab.app"]
    + [f"panoptic_deeplab.app.{name}" for name in find_namespace_packages("app", exclude=_SKIP)]
    + ["panoptic_deeplab.assets"]
    + [
        f"panoptic_deeplab.assets.{name}"
        for name in find_namespace_packages("assets", exclude=_SKIP)
    ]
)

setup(
    packages=packages,
    package_dir={"": "core", "panoptic_deeplab.app": "app", "panoptic_deeplab.assets": "assets"},
    package_data={
        "panoptic_deeplab": ["configs/**/*.yaml"],
        "panoptic_deeplab.assets": ["models/*/*", "samples/*"],
    },
)
