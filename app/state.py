"""App-wide settings and session-state keys. `pdl app` passes its choices in PDL_APP_* variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from panoptic_deeplab import settings as product_settings

ENV_MODEL, ENV_DATA = product_settings.ENV_APP_MODEL, product_settings.ENV_APP_DATA


@dataclass(frozen=True)
class Settings:
    model: Path | None  # default model bundle (None: no model yet)
    data: Path | None  # default data set root
    workdir: Path  # results, jobs and review databases live here

    @property
    def results_dir(self) -> Path:
        return self.workdir / "results"


def _optional_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def settings() -> Settings:
    """Settings for this run; read each time so tests can change the environment between runs."""
    return Settings(
        model=_optional_path(ENV_MODEL),
        data=_optional_path(ENV_DATA),
        workdir=product_settings.workdir(),
    )


def known_models() -> dict[str, Path]:
    """Model bundles the user can pick, by display name: the app's default, the shipped ones, the
    ones registered by finished training jobs, and any added in this session."""
    models: dict[str, Path] = {}

    def add(name: str, path: Path) -> None:
        if path not in models.values():
            models[name if name not in models else f"{name} ({path.parent.name})"] = path

    current = settings()
    if current.model is not None:
        add(current.model.name, current.model)
    for path in product_settings.shipped_models():
        add(path.name, path)
    try:
        from panoptic_deeplab.jobs.store import JobStore

        for record in JobStore(current.workdir).models():
            if Path(record.path).is_dir():
                add(job_model_name(record.name, record.job_id), Path(record.path))
    except Exception:  # noqa: BLE001 - an unreadable job database must not hide the other models
        pass
    for path in st.session_state.get("extra_models", []):
        add(Path(path).name, Path(path))
    return models


def add_model(path: Path) -> None:
    extra = st.session_state.setdefault("extra_models", [])
    if str(path) not in extra:
        extra.append(str(path))


def job_model_name(name: str, job_id: int | None) -> str:
    """How a model made by a job is called everywhere in the app: the job's name and id (every
    fine-tune's bundle folder is called "model")."""
    return f"{name} (job {job_id})" if job_id is not None else name


def model_label(path: str | Path) -> str:
    """The display name of a model bundle path: a job's model by its job, a shipped or given one by
    its folder (the run folder when the bundle folder is the generic "model")."""
    path = Path(path)
    try:
        from panoptic_deeplab.jobs.store import JobStore

        resolved = str(path.expanduser().resolve())
        for record in JobStore(settings().workdir).models():
            if record.path == resolved:
                return job_model_name(record.name, record.job_id)
    except Exception:  # noqa: BLE001 - an unreadable job database must not break a label
        pass
    return path.parent.name if path.name == "model" and path.parent.name else path.name


def base_of(path: str | Path) -> str | None:
    """The bundle a job's model was fine-tuned from (its --init-from), if the registry knows it."""
    try:
        from panoptic_deeplab.jobs.store import JobStore

        resolved = str(Path(path).expanduser().resolve())
        for record in JobStore(settings().workdir).models():
            if record.path == resolved:
                return record.base_model
    except Exception:  # noqa: BLE001
        pass
    return None
