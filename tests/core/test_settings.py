"""Each setting is declared once: the environment variables in ``settings.py``, the per-user cache
folder in ``settings.user_cache``, the network's output names in ``model.builder.OUTPUTS``. The
other modules (the app's included) refer to those names instead of spelling the values again."""

import ast
from pathlib import Path

import panoptic_deeplab
from panoptic_deeplab import settings
from panoptic_deeplab.model.builder import OUTPUTS

PACKAGE = Path(panoptic_deeplab.__file__).parent
APP = Path(__file__).resolve().parents[2] / "app"
ENV_NAMES = {
    value
    for name, value in vars(settings).items()
    if name.startswith("ENV_") and type(value) is str
}


def _sources():
    for root in (PACKAGE, APP):
        for path in sorted(root.rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def _string_constants(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def test_every_environment_variable_is_declared_once_in_settings():
    assert {"PDL_APP_MODEL", "PDL_PRECISION", "PDL_BACKEND", "PDL_WORKDIR"} <= ENV_NAMES
    assert len(ENV_NAMES) == len([n for n in vars(settings) if n.startswith("ENV_")])
    spelled = [
        f"{path.relative_to(path.parents[1])}:{node.lineno} {node.value}"
        for path, tree in _sources()
        if path != PACKAGE / "settings.py"
        for node in _string_constants(tree)
        # An exact variable name as a string (help texts and docstrings that mention one are prose).
        if node.value.startswith("PDL_") and node.value.isupper() or node.value == "XDG_CACHE_HOME"
    ]
    assert spelled == []


def test_the_checker_finds_a_spelled_out_variable_name():
    tree = ast.parse('import os\nos.environ.get("PDL_BACKEND", "")  # not settings.ENV_BACKEND\n')
    assert [n.value for n in _string_constants(tree) if n.value in ENV_NAMES] == ["PDL_BACKEND"]


def test_the_output_names_are_listed_once():
    assert OUTPUTS == ("semantic_logits", "center_heatmap", "offsets")
    listed = []
    for path, tree in _sources():
        if path == PACKAGE / "model" / "builder.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if set(OUTPUTS) <= names:  # a list of the outputs, not of training targets
                    listed.append(f"{path.name}:{node.lineno}")
    assert listed == []


def test_the_engine_cache_lives_in_the_user_cache(monkeypatch, tmp_path):
    from panoptic_deeplab.engines import engine_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert engine_cache_dir() == tmp_path / "panoptic_deeplab" / "engines"
    # The XDG rule that settings.user_cache follows: a relative value is ignored.
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert engine_cache_dir() == Path.home() / ".cache" / "panoptic_deeplab" / "engines"
    assert engine_cache_dir().parent == settings.user_cache()
