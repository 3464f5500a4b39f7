"""docs/connections.md cannot fall behind the code.

The package and the DAG files are read with ``ast``: every ``RESTORABLE_*`` environment variable
they read (``os.environ.get``, ``os.getenv``, ``environ[...]``) and every connection extra key
(``extra.get("key")``, ``extra["key"]``, ``"key" in extra``, also through ``extra_dejson`` and
through a constant tuple of keys) must appear in the page, in backquotes.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "connections.md"
SOURCES = [*sorted((REPO / "plugins" / "restorable").rglob("*.py")), *sorted((REPO / "dags").glob("*.py"))]
#: Names a connection's extra goes by in the code.
EXTRA_NAMES = {"extra", "extra_dejson"}


def _mentions_extra(node: ast.AST) -> bool:
    return any(
        (isinstance(n, ast.Name) and n.id in EXTRA_NAMES) or (isinstance(n, ast.Attribute) and n.attr in EXTRA_NAMES)
        for n in ast.walk(node)
    )


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "environ") or (
        isinstance(node, ast.Attribute) and node.attr == "environ"
    )


def _strings(node: ast.AST | None) -> tuple[str, ...] | None:
    """The strings of a constant tuple/list/set, else None."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return tuple(e.value for e in node.elts)
    return None


def _constant_names(tree: ast.Module) -> dict[str, tuple[str, ...]]:
    """Names bound to constant string tuples: module constants, and loop or comprehension
    variables iterating over one (``for k in LIBPQ_EXTRAS``, ``for name in ("a", "b")``)."""
    names: dict[str, tuple[str, ...]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and (values := _strings(node.value)) is not None:
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    names[target.id] = values
    for node in ast.walk(tree):
        if isinstance(node, ast.For | ast.comprehension) and isinstance(node.target, ast.Name):
            values = _strings(node.iter)
            if values is None and isinstance(node.iter, ast.Name):
                values = names.get(node.iter.id)
            if values is not None:
                names[node.target.id] = values
    return names


def _keys(node: ast.AST, constants: dict[str, tuple[str, ...]], where: str) -> Iterator[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.Name) and node.id in constants:
        yield from constants[node.id]
    else:
        raise AssertionError(f"{where}: cannot tell which key this reads: {ast.unparse(node)}")


def extras_read(path: Path) -> Iterator[tuple[str, str]]:
    """(extra key, where) for every extra key ``path`` reads."""
    tree = ast.parse(path.read_text(), str(path))
    constants = _constant_names(tree)
    for node in ast.walk(tree):
        where = f"{_shown(path)}:{getattr(node, 'lineno', '?')}"
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and _mentions_extra(node.func.value)
            and node.args
        ):
            yield from ((key, where) for key in _keys(node.args[0], constants, where))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _mentions_extra(node.value):
            yield from ((key, where) for key in _keys(node.slice, constants, where))
        elif (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], ast.In | ast.NotIn)
            and _mentions_extra(node.comparators[0])
            and isinstance(node.left, ast.Constant)
        ):
            yield node.left.value, where


def environment_read(path: Path) -> Iterator[tuple[str, str]]:
    """(variable, where) for every literal ``RESTORABLE_*`` variable ``path`` reads from the environment."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute | ast.Name):
            func = node.func
            getter = isinstance(func, ast.Attribute) and func.attr in ("get", "setdefault") and _is_environ(func.value)
            if getter or (func.attr if isinstance(func, ast.Attribute) else func.id) == "getenv":
                name = node.args[0]
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            name = node.slice
        if isinstance(name, ast.Constant) and isinstance(name.value, str) and name.value.startswith("RESTORABLE_"):
            yield name.value, f"{_shown(path)}:{node.lineno}"


def _shown(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def documented() -> set[str]:
    return set(re.findall(r"`([^`\s]+)`", DOC.read_text()))


def _undocumented(found: Iterator[tuple[str, str]]) -> list[str]:
    names = documented()
    return sorted({f"{name} ({where})" for name, where in found if name not in names})


# ------------------------------------------------------------------------------------------ tests
def test_every_extra_the_code_reads_is_documented():
    missing = _undocumented(item for path in SOURCES for item in extras_read(path))
    assert missing == [], "connection extras read by the code but missing from docs/connections.md:\n" + "\n".join(
        missing
    )


def test_every_restorable_variable_the_code_reads_is_documented():
    missing = _undocumented(item for path in SOURCES for item in environment_read(path))
    assert missing == [], "environment variables read by the code but missing from docs/connections.md:\n" + (
        "\n".join(missing)
    )


def test_the_scan_finds_what_the_code_is_known_to_read():
    # If the scan found nothing, the two tests above would pass on any page.
    extras = {key for path in SOURCES for key, _ in extras_read(path)}
    assert {"endpoint_url", "sslmode", "target_session_attrs", "unix_socket", "lock_wait_timeout", "scheme"} <= extras
    assert {"role_arn", "verify", "maintenance_database"} <= extras
    variables = {name for path in SOURCES for name, _ in environment_read(path)}
    assert {"RESTORABLE_CONFIG", "RESTORABLE_PG_BINDIR", "RESTORABLE_TASK_RETRIES"} <= variables


def test_an_undocumented_read_is_caught(tmp_path):
    source = tmp_path / "module.py"
    source.write_text(
        "import os\n"
        "KEYS = ('alpha', 'beta')\n"
        "def f(conn, extra):\n"
        "    os.environ.get('RESTORABLE_NOT_DOCUMENTED')\n"
        "    os.getenv('RESTORABLE_NEITHER')\n"
        "    conn.extra.get('gamma'); extra['delta']; 'epsilon' in extra\n"
        "    (conn.extra_dejson or {}).get('zeta')\n"
        "    return {k: conn.extra[k] for k in KEYS}\n"
    )
    found_extras = {k for k, _ in extras_read(source)}
    assert found_extras == {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}
    found_env = {k for k, _ in environment_read(source)}
    assert found_env == {"RESTORABLE_NOT_DOCUMENTED", "RESTORABLE_NEITHER"}
    assert not (found_extras | found_env) & documented()


def test_a_key_the_scan_cannot_resolve_fails(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f(conn, name):\n    return conn.extra.get(name)\n")
    with pytest.raises(AssertionError, match="cannot tell which key"):
        list(extras_read(source))
