"""The engine registry: every name builds an engine, base.py names none, unknown names are refused."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import restorable.engines.base as base_module
from restorable.engines import ENGINES, engine_for, engine_names
from restorable.engines.base import Engine, LogicalBackup
from restorable.exceptions import ConfigError


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_every_registered_name_builds_an_engine_with_a_logical_capability(name):
    engine = engine_for(name)
    assert isinstance(engine, Engine)
    assert engine.name == name
    assert isinstance(engine.logical, LogicalBackup)
    # The capability is its own object, not the engine wearing a second hat.
    assert engine.logical is not engine
    assert engine.logical.dump_format and engine.logical.data_suffix


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_registry_entries_point_at_importable_classes(name):
    module_name, _, class_name = ENGINES[name].partition(":")
    assert module_name.startswith(f"restorable.engines.{name}.")
    assert issubclass(getattr(importlib.import_module(module_name), class_name), Engine)


def test_engine_names_are_the_registry_keys():
    assert engine_names() == tuple(ENGINES)
    assert {"postgres", "mysql"} <= set(engine_names())


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_base_imports_no_engine_package():
    imported = _imported_modules(Path(base_module.__file__))
    assert imported, "the AST walk found no imports at all: the check would prove nothing"
    for name in ENGINES:
        package = f"restorable.engines.{name}"
        offending = sorted(m for m in imported if m == package or m.startswith(package + "."))
        assert offending == [], f"base.py imports {offending}"


def test_unknown_engine_is_a_config_error_naming_the_known_ones():
    with pytest.raises(ConfigError, match="unknown engine 'oracle'") as info:
        engine_for("oracle")
    for name in ENGINES:
        assert name in info.value.hint
