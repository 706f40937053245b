"""The app's session-state holder: one job store per session, typed widget values, the
"is this selection new?" check."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from panoptic_deeplab import jobs
from tests.app import apptest_utils as u

TRAIN = str(u.APP_DIR / "pages" / "train.py")


def test_a_session_opens_its_job_store_once(monkeypatch, tmp_path):
    """Three registered models in the table, three reruns: one JobStore (each opening creates
    the tables), not one per row and rerun."""
    u.set_app_env(monkeypatch, tmp_path)
    store = jobs.JobStore(tmp_path / "work")
    for k in range(3):
        bundle = tmp_path / "work" / "runs" / f"r{k}" / "model"
        bundle.mkdir(parents=True)
        store.register_model(bundle, f"r{k}", job_id=k + 1, base_model=str(tmp_path / "base"))
    opened = []
    original = jobs.JobStore.__init__

    def counting(self, root):
        opened.append(root)
        original(self, root)

    monkeypatch.setattr(jobs.JobStore, "__init__", counting)
    at = AppTest.from_file(TRAIN, default_timeout=u.TIMEOUT)
    for _ in range(3):
        at.run()
        assert not at.exception, at.exception
    assert list(at.dataframe[-1].value["name"]) == ["r2 (job 3)", "r1 (job 2)", "r0 (job 1)"]
    assert len(opened) == 1


def _probe():
    import streamlit as st

    from panoptic_deeplab.app import state

    sess = state.session()
    st.session_state.setdefault("picks", [])
    st.session_state["picks"].append(sess.is_new("model", st.session_state.get("choice")))
    sess.pixel_x = 7
    st.write(f"pixel_x={st.session_state['pixel_x']} same={state.session() is sess}")


def test_is_new_reports_each_change_once_and_values_are_typed_keys(monkeypatch, tmp_path):
    u.set_app_env(monkeypatch, tmp_path)
    at = AppTest.from_function(_probe, default_timeout=u.TIMEOUT)
    at.session_state["choice"] = "a"
    at.run()
    at.run()
    at.session_state["choice"] = "b"
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["picks"] == [True, False, True]
    assert at.markdown[-1].value == "pixel_x=7 same=True"  # the attribute is the widget key


def _registry_probe():
    import streamlit as st

    from panoptic_deeplab.app import state

    sess = state.session()
    sess.start_run()  # as main.py does
    names = list(sess.models())
    names += list(sess.models())  # a second use in the run reads nothing new
    st.write(" | ".join(names))


def test_a_model_registered_by_another_process_is_listed_on_the_next_run(monkeypatch, tmp_path):
    """The registry is read once per run, not kept for a time: a rerun right after another
    process registered a model lists it (main's 1-s cache lost it in a quick rerun)."""
    u.set_app_env(monkeypatch, tmp_path)
    at = AppTest.from_function(_registry_probe, default_timeout=u.TIMEOUT)
    at.run()
    assert "late (job 7)" not in at.markdown[-1].value
    bundle = tmp_path / "work" / "runs" / "late" / "model"
    bundle.mkdir(parents=True)
    jobs.JobStore(tmp_path / "work").register_model(bundle, "late", job_id=7)
    at.run()
    assert not at.exception, at.exception
    assert at.markdown[-1].value.count("late (job 7)") == 2


def test_the_sidebar_names_the_model_the_page_uses(monkeypatch, tmp_path):
    import streamlit as st

    from panoptic_deeplab.app.components import model_io
    from tests.app.fakes import FakePredictor

    start = tmp_path / "start-model"
    start.mkdir()
    tuned = tmp_path / "work" / "runs" / "t" / "model"
    tuned.mkdir(parents=True)
    u.set_app_env(monkeypatch, tmp_path, model=start)
    jobs.JobStore(tmp_path / "work").register_model(tuned, "tune", job_id=4)
    monkeypatch.setattr(model_io, "load_predictor", lambda path: FakePredictor())
    st.cache_data.clear()
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT).run()
    assert "`start-model`" in [m.value for m in at.sidebar.markdown]
    at.selectbox(key="model").set_value("tune (job 4)").run()
    assert not at.exception, at.exception
    shown = [m.value for m in at.sidebar.markdown]
    assert "`tune (job 4)`" in shown and "`start-model`" not in shown


def test_a_model_registered_meanwhile_is_listed_on_the_next_read(tmp_path):
    """A job (or another session) registers a model between two reruns less than a second apart:
    the next read lists it (the registry is kept only while the job database is unchanged)."""
    from panoptic_deeplab.app import state

    sess = state.Session(state.Settings(model=None, data=None, workdir=tmp_path / "work"))
    assert sess.registered() == []
    bundle = tmp_path / "work" / "runs" / "new" / "model"
    bundle.mkdir(parents=True)
    jobs.JobStore(tmp_path / "work").register_model(bundle, "new", job_id=7)
    assert [r.name for r in sess.registered()] == ["new"]
    assert "new (job 7)" in sess.models()
