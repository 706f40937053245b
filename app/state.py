"""The app's settings and its one typed session-state holder.

`pdl app` passes its choices in PDL_APP_* variables (``settings()``). Everything a browser session
keeps lives in one ``Session`` (``session()``): widget values as typed attributes over
``st.session_state`` (an attribute's name is its widget's key), the "is this selection new?" check
(``is_new``), and the session's one job store with the model registry read from it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import streamlit as st

from panoptic_deeplab import settings as product_settings
from panoptic_deeplab.errors import UserError

if TYPE_CHECKING:
    from panoptic_deeplab.jobs import JobStore, ModelRecord

ENV_MODEL, ENV_DATA = product_settings.ENV_APP_MODEL, product_settings.ENV_APP_DATA
NO_SAMPLE = "—"  # the sample picker's "no sample" entry (an upload is shown)
_SESSION_KEY = "_pdl_session"
REGISTRY_FRESH_S = 1.0  # the registry is read again at least this often (folders may vanish)


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


T = TypeVar("T")


class Value(Generic[T]):
    """A typed entry of ``st.session_state`` under the attribute's name (a widget's key)."""

    def __init__(self, default: T):
        self.default = default
        self.key = ""

    def __set_name__(self, owner, name: str) -> None:
        self.key = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return st.session_state.get(self.key, self.default)

    def __set__(self, obj, value: T) -> None:
        st.session_state[self.key] = value


@dataclass
class SidebarSlots:
    """The sidebar's two lines, filled by ``Session.uses``."""

    model: Any  # st.empty() placeholders
    data: Any


