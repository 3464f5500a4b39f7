"""The engine registry: each engine's name (the ``engine:`` of a database entry) and where it lives.

Adding an engine is one package under ``engines/`` plus one line here. Imports are lazy: a
backup of a PostgreSQL database never imports a MySQL driver, and ``base.py`` names no engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from restorable.exceptions import ConfigError

if TYPE_CHECKING:
    from restorable.engines.base import Engine

#: name -> "module:class"
ENGINES: dict[str, str] = {
    "postgres": "restorable.engines.postgres.engine:PostgresEngine",
    "mysql": "restorable.engines.mysql.engine:MySQLEngine",
}


def engine_names() -> tuple[str, ...]:
    return tuple(ENGINES)


def engine_for(name: str) -> Engine:
    """A new instance of the engine registered under ``name``."""
    try:
        target = ENGINES[name]
    except KeyError:
        raise ConfigError(f"unknown engine {name!r}", hint=f"Use one of: {', '.join(ENGINES)}") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()
