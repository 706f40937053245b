"""Where the product keeps and finds things: the one place for the work directory, the app and the
shipped models. No TensorFlow, no Streamlit.

The app (``app/`` in the repository) and the shipped assets (``assets/``) are installed inside this
package as ``panoptic_deeplab.app`` and ``panoptic_deeplab.assets`` (``setup.py`` maps them), so a
wheel and an editable checkout find them the same way: through the import system, never relative
to a repository.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

# Every environment variable the product reads, declared once here (tests/core/test_settings.py
# checks that no other module spells one out).
# The app's choices, passed by `pdl app` to the Streamlit process (app/state.py reads them).
ENV_APP_MODEL = "PDL_APP_MODEL"
ENV_APP_DATA = "PDL_APP_DATA"
ENV_APP_WORKDIR = "PDL_APP_WORKDIR"
# The app's budget in MB for cached image results (app/components/memory_cache.py).
ENV_APP_CACHE_MB = "PDL_APP_CACHE_MB"
# The work directory; the Docker image sets it to its mounted volume.
ENV_WORKDIR = "PDL_WORKDIR"
# Inference defaults when --precision / --backend are left out (precision.py, engines.py).
ENV_PRECISION = "PDL_PRECISION"
ENV_BACKEND = "PDL_BACKEND"
# Any value but "" or "0": check a data set again although it passed before
# (datasets/check_cache.py).
ENV_RECHECK_DATASET = "PDL_RECHECK_DATASET"
# The reviewer name the Review page and `pdl review` record (review/records.py).
ENV_REVIEWER = "PDL_REVIEWER"

# The work directory's variables, in the order they win: `pdl app` passes its --workdir to the app
# in the first.
WORKDIR_ENV = (ENV_APP_WORKDIR, ENV_WORKDIR)


def user_cache() -> Path:
    """This user's cache folder of the product: ``$XDG_CACHE_HOME/panoptic_deeplab``, by default
    ``~/.cache/panoptic_deeplab`` (the XDG spec says a relative value is to be ignored)."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (
        Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    ) / "panoptic_deeplab"


def env(name: str) -> str:
    """The value of one of the variables above, stripped ("" when unset)."""
    return os.environ.get(name, "").strip()


def workdir() -> Path:
    """The work directory of the app and of ``pdl jobs``: results, job records, review stores and
    the demo data set (``PDL_APP_WORKDIR`` or ``PDL_WORKDIR``, else :func:`user_cache`). Read each
    time: tests and `pdl app` change it."""
    for name in WORKDIR_ENV:
        value = env(name)
        if value:
            return Path(value).expanduser()
    return user_cache()


def _package_dir(name: str) -> Path | None:
    try:
        return Path(os.fspath(resources.files(name)))
    except (ModuleNotFoundError, TypeError):  # not installed with the package (a bare PYTHONPATH)
        return None


def app_entry() -> Path:
    """The Streamlit script of the app (``app/main.py`` in the repository)."""
    app = _package_dir("panoptic_deeplab.app")
    if app is None or not (app / "main.py").is_file():
        raise FileNotFoundError(
            "the app is not installed with panoptic_deeplab (panoptic_deeplab.app is missing); "
            "install the package (pip install . or the wheel), not only its core/ folder"
        )
    return app / "main.py"


def shipped_models_dir() -> Path | None:
    """The folder of the model bundles that ship with the product, or None when none ship."""
    assets = _package_dir("panoptic_deeplab.assets")
    models = assets / "models" if assets is not None else None
    return models if models is not None and models.is_dir() else None


def shipped_models() -> list[Path]:
    """The shipped model bundles, by folder name (the first is the default model)."""
    models = shipped_models_dir()
    if models is None:
        return []
    return sorted(p for p in models.iterdir() if (p / "bundle.json").is_file())


def samples_dir() -> Path | None:
    """Sample images that ship with the product, or None."""
    assets = _package_dir("panoptic_deeplab.assets")
    samples = assets / "samples" if assets is not None else None
    return samples if samples is not None and samples.is_dir() else None