@dataclass(eq=False)
class Session:
    """One browser session's state. Get it with ``session()``; never store it elsewhere."""

    settings: Settings
    seen: dict[str, Any] = field(default_factory=dict)  # last value of each watched selection
    upload_generation: int = 0  # bumped to give Inspect a new, empty uploader
    sidebar: SidebarSlots | None = field(default=None, repr=False)  # set by main.py each run
    _jobs: JobStore | None = field(default=None, repr=False)
    _registry: tuple[tuple, float, list] | None = field(default=None, repr=False)

    # -- Inspect's widgets (the attribute name is the widget key) --------------------------------
    sample = Value[str](NO_SAMPLE)
    model = Value[str | None](None)
    stage = Value[str]("Input")
    pixel_x = Value[int](0)
    pixel_y = Value[int](0)
    show_vote = Value[bool](True)
    pp_threshold = Value[float](0.0)
    pp_nms = Value[int](1)
    pp_topk = Value[int](1)
    pp_stuff = Value[int](0)

    # -- Train's widgets -------------------------------------------------------------------------
    run_on = Value[str]("this machine")
    base_model = Value[str | None](None)

    def is_new(self, name: str, value: Any) -> bool:
        """True the first time ``value`` is seen under ``name``, and each time it changes: the
        one place a page asks "did the user just pick something else?"."""
        if name in self.seen and self.seen[name] == value:
            return False
        self.seen[name] = value
        return True

    def set_default(self, name: str, value: Any) -> None:
        """Give a widget its first value (before the widget is drawn)."""
        st.session_state.setdefault(name, value)

    def uses(self, *, model: str | Path | None = None, data: str | Path | None = None) -> None:
        """Show in the sidebar the model and data set the page works with (each when given)."""
        if self.sidebar is None:
            return  # a page run on its own (tests)
        if model is not None:
            self.sidebar.model.markdown(f"`{self.model_label(model)}`")
        elif self.settings.model is None:
            self.sidebar.model.markdown("_no model yet_")
        if data is not None:
            self.sidebar.data.markdown(f"`{data}`")
        elif self.settings.data is None:
            self.sidebar.data.markdown("_none_")

    @property
    def upload_key(self) -> str:
        return f"image_upload_{self.upload_generation}"

    # -- the session's job store and the models it registers ------------------------------------

    @property
    def jobs(self) -> JobStore:
        """This session's job store (opened once: opening creates the tables)."""
        if self._jobs is None:
            from panoptic_deeplab.jobs import JobStore

            self._jobs = JobStore(self.settings.workdir)
        return self._jobs

    def repair_jobs(self) -> Path | None:
        """What `pdl jobs --repair` does: a damaged job store is renamed aside and an empty one
        starts (this session's from now on). Returns where the damaged file went (None: it read
        fine)."""
        from panoptic_deeplab.jobs import JobStore

        self._jobs = JobStore(self.settings.workdir, repair=True)
        self._registry = None
        return self._jobs.set_aside_as

    def start_run(self) -> None:
        """Called by main.py at the top of every script run: the registry is read again in this
        run, so a model that a job (another process) registered since is listed at once."""
        self._registry = None

    def registered(self, include_missing: bool = False) -> list[ModelRecord]:
        """The registry's model records (with ``include_missing``, also those whose folder is
        gone). Read again when the job database changed (a model registered by a job or another
        session shows at once) or ``REGISTRY_FRESH_S`` passed (a folder deleted since shows as
        missing), else kept: a table row asking for its label costs a ``stat``. An unreadable job
        database gives none (the pages that need the store say why)."""
        stamp = self._database_stamp()
        if (
            self._registry is None
            or self._registry[0] != stamp
            or time.monotonic() - self._registry[1] > REGISTRY_FRESH_S
        ):
            try:
                records = self.jobs.models(include_missing=True)
            except Exception:  # noqa: BLE001 - a damaged job database must not break the other pages
                records = []
            self._registry = (stamp, time.monotonic(), records)
        records = self._registry[2]
        return records if include_missing else [r for r in records if not r.missing]

    def _database_stamp(self) -> tuple:
        """What changes when the job database is written: its size and modification time."""
        try:
            info = os.stat(self.jobs.db_path)
        except (OSError, UserError):  # no database yet, or a damaged one (the pages offer repair)
            return ()
        return (info.st_ino, info.st_size, info.st_mtime_ns)

    def forget_registry(self) -> None:
        """Read the registry again on the next call (after this session changed it)."""
        self._registry = None

    def _record(self, path: str | Path) -> ModelRecord | None:
        resolved = str(Path(path).expanduser().resolve())
        return next((r for r in self.registered(True) if r.path == resolved), None)

    def models(self) -> dict[str, Path]:
        """Model bundles the user can pick, by display name: the app's default, the shipped ones,
        and those registered by finished training jobs whose folders still exist."""
        models: dict[str, Path] = {}

        def add(name: str, path: Path) -> None:
            if path not in models.values():
                models[name if name not in models else f"{name} ({path.parent.name})"] = path

        if self.settings.model is not None:
            add(self.settings.model.name, self.settings.model)
        for path in product_settings.shipped_models():
            add(path.name, path)
        for record in self.registered():
            add(job_model_name(record.name, record.job_id), Path(record.path))
        return models

    def model_label(self, path: str | Path) -> str:
        """The display name of a model bundle path: a job's model by its job, a shipped or given one
        by its folder (the run folder when the bundle folder is the generic "model")."""
        record = self._record(path)
        if record is not None:
            return job_model_name(record.name, record.job_id)
        path = Path(path)
        return path.parent.name if path.name == "model" and path.parent.name else path.name

    def base_of(self, path: str | Path) -> str | None:
        """The bundle a job's model was fine-tuned from (its --init-from), if the registry knows
        it."""
        record = self._record(path)
        return record.base_model if record is not None else None


def session() -> Session:
    """This browser session's ``Session``; a fresh one when the app's settings changed."""
    current = settings()
    sess = st.session_state.get(_SESSION_KEY)
    if not isinstance(sess, Session) or sess.settings != current:
        sess = Session(current)
        st.session_state[_SESSION_KEY] = sess
    return sess


def index_in_use(key: str, options: list) -> int:
    """The ``index=`` for a keyed selectbox whose value the page also sets through
    ``st.session_state``: the position of the value in use (0 when it is unset or gone).

    Streamlit sends a value set through session state to the browser once, with that run; a picker
    the browser does not draw then (one in a tab not open) is drawn later from its default index,
    and would show another option than the one in use. The default must always be the value."""
    value = st.session_state.get(key)
    return options.index(value) if value in options else 0


def job_model_name(name: str, job_id: int | None) -> str:
    """How a model made by a job is called everywhere in the app: the job's name and id (every
    fine-tune's bundle folder is called "model")."""
    return f"{name} (job {job_id})" if job_id is not None else name


# The Evaluate and Review pages call these until they use ``session()`` themselves.
def known_models() -> dict[str, Path]:
    return session().models()


def model_label(path: str | Path) -> str:
    return session().model_label(path)


def base_of(path: str | Path) -> str | None:
    return session().base_of(path)
