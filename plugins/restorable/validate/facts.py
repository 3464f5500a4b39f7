"""What a restored database holds, read in bulk, as facts to assert against its manifest.

A drill of a database of many small tables spends its time per table, not per byte: one GX
batch per table costs a reflection, a count and a validation run each (88 s for 2,000 tables
here, 17 times the restore). So the facts GX asserts are read the way the database answers
cheaply: the columns of every table of a schema in one reflection (SQLAlchemy's
``get_multi_columns``, the same reflection GX uses for one table), and the counts of up to
``COUNT_CHUNK`` tables in one ``UNION ALL`` statement. Each fact pairs what the manifest
recorded with what the restored copy has; ``restorable.validate.gx`` has GX assert that every
pair is equal, in one validation.

Observed types are spelled the way GX's ``ExpectColumnValuesToBeOfType`` observes them for the
dialect: PostgreSQL compares the type compiled by the dialect (``VARCHAR(20)``,
``NUMERIC(12, 2)``), case-insensitively; MySQL/MariaDB compares the reflected type's class
name (``VARCHAR``, ``DECIMAL``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from restorable.metadata import SnapshotMetadata, split_key

#: Tables counted by one statement: few round trips, and a statement small enough to plan fast.
COUNT_CHUNK = 250
#: What a fact's ``observed`` says when the restored table has no such column.
NO_SUCH_COLUMN = "(no such column)"

#: The GX expectation each kind of fact stands for (the names the differences report).
ROW_COUNT = "expect_table_row_count_to_equal"
COLUMNS = "expect_table_columns_to_match_ordered_list"
COLUMN_TYPE = "expect_column_values_to_be_of_type"


@dataclass(frozen=True)
class Fact:
    """One recorded property of one table and what the restored copy has."""

    table: str
    expectation: str
    column: str | None
    expected: Any
    observed: Any

    def comparable(self, value: Any) -> str:
        """The form GX compares: JSON for lists and numbers, upper case for type names."""
        if self.expectation == COLUMN_TYPE:
            return str(value).upper()
        return json.dumps(value, ensure_ascii=False)


def table_names(engine: str, table_key: str) -> tuple[str | None, str]:
    """(schema, table) of a row-count key: ``schema.table`` in PostgreSQL, ``table`` in MySQL.

    A key that is not quoted as ``metadata.object_key`` writes it comes from a manifest written
    before names were quoted: its schema ends at the first dot (PostgreSQL), or it is the name.
    """
    names = split_key(table_key)
    if engine == "postgres":
        if names is not None and len(names) == 2:
            return names[0], names[1]
        schema, _, name = table_key.partition(".")
        return schema, name
    if names is not None and len(names) == 1:
        return None, names[0]
    return None, table_key


# --- types -------------------------------------------------------------------------------------

_PG_SIMPLE = {
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "text": "TEXT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "uuid": "UUID",
    "jsonb": "JSONB",
    "json": "JSON",
    "bytea": "BYTEA",
    "real": "REAL",
    "double precision": "DOUBLE PRECISION",
    "character varying": "VARCHAR",
    "numeric": "NUMERIC",
    "inet": "INET",
    "cidr": "CIDR",
    "interval": "INTERVAL",
    "money": "MONEY",
    "oid": "OID",
}
_PG_PARAM = {"character varying": "VARCHAR", "character": "CHAR", "numeric": "NUMERIC"}
_MYSQL_NAMES = {
    "int": "INTEGER",
    "integer": "INTEGER",
    "bool": "BOOLEAN",
    "boolean": "BOOLEAN",
    "double precision": "DOUBLE",
    "dec": "DECIMAL",
    "numeric": "NUMERIC",
}


def gx_type_for(engine: str, declared: str) -> str | None:
    """What GX observes for a column of type ``declared`` (the engine's spelling), or None if unsure.

    PostgreSQL is compared as SQLAlchemy's string form (``VARCHAR(20)``, ``NUMERIC(12, 2)``);
    MySQL by SQLAlchemy type class name (``VARCHAR``, ``DECIMAL``). Types without a sure mapping
    (arrays, enums, domains, time zones that SQLAlchemy folds) are left to the schema comparison.
    """
    text = declared.strip().lower()
    if engine == "postgres":
        if text in _PG_SIMPLE:
            return _PG_SIMPLE[text]
        match = re.fullmatch(r"(character varying|character|numeric)\((\d+)(?:,(\d+))?\)", text)
        if match:
            name, p, s = match.groups()
            if name == "character" and s is None:
                return f"CHAR({p})"
            return f"{_PG_PARAM[name]}({p}, {s})" if s is not None else f"{_PG_PARAM[name]}({p})"
        if text in ("timestamp without time zone", "timestamp"):
            return "TIMESTAMP"
        if text == "timestamp with time zone":
            return "TIMESTAMP WITH TIME ZONE"
        if text in ("time without time zone", "time"):
            return "TIME"
        if text == "time with time zone":
            return "TIME WITH TIME ZONE"
        return None
    if engine == "mysql":
        base = re.split(r"[\s(]", text, maxsplit=1)[0]
        if not base or base in ("enum", "set", "geometry", "point"):
            return None
        return _MYSQL_NAMES.get(base, base.upper())
    return None


def observed_type(engine: str, column_type: Any, dialect: Any) -> str:
    """A reflected column type as GX's type expectation observes it for ``engine``."""
    if engine == "postgres":
        return str(column_type.compile(dialect=dialect))
    return type(column_type).__name__


# --- reading the restored copy -----------------------------------------------------------------


def recorded_columns(metadata: SnapshotMetadata, table_key: str) -> list[dict[str, Any]]:
    table = (metadata.schema or {}).get("tables", {}).get(table_key) or {}
    return list(table.get("columns") or [])


def reflect_columns(inspector: Any, schemas: Iterable[str | None]) -> dict[tuple[str | None, str], list[dict]]:
    """The columns of every table of ``schemas``, one reflection per schema."""
    out: dict[tuple[str | None, str], list[dict]] = {}
    for schema in schemas:
        for (found_schema, table), columns in inspector.get_multi_columns(schema=schema).items():
            out[(schema if found_schema is None else found_schema, table)] = columns
    return out


def count_rows(connection: Any, tables: list[tuple[str | None, str]]) -> dict[tuple[str | None, str], int]:
    """Exact ``count(*)`` of each table, ``COUNT_CHUNK`` tables per statement.

    Names are quoted by the dialect into identifier positions only; nothing from the catalog is
    ever spliced into SQL as text.
    """
    import sqlalchemy as sa

    quote = connection.dialect.identifier_preparer.quote_identifier
    counts: dict[tuple[str | None, str], int] = {}
    for start in range(0, len(tables), COUNT_CHUNK):
        chunk = tables[start : start + COUNT_CHUNK]
        selects = []
        for i, (schema, name) in enumerate(chunk):
            qualified = f"{quote(schema)}.{quote(name)}" if schema else quote(name)
            selects.append(f"SELECT {start + i} AS i, count(*) AS n FROM {qualified}")
        for index, count in connection.execute(sa.text(" UNION ALL ".join(selects))):
            counts[tables[index]] = int(count)
    return counts


def gather_facts(
    engine: str,
    metadata: SnapshotMetadata,
    present: Mapping[str, tuple[str | None, str]],
    connection: Any,
    inspector: Any,
    counted: Mapping[str, int] | None = None,
) -> list[Fact]:
    """Facts of every table in ``present`` (manifest key -> restored (schema, table)).

    ``counted``: exact counts the engine already read from the restored copy (its ``describe``,
    in one snapshot), by manifest key; tables it lacks are counted here. A drill of a large
    table must not scan it twice.
    """
    dialect = connection.dialect
    counted = counted or {}
    counts = count_rows(connection, [present[key] for key in sorted(present) if key not in counted])
    counts.update({present[key]: int(n) for key, n in counted.items() if key in present})
    schemas = sorted({schema for schema, _ in present.values()}, key=lambda s: s or "")
    reflected = reflect_columns(inspector, schemas)
    facts: list[Fact] = []
    for key in sorted(present):
        where = present[key]
        facts.append(Fact(key, ROW_COUNT, None, int(metadata.row_counts[key]), counts[where]))
        columns = recorded_columns(metadata, key)
        if not columns:
            continue
        found = {c["name"]: c for c in reflected.get(where, [])}
        facts.append(Fact(key, COLUMNS, None, [c["name"] for c in columns], list(found)))
        for column in columns:
            expected = gx_type_for(engine, str(column.get("type", "")))
            if not expected:
                continue
            have = found.get(column["name"])
            observed = observed_type(engine, have["type"], dialect) if have else NO_SUCH_COLUMN
            facts.append(Fact(key, COLUMN_TYPE, column["name"], expected, observed))
    return facts
