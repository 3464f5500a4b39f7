"""Row counts, schema description and roles of a PostgreSQL database.

Capture (inside the dump's exported snapshot) and describe (on a restored copy) both call
``read_description`` with the same SQL files, so the two sides of a drill cannot drift apart.
Both sessions run with ``search_path = pg_catalog`` (as pg_dump does) so that every name
``format_type``/``pg_get_*def`` print outside pg_catalog is schema-qualified, whatever the
connecting role's search_path.

Keys are ``schema.name`` written by ``metadata.object_key`` (a name that needs quoting is
double-quoted, so ``x."y.z"`` and ``"x.y".z`` are two keys). The SQL returns the names as an
array (``name``), with an optional ``kind`` word before them and ``arguments`` after them
(``function sales.f(integer)``); keys are made here, by one rule, not by string concatenation in
SQL. Row counts cover ordinary tables and leaf partitions, each counted with ``ONLY``;
partitioned parents have no entry (their rows are those of their leaves).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from restorable.engines.sql_files import load_sql
from restorable.metadata import object_key

ENGINE = "postgres"
#: Schema sections read as ``key -> value`` from ``include/sql/postgres/<section>.sql``.
KEYED_SECTIONS = (
    "tables",
    "indexes",
    "constraints",
    "views",
    "materialized_views",
    "functions",
    "triggers",
    "types",
    "partitions",
    "extensions",
    "owners",
    "grants",
    "default_acls",
    "row_security",
    "event_triggers",
)
#: Tables (or sequences) per statement when counting: one round trip per batch, not per table.
BATCH = 200


def prepare_session(pg: psycopg.Connection) -> None:
    """Session settings both sides use (before the transaction starts)."""
    pg.execute("SET search_path = pg_catalog")
    # A count over a big table may take long; the caller's own timeouts govern, not the role's.
    pg.execute("SET statement_timeout = 0")


def section_key(row: dict[str, Any]) -> str:
    """The key of one row of a section's SQL: ``[kind ]names[arguments]``, or its ``key`` as is."""
    if "key" in row:
        return row["key"]
    words = [row.get("kind"), object_key(*row["name"]) if row.get("name") else None]
    return " ".join(w for w in words if w) + (row.get("arguments") or "")


def _keyed(pg: psycopg.Connection, name: str) -> dict[str, Any]:
    cur = pg.execute(load_sql(ENGINE, name))
    columns = [c.name for c in cur.description or ()]
    rows = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    # Sorted here, by code point (the SQL's ORDER BY follows the database's collation).
    return dict(sorted((section_key(row), row["value"]) for row in rows))


def _single(pg: psycopg.Connection, name: str) -> Any:
    row = pg.execute(load_sql(ENGINE, name)).fetchone()
    return row[0] if row else None


def read_row_counts(pg: psycopg.Connection) -> dict[str, int]:
    """Exact ``count(*)`` of every user table (see module docstring for which)."""
    tables = pg.execute(load_sql(ENGINE, "row_count_tables")).fetchall()
    counts: dict[str, int] = {}
    for start in range(0, len(tables), BATCH):
        batch = tables[start : start + BATCH]
        query = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {i}::int, count(*) FROM ONLY {table}").format(
                i=sql.Literal(i), table=sql.Identifier(schema, name)
            )
            for i, (schema, name) in enumerate(batch)
        )
        for i, n in pg.execute(query).fetchall():
            counts[object_key(*batch[i])] = int(n)
    return dict(sorted(counts.items()))


def read_sequences(pg: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """``last_value``/``is_called`` (and ``increment``) of every user sequence.

    Sequences are not transactional: this reads their current state, not the snapshot's. A capture
    reads them before it starts pg_dump, so under concurrent use the dump holds values at or beyond
    these (which is what the comparison accepts), never behind them.
    """
    sequences = pg.execute(load_sql(ENGINE, "sequences")).fetchall()
    values: dict[str, dict[str, Any]] = {}
    for start in range(0, len(sequences), BATCH):
        batch = sequences[start : start + BATCH]
        query = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {i}::int, last_value, is_called FROM {seq}").format(
                i=sql.Literal(i), seq=sql.Identifier(schema, name)
            )
            for i, (schema, name, _inc) in enumerate(batch)
        )
        for i, last_value, is_called in pg.execute(query).fetchall():
            schema, name, increment = batch[i]
            values[object_key(schema, name)] = {
                "last_value": int(last_value),
                "is_called": bool(is_called),
                "increment": int(increment),
            }
    return dict(sorted(values.items()))


def read_schema(pg: psycopg.Connection, sequences: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The schema description in the shared shape plus PostgreSQL's extra sections.

    ``sequences``, when given, were read earlier (see ``read_sequences``) and are used as they are.
    """
    schema: dict[str, Any] = {name: _keyed(pg, name) for name in KEYED_SECTIONS}
    schema["sequences"] = read_sequences(pg) if sequences is None else sequences
    schema["large_objects"] = _single(pg, "large_objects")
    schema["database"] = _single(pg, "database")
    schema["database_properties"] = _single(pg, "database_properties")
    return schema


def read_description(
    pg: psycopg.Connection, *, sequences: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, int], dict[str, Any]]:
    """(row_counts, schema) of the database ``pg`` is connected to, in its current transaction."""
    return read_row_counts(pg), read_schema(pg, sequences)


def read_roles(pg: psycopg.Connection) -> list[dict[str, Any]]:
    """Roles the database uses, with attributes and memberships (never passwords)."""
    return [value for _key, value in sorted(pg.execute(load_sql(ENGINE, "roles")).fetchall())]
