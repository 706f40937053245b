"""Entry point of the browser app: page setup, navigation and the sidebar's model / data summary.

Started by `pdl app` (python -m streamlit run app/main.py). Pages are thin: they call the library's
public API (panoptic_deeplab.*) and keep only UI state, in ``state.session()``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from panoptic_deeplab.app import state
from panoptic_deeplab.app.components import model_io
from panoptic_deeplab.cli import warm_up_tensorflow_quietly

APP_DIR = Path(__file__).resolve().parent

PAGES = [
    ("pages/inspect.py", "Inspect", ":material/image_search:"),
    ("pages/evaluate.py", "Evaluate", ":material/analytics:"),
    ("pages/review.py", "Review", ":material/fact_check:"),
    ("pages/train.py", "Train", ":material/model_training:"),
]


def navigation():
    pages = [
        st.Page(path, title=title, icon=icon, default=(i == 0))
        for i, (path, title, icon) in enumerate(PAGES)
        if (APP_DIR / path).is_file()  # pages written by other work items appear once they exist
    ]
    return st.navigation(pages, position="sidebar")


def sidebar(sess: state.Session) -> None:
    """What the page uses: the start-up model and data set until the page names its own."""
    with st.sidebar:
        st.caption("Model")
        model_slot = st.empty()
        st.caption("Data set")
        data_slot = st.empty()
    sess.sidebar = state.SidebarSlots(model_slot, data_slot)
    sess.uses(model=sess.settings.model, data=sess.settings.data)


def wait_for_tensorflow() -> None:
    """TensorFlow is imported once per server, in the background and without its start-up lines in
    the app's log; the page's code waits for it (after the sidebar is drawn)."""
    warm_up = warm_up_tensorflow_quietly()
    if warm_up is not None and warm_up.is_alive():
        with st.spinner("Loading TensorFlow (once per start of the app) ..."):
            warm_up.join()


st.set_page_config(page_title="Panoptic-DeepLab", page_icon=":material/layers:", layout="wide")
session = state.session()
session.start_run()  # the model registry is read afresh in each run
page = navigation()
sidebar(session)
wait_for_tensorflow()
if session.settings.model is not None:
    model_io.warm_up(str(session.settings.model))  # the model loads and traces meanwhile
page.run()
