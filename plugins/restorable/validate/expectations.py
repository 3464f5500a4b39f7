"""Extra expectations per database, from ``include/expectations/<db>.yaml``.

The file maps a table (as the manifest names it: ``schema.table`` for PostgreSQL, ``table``
for MySQL) to a list of GX expectations, each by class name (or snake_case name) with its
keyword arguments::

    public.customers:
      - expectation: ExpectColumnValuesToNotBeNull
        kwargs: {column: email}
      - expectation: expect_column_values_to_be_unique
        kwargs: {column: email}

Every error names the file, the table and the entry, like the main config's errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from restorable.exceptions import ConfigError


def expectation_class(name: str, where: str) -> type:
    """The GX expectation class called ``name`` (``ExpectX`` or ``expect_x``)."""
    import great_expectations.expectations as gxe

    class_name = name if name[:1].isupper() else "".join(p.capitalize() for p in name.split("_"))
    cls = getattr(gxe, class_name, None)
    if not isinstance(cls, type) or not class_name.startswith("Expect"):
        raise ConfigError(
            f"{where}: {name!r} is not a Great Expectations expectation",
            hint="Use a class name from great_expectations.expectations, e.g. ExpectColumnValuesToNotBeNull",
        )
    return cls


def parse_expectations(data: Any, path: str | Path) -> dict[str, list[Any]]:
    """Build GX expectation objects from the parsed YAML; raise ConfigError naming the entry."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of table -> list of expectations")
    out: dict[str, list[Any]] = {}
    for table, entries in data.items():
        where = f"{path}: {table}"
        if not isinstance(entries, list):
            raise ConfigError(f"{where}: expected a list of expectations")
        built = []
        for i, entry in enumerate(entries):
            at = f"{where}[{i}]"
            if not isinstance(entry, Mapping) or "expectation" not in entry:
                raise ConfigError(f"{at}: expected a mapping with 'expectation' and optional 'kwargs'")
            unknown = sorted(set(entry) - {"expectation", "kwargs", "meta"})
            if unknown:
                raise ConfigError(f"{at}: unknown field(s) {', '.join(unknown)}")
            kwargs = entry.get("kwargs") or {}
            if not isinstance(kwargs, Mapping):
                raise ConfigError(f"{at}.kwargs: expected a mapping")
            cls = expectation_class(str(entry["expectation"]), at)
            try:
                built.append(cls(**kwargs, **({"meta": entry["meta"]} if entry.get("meta") else {})))
            except Exception as exc:  # pydantic's ValidationError: name the entry, keep GX's words
                raise ConfigError(f"{at}: invalid arguments for {cls.__name__}: {exc}") from None
        out[str(table)] = built
    return out


def load_expectations(path: str | Path) -> dict[str, list[Any]]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"expectations file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_expectations(data, path)


def expectations_path(database_id: str, configured: str | None, config_path: Path) -> Path | None:
    """The extra-expectations file of a database: the configured one, else ``expectations/<db>.yaml``
    beside the config file when it exists."""
    if configured:
        p = Path(configured)
        return p if p.is_absolute() else (config_path.parent / p)
    default = config_path.parent / "expectations" / f"{database_id}.yaml"
    return default if default.exists() else None
