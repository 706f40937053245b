"""The package has no import cycles, neither among its module-level imports nor counting the imports
inside functions.

Read as static tools read them: ``from . import sub`` imports the package itself as well as ``sub``
(so a package whose ``__init__`` imports a module that does ``from . import sub`` is a cycle), and
imports under ``if TYPE_CHECKING:`` do not count (they never run). Imports inside functions run
later, so they cannot fail at import time, but a circle through them still means two modules that
need each other; the second test counts them too. Only the package's own modules are nodes:
optional third-party engines (tf2onnx, OpenVINO, ONNX Runtime), imported inside functions, are
outside the graph.
"""

import ast
from pathlib import Path

import panoptic_deeplab

PACKAGE = Path(panoptic_deeplab.__file__).parent


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["panoptic_deeplab", *path.relative_to(PACKAGE).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _top_level_imports(tree: ast.Module, in_functions: bool = False):
    """Import nodes that run when the module is imported (not for type checkers), and with
    ``in_functions`` those inside functions and classes too."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif in_functions and isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        ):
            pending.extend(node.body)
        elif in_functions and isinstance(node, (ast.For, ast.While)):
            pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(
                node.body
                + node.orelse
                + node.finalbody
                + [h for x in node.handlers for h in x.body]
            )
        elif isinstance(node, (ast.With, ast.ClassDef)):
            pending.extend(node.body)


def import_graph(in_functions: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        here = name if is_package else name.rsplit(".", 1)[0]
        edges = set()
        tree = ast.parse(path.read_text(), str(path))
        for node in _top_level_imports(tree, in_functions):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{a.name}" for a in node.names]
            edges.update(t for t in targets if t in modules and t != name)
        # importing a.b.c runs a and a.b first; a module inside a package needs no edge to it
        for target in list(edges):
            parts = target.split(".")
            edges.update(
                p
                for p in (".".join(parts[:i]) for i in range(2, len(parts)))
                if p in modules and not name.startswith(p + ".")
            )
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle_through_a_package_init():
    graph = {
        "p": {"p.trainer"},
        "p.trainer": {"p.monitor"},
        "p.monitor": {"p", "p.events"},
        "p.events": set(),
    }
    assert cycles(graph) == [["p", "p.monitor", "p.trainer"]]


def test_the_package_has_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50 and "panoptic_deeplab.training.callbacks" in graph
    assert cycles(graph) == []


def test_the_checker_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    if x:\n        from . import a\nclass C:\n    import b\n")
    assert len(list(_top_level_imports(tree))) == 1  # the class body runs at import time
    assert len(list(_top_level_imports(tree, in_functions=True))) == 2


def test_the_package_has_no_import_cycles_counting_imports_inside_functions():
    graph = import_graph(in_functions=True)
    assert "panoptic_deeplab.engines" in graph["panoptic_deeplab.inference"]
    assert cycles(graph) == []
