"""The ``textproto`` fixture: a variant of a fixture textproto with one edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.deeplab2.deeplab2_fixtures import MODELS, fixture


@pytest.fixture
def textproto(tmp_path):
    """Write a variant of a fixture textproto: ``textproto("mnv3s_os16", old, new)``."""

    def make(model: str, old: str | None = None, new: str = "") -> Path:
        text = fixture(MODELS[model][1]).read_text()
        if old is not None:
            assert old in text, old
            text = text.replace(old, new, 1)
        path = tmp_path / f"{model}-variant.textproto"
        path.write_text(text)
        return path

    return make
