"""The package's import structure: no cycles inside packages, no import back up the layers.

Read from the source with `ast` (every import statement, also those inside functions; those
under `if TYPE_CHECKING:` are annotations only and do not count).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# Layers in order (docs/architecture.md): each imports only itself and those before it.
LAYERS = ["errors atomic outputs configs assets registry", "data", "models", "methods", "runs", "evaluation",
          "engine", "inference", "study", "view", "cli demo __init__ __main__"]
# Cycles that exist today; empty (issue 13 broke the last ones), so any new cycle fails the test.
KNOWN_CYCLES: list[set[str]] = []


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "samtune").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets += [base] + [f"{base}.{alias.name}" for alias in node.names]
        edges = set()
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else "__init__"
    return next(i for i, names in enumerate(LAYERS) if part in names.split())


def test_no_import_cycles():
    cycles = _cycles(_imports(_modules()))
    assert [sorted(c) for c in cycles if c not in KNOWN_CYCLES] == []


def test_no_import_goes_back_up_the_layers():
    graph = _imports(_modules())
    # `samtune` itself (for __version__) may be imported from anywhere: its other names load lazily.
    backwards = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                       if b != "samtune" and _layer(b) > _layer(a))
    assert backwards == []


def test_the_checks_see_a_cycle_and_a_backward_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert _layer("samtune.data.readers") < _layer("samtune.models.zoo") < _layer("samtune.cli.main")


def test_tests_are_one_package_without_path_edits():
    """Test helpers are imported as `tests.helpers.X`: every test folder is a package and no
    test edits the import path (a module imported that way could shadow or be shadowed)."""
    tests = Path(__file__).resolve().parent
    folders = {path.parent for path in tests.rglob("*.py")}
    assert sorted(str(f.relative_to(tests)) for f in folders if not (f / "__init__.py").is_file()) == []
    needle = "sys." + "path"
    assert sorted(str(p.relative_to(tests)) for p in tests.rglob("*.py") if needle in p.read_text()) == []
