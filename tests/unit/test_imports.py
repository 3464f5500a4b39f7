"""The package's import structure, read from the source with ``ast`` (nothing is imported).

- No import cycle among ``restorable`` modules. Only imports that run when a module is loaded
  count: an import inside a function, or under ``if TYPE_CHECKING:``, is how a cycle is broken
  on purpose.
- The core imports no Airflow: only ``restorable/airflow/`` may (DESIGN.md, "Layers").
- Nothing in ``plugins/`` imports ``devstack`` (the throwaway servers are not part of the product).
- A module over 600 lines is usually several concerns: it is split, or its docstring says why not
  in a line starting with "One concern:".
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"
PACKAGE = PLUGINS / "restorable"
AIRFLOW_ADAPTERS = PACKAGE / "airflow"
MAX_LINES = 600
ONE_CONCERN = "One concern:"


@dataclass(frozen=True)
class Import:
    module: str  # the module named by the statement, resolved to an absolute name
    names: tuple[str, ...]  # what ``from module import ...`` takes (empty for ``import module``)
    line: int
    at_load: bool  # runs when the importing module is loaded (not in a function, not TYPE_CHECKING)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PLUGINS).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path) -> Iterator[Import]:
    """Every import statement of ``path``, noting whether it runs at load time."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]

    def visit(node: ast.AST, at_load: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(alias.name, (), child.lineno, at_load)
            elif isinstance(child, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - (child.level - 1)] if child.level else []
                module = ".".join([*base, *([child.module] if child.module else [])])
                yield Import(module, tuple(a.name for a in child.names), child.lineno, at_load)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    yield from visit(ast.Module(body=[statement], type_ignores=[]), False)
                for statement in child.orelse:
                    yield from visit(ast.Module(body=[statement], type_ignores=[]), at_load)
            else:
                yield from visit(child, at_load)

    yield from visit(tree, True)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def load_time_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports at load time (``from pkg import mod`` names ``pkg.mod``)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imp in imports_of(path):
            if not imp.at_load:
                continue
            targets = {f"{imp.module}.{n}" for n in imp.names if f"{imp.module}.{n}" in modules}
            if len(targets) < len(imp.names) or not imp.names:
                targets.add(imp.module)  # names that are not submodules come from the module itself
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``a -> b -> ... -> a``) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_through(min(c), graph, c) for c in components]


def _cycle_through(start: str, graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """The shortest path ``start -> ... -> start`` inside ``component`` (breadth first)."""
    paths = [[start]]
    seen = {start}
    while paths:
        path = paths.pop(0)
        for nxt in sorted(graph[path[-1]] & component):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                paths.append([*path, nxt])
    raise AssertionError(f"no cycle through {start}")  # a strongly connected component always has one


def _where(path: Path, imp: Import) -> str:
    return f"{path.relative_to(REPO)}:{imp.line}: {imp.module}"


# ------------------------------------------------------------------------------------------ tests
def test_no_import_cycle_among_package_modules():
    cycles = find_cycles(load_time_graph(package_modules()))
    assert cycles == [], "import cycles (break one with an import inside the function that needs it):\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles
    )


def test_core_imports_no_airflow():
    found = [
        _where(path, imp)
        for path in sorted(PACKAGE.rglob("*.py"))
        if not path.is_relative_to(AIRFLOW_ADAPTERS)
        for imp in imports_of(path)
        if imp.module == "airflow"
        or imp.module.startswith(("airflow.", "restorable.airflow"))
        or (imp.module == "restorable" and "airflow" in imp.names)
    ]
    assert found == [], "Airflow imported outside restorable/airflow/ (the CLI must run without it):\n" + "\n".join(
        found
    )


def test_plugins_never_import_devstack():
    found = [
        _where(path, imp)
        for path in sorted(PLUGINS.rglob("*.py"))
        for imp in imports_of(path)
        if imp.module == "devstack" or imp.module.startswith("devstack.")
    ]
    assert found == [], "the product imports the dev stack:\n" + "\n".join(found)


def test_long_modules_say_why_they_are_one_concern():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = len(path.read_text().splitlines())
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and not any(ln.strip().startswith(ONE_CONCERN) for ln in docstring.splitlines()):
            too_long.append(f"{path.relative_to(REPO)}: {lines} lines")
    assert too_long == [], (
        f"modules over {MAX_LINES} lines: split them by concern, or say why not in a docstring line "
        f"starting with {ONE_CONCERN!r}:\n" + "\n".join(too_long)
    )


# ------------------------------------------------------------------------ the checks can fail
def test_a_cycle_is_found_and_named():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_and_type_checking_imports_do_not_count_at_load(tmp_path, monkeypatch):
    package = tmp_path / "restorable"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "if TYPE_CHECKING:\n    from restorable.c import C\n"
        "def f():\n    import airflow\n"
    )
    (package / "b.py").write_text("def g():\n    from restorable import a\n")
    (package / "c.py").write_text("import restorable.a\n")
    monkeypatch.setattr(sys.modules[__name__], "PLUGINS", tmp_path)
    found = {(i.module, i.names, i.at_load) for i in imports_of(package / "a.py")}
    assert ("restorable", ("b",), True) in found
    assert ("restorable.c", ("C",), False) in found
    assert ("airflow", (), False) in found
    modules = {module_name(p): p for p in sorted(package.rglob("*.py"))}
    graph = load_time_graph(modules)
    assert graph["restorable.a"] == {"restorable.b"} and graph["restorable.c"] == {"restorable.a"}
    assert find_cycles(graph) == []
    (package / "b.py").write_text("from restorable.c import x\n")
    assert find_cycles(load_time_graph(modules)) == [["restorable.a", "restorable.b", "restorable.c", "restorable.a"]]


def test_the_graph_holds_what_services_imports_at_load_only():
    graph = load_time_graph(package_modules())
    assert {"restorable.config", "restorable.connections", "restorable.repository.catalog"} <= graph[
        "restorable.services"
    ]
    # restorable/services.py imports Store under TYPE_CHECKING and S3Store inside store().
    assert not {"restorable.storage.protocol", "restorable.storage.s3"} & graph["restorable.services"]
    assert sum(len(targets) for targets in graph.values()) > 100
