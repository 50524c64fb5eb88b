"""The shape of padet_sdk, read from its source (nothing is imported): no import cycle between
its modules, no module over MAX_LINES lines, and no import of torch, training or export.

Every import counts, also those inside functions and under ``if TYPE_CHECKING:``: a lazy import
only hides a cycle, it does not remove it.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "padet_sdk"
MAX_LINES = 400
FORBIDDEN = ("torch", "torchvision", "training", "export")


def _modules() -> dict[str, Path]:
    """``padet_sdk.x.y`` → its file, for every .py file of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _binds(known: dict[str, Path], module: str, attr: str) -> bool:
    """Whether ``from module import attr`` takes ``attr`` from the module itself. Not when the
    module is a package and ``attr`` one of its submodules that is no .py file (the compiled
    ``padet_sdk._native``, built or not): that import does not run the package's code again."""
    path = known[module]
    if path.name != "__init__.py":
        return True
    tree = ast.parse(path.read_text())
    bound = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    bound |= {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    bound |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return attr in bound


def _imports(name: str, path: Path, known: dict[str, Path]) -> tuple[set[str], set[str]]:
    """(padet_sdk modules that ``name`` imports, top-level names of everything it imports)."""
    is_package = path.name == "__init__.py"
    edges: set[str] = set()
    tops: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                tops.add(alias.name.split(".")[0])
                if alias.name in known:
                    edges.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            tops.add(target.split(".")[0])
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:  # from . import native -> the module padet_sdk.native
                    edges.add(sub)
                elif target in known and _binds(known, target, alias.name):  # from .detector import Detector
                    edges.add(target)
    edges.discard(name)
    return edges, tops


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, mods)[0] for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_import_graph_is_read_from_the_source():
    """Guards the tests below against passing on an empty graph."""
    graph = import_graph()
    assert {"padet_sdk", "padet_sdk.detector", "padet_sdk.stream", "padet_sdk.backends.openvino"} <= set(graph)
    assert "padet_sdk.backends" in graph["padet_sdk.detector"]  # from .backends import ...
    assert "padet_sdk.native" in graph["padet_sdk.detector"]  # from . import native
    assert "padet_sdk.detector" in graph["padet_sdk.stream"]  # under TYPE_CHECKING
    assert "padet_sdk.model_file" in graph["padet_sdk.backends.openvino"]  # from ..model_file import ...
    assert "padet_sdk" in graph["padet_sdk.cli"]  # from . import Detector (inside a function)


def test_find_cycle_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_padet_sdk_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle in padet_sdk: " + " -> ".join(cycle or [])


def test_no_padet_sdk_module_is_longer_than_the_limit():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by concept): {long}"


def test_padet_sdk_source_never_imports_torch_training_or_export():
    mods = _modules()
    bad = {name: sorted(set(FORBIDDEN) & _imports(name, path, mods)[1]) for name, path in mods.items()}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"padet_sdk must stay torch-free: {bad}"
