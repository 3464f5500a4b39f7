"""Great Expectations (GX Core 1.x) checks of a restored database against its manifest.

For every table the manifest counted, one expectation suite on one whole-table batch:

- ``ExpectTableRowCountToEqual``: the exact count taken in the dump's own snapshot;
- ``ExpectTableColumnsToMatchOrderedList``: the ordered column names;
- ``ExpectColumnValuesToBeOfType`` per column whose recorded type maps to what GX observes
  (SQLAlchemy's spelling: ``character varying(20)`` is ``VARCHAR(20)``);
- the extra expectations of ``include/expectations/<db>.yaml`` (see ``expectations.py``).

Schema objects GX does not model (indexes, constraints, sequences, views, functions) are
compared with the engine's own description of the restored database
(``restorable.engines.compare.compare_descriptions``). No Airflow here: the CLI uses it too.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from restorable.connections import ConnectionInfo
from restorable.exceptions import ConfigError
from restorable.metadata import Description, SnapshotMetadata, legacy_key, split_key

log = logging.getLogger(__name__)

# GX's own chatter (and its usage statistics) has no place in a drill's log.
_QUIET_LOGGERS = ("great_expectations", "great_expectations.core", "great_expectations.data_context")


@dataclass
class ExpectationFailure:
    table: str
    expectation: str
    column: str | None
    expected: Any
    found: Any

    def describe(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: {self.expectation} expected {self.expected!r}, found {self.found!r}"


@dataclass
class ValidationSummary:
    tables: int
    expectations: int
    failures: list[ExpectationFailure] = field(default_factory=list)
    schema_differences: list[str] = field(default_factory=list)
    missing_tables: list[str] = field(default_factory=list)
    seconds: float = 0.0
    gx_version: str = ""

    @property
    def ok(self) -> bool:
        return not (self.failures or self.schema_differences or self.missing_tables)

    @property
    def differences(self) -> list[str]:
        """One readable line per difference: table, what was expected, what was found."""
        out = [f"{t}: table is missing from the restored database" for t in self.missing_tables]
        out += [f.describe() for f in self.failures]
        out += [f"schema: {d}" for d in self.schema_differences]
        return out

    def to_dict(self, limit: int = 50) -> dict[str, Any]:
        """JSON-able, small: at most ``limit`` differences listed."""
        diffs = self.differences
        return {
            "ok": self.ok,
            "tables": self.tables,
            "expectations": self.expectations,
            "failed_expectations": len(self.failures),
            "schema_differences": len(self.schema_differences),
            "missing_tables": self.missing_tables,
            "differences": diffs[:limit],
            "differences_truncated": max(0, len(diffs) - limit),
            "seconds": self.seconds,
            "gx_version": self.gx_version,
        }


def sqlalchemy_url(conn: ConnectionInfo, database: str | None = None) -> str:
    """A SQLAlchemy URL for ``conn`` (Postgres via psycopg2, MySQL/MariaDB via PyMySQL)."""
    database = database or conn.schema or ""
    driver = {"postgres": "postgresql+psycopg2", "mysql": "mysql+pymysql"}.get(conn.conn_type)
    if driver is None:
        raise ConfigError(f"connection {conn.conn_id!r}: no SQLAlchemy driver for type {conn.conn_type!r}")
    auth = ""
    if conn.login:
        auth = quote(conn.login, safe="")
        if conn.password:
            auth += ":" + quote(conn.password, safe="")
        auth += "@"
    port = f":{conn.port}" if conn.port else ""
    return f"{driver}://{auth}{conn.host or 'localhost'}{port}/{quote(database, safe='')}"


def _engine_options(url: str) -> dict[str, Any]:
    """``create_engine`` options for ``url``: PyMySQL encodes a str password as latin-1 (a
    traceback on "€", other bytes than the server hashed for "ä"), so it is given UTF-8 bytes."""
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    if parsed.drivername == "mysql+pymysql" and parsed.password:
        return {"connect_args": {"password": str(parsed.password).encode("utf-8")}}
    return {}


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


# --- GX ----------------------------------------------------------------------------------------


def _quiet_gx() -> None:
    import warnings

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    # schema_name on table assets is deprecated in favour of one datasource per schema; one
    # datasource for every schema of the restored database is what we want here.
    warnings.filterwarnings("ignore", message=".*schema_name.*is deprecated", category=DeprecationWarning)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


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


def _extras_by_key(extras: dict[str, list[Any]], keys: set[str]) -> dict[str, list[Any]]:
    """Extra expectations keyed as the manifest keys its tables, whether the file names a table
    as a key does (``sales."Order Notes"``) or unquoted (``sales.Order Notes``) when that is unique."""
    by_legacy: dict[str, list[str]] = {}
    for key in keys:
        by_legacy.setdefault(legacy_key(key), []).append(key)
    out: dict[str, list[Any]] = {}
    for name, expectations in extras.items():
        candidates = by_legacy.get(name, [])
        key = name if name in keys or len(candidates) != 1 else candidates[0]
        out.setdefault(key, []).extend(expectations)
    return out


def _columns(metadata: SnapshotMetadata, table_key: str) -> list[dict[str, Any]]:
    table = (metadata.schema or {}).get("tables", {}).get(table_key) or {}
    return list(table.get("columns") or [])


def build_expectations(engine: str, metadata: SnapshotMetadata, table_key: str, extra: list[Any]):
    """The GX expectations for one table: count, ordered columns, types, then the extras."""
    import great_expectations.expectations as gxe

    out = [gxe.ExpectTableRowCountToEqual(value=int(metadata.row_counts[table_key]))]
    columns = _columns(metadata, table_key)
    if columns:
        out.append(gxe.ExpectTableColumnsToMatchOrderedList(column_list=[c["name"] for c in columns]))
        for column in columns:
            expected = gx_type_for(engine, str(column.get("type", "")))
            if expected:
                out.append(gxe.ExpectColumnValuesToBeOfType(column=column["name"], type_=expected))
    out.extend(extra)
    return out


def _failure(table: str, result: Any) -> ExpectationFailure:
    config = result.expectation_config
    kwargs = dict(config.kwargs)
    observed = (result.result or {}).get("observed_value")
    if config.type == "expect_table_row_count_to_equal":
        expected: Any = kwargs.get("value")
    elif config.type == "expect_table_columns_to_match_ordered_list":
        expected = kwargs.get("column_list")
    elif config.type == "expect_column_values_to_be_of_type":
        expected = kwargs.get("type_")
    else:
        expected = {k: v for k, v in kwargs.items() if k not in ("column", "batch_id")}
        if observed is None:
            res = result.result or {}
            observed = {k: res[k] for k in ("unexpected_count", "unexpected_percent") if k in res}
            if "partial_unexpected_list" in res:
                observed["examples"] = list(res["partial_unexpected_list"])[:5]
            observed = observed or (str(result.exception_info) if result.exception_info else None)
    if observed is not None and not isinstance(observed, (str, int, float, bool, list, dict)):
        observed = str(observed)
    return ExpectationFailure(table, config.type, kwargs.get("column"), expected, observed)


def validate_restored(
    sqlalchemy_url: str,
    metadata: SnapshotMetadata,
    *,
    engine: str = "postgres",
    extra_expectations_path: str | Path | None = None,
    found: Description | None = None,
) -> ValidationSummary:
    """Validate the restored database at ``sqlalchemy_url`` against the manifest's ``metadata``.

    ``found`` (the engine's ``describe`` of the restored database) adds the comparison of
    indexes, constraints, sequences, views and functions. Returns a summary; never raises for
    a mismatch (the caller decides), only for a database or GX that cannot be used at all.
    """
    from restorable.validate.expectations import load_expectations

    started = time.monotonic()
    _quiet_gx()
    extras = load_expectations(extra_expectations_path) if extra_expectations_path else {}
    extras = _extras_by_key(extras, set(metadata.row_counts))
    import great_expectations as gx
    import sqlalchemy as sa

    summary = ValidationSummary(tables=0, expectations=0, gx_version=gx.__version__)
    unknown = sorted(set(extras) - set(metadata.row_counts))
    for table in unknown:
        summary.failures.append(
            ExpectationFailure(table, "extra expectations", None, "a table in the backup", "no such table")
        )

    # Which tables exist, read once: a missing table is a difference, not a GX crash.
    options = _engine_options(sqlalchemy_url)
    db_engine = sa.create_engine(sqlalchemy_url, poolclass=sa.pool.NullPool, **options)
    try:
        inspector = sa.inspect(db_engine)
        present: set[tuple[str | None, str]] = set()
        schemas = {table_names(engine, t)[0] for t in metadata.row_counts}
        for schema in schemas:
            present.update((schema, n) for n in inspector.get_table_names(schema=schema))
    finally:
        db_engine.dispose()

    context = _context()
    source = (context.data_sources.add_postgres if engine == "postgres" else context.data_sources.add_sql)(
        name="restored", connection_string=sqlalchemy_url, **({"kwargs": options} if options else {})
    )
    for table_key in sorted(metadata.row_counts):
        schema, name = table_names(engine, table_key)
        if (schema, name) not in present:
            summary.missing_tables.append(table_key)
            continue
        # Quoted: names come from the catalog exactly ("Order Notes", mixed case, spaces).
        asset = source.add_table_asset(
            name=table_key,
            table_name=sa.sql.quoted_name(name, quote=True),
            schema_name=sa.sql.quoted_name(schema, quote=True) if schema else None,
        )
        batch = asset.add_batch_definition_whole_table("whole_table").get_batch()
        suite = gx.ExpectationSuite(name=f"restorable.{table_key}")
        for expectation in build_expectations(engine, metadata, table_key, extras.get(table_key, [])):
            suite.add_expectation(expectation)
        result = batch.validate(suite)
        summary.tables += 1
        summary.expectations += len(result.results)
        summary.failures.extend(_failure(table_key, r) for r in result.results if not r.success)

    if found is not None:
        from restorable.engines.compare import compare_descriptions

        summary.schema_differences = list(compare_descriptions(metadata, found))
    summary.seconds = round(time.monotonic() - started, 3)
    log.info(
        "validation finished ok=%s tables=%d expectations=%d failed=%d schema_differences=%d seconds=%.2f",
        summary.ok,
        summary.tables,
        summary.expectations,
        len(summary.failures),
        len(summary.schema_differences),
        summary.seconds,
    )
    return summary
