"""Entry point of the browser app: page setup, navigation and the sidebar's model / data summary.

Started by `pdl app` (python -m streamlit run app/main.py). Pages are thin: they call the library's
public API (panoptic_deeplab.*) and keep only UI state.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from panoptic_deeplab.app import state

APP_DIR = Path(__file__).resolve().parent

st.set_page_config(page_title="Panoptic-DeepLab", page_icon=":material/layers:", layout="wide")

PAGES = [
    ("pages/inspect.py", "Inspect", ":material/image_search:"),
    ("pages/evaluate.py", "Evaluate", ":material/analytics:"),
    ("pages/review.py", "Review", ":material/fact_check:"),
    ("pages/train.py", "Train", ":material/model_training:"),
]

pages = [
    st.Page(path, title=title, icon=icon, default=(i == 0))
    for i, (path, title, icon) in enumerate(PAGES)
    if (APP_DIR / path).is_file()  # pages written by other work items appear once they exist
]
page = st.navigation(pages, position="sidebar")

settings = state.settings()
if settings.model:  # the first picture should not wait for TensorFlow and the model
    from panoptic_deeplab.app.components import model_io

    model_io.warm_up_in_background(str(settings.model))
with st.sidebar:
    st.caption("Model")
    st.markdown(f"`{state.model_label(settings.model)}`" if settings.model else "_no model yet_")
    st.caption("Data set")
    st.markdown(f"`{settings.data}`" if settings.data else "_none_")

page.run()
