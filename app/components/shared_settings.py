"""Settings shared by every page: this session's choice first, else the environment."""
from __future__ import annotations

import os

import streamlit as st


def setting(key: str, env_names: tuple[str, ...]) -> str | None:
    """A shared setting: ``st.session_state[key]``, else the first non-empty env var (`pdl app` sets PDL_APP_*)."""
    value = st.session_state.get(key)
    if value:
        return str(value)
    for name in env_names:
        if os.environ.get(name, "").strip():
            return os.environ[name].strip()
    return None
