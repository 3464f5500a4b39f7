"""Great Expectations (GX Core 1.x) checks of a restored database against its manifest.

For every table the manifest counted, GX asserts:

- the exact row count taken in the dump's own snapshot (``ExpectTableRowCountToEqual``'s fact);
- the ordered column names (``ExpectTableColumnsToMatchOrderedList``'s);
- each column's type where the recorded type maps to what GX observes
  (``ExpectColumnValuesToBeOfType``'s; SQLAlchemy's spelling: ``character varying(20)`` is
  ``VARCHAR(20)``);
- the extra expectations of ``include/expectations/<db>.yaml`` (see ``expectations.py``), run by
  GX on the table itself.

The first three are read from the restored copy in bulk (``restorable.validate.facts``: one
reflection per schema, one count statement per 250 tables) and asserted by GX in one
validation of the gathered pairs, so a drill of 2,000 tables costs seconds, not one GX batch
per table; each difference is still reported under the expectation it stands for.

Schema objects GX does not model (indexes, constraints, sequences, views, functions) are
compared with the engine's own description of the restored database
(``restorable.engines.compare.compare_descriptions``). No Airflow here: the CLI uses it too.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from restorable.connections import ConnectionInfo
from restorable.exceptions import ConfigError
from restorable.metadata import Description, SnapshotMetadata, legacy_key
from restorable.validate.facts import Fact, gather_facts, table_names

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


# --- GX ----------------------------------------------------------------------------------------


def _quiet_gx() -> None:
    import warnings

    from restorable.validate.lazy_imports import defer_unused_imports

    defer_unused_imports()  # before GX's first import: 80 MiB it would load for nothing
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


def _assert_facts(context, facts: list[Fact]) -> list[ExpectationFailure]:
    """GX asserts, in one validation, that each fact's observed value equals the recorded one."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd

    if not facts:
        return []
    frame = pd.DataFrame(
        {
            "fact": range(len(facts)),
            "expected": [f.comparable(f.expected) for f in facts],
            "observed": [f.comparable(f.observed) for f in facts],
        }
    )
    asset = context.data_sources.add_pandas(name="facts").add_dataframe_asset(name="facts")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})
    suite = gx.ExpectationSuite(name="restorable.facts")
    suite.add_expectation(gxe.ExpectColumnPairValuesToBeEqual(column_A="expected", column_B="observed"))
    result = batch.validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["fact"]}
    ).results[0]
    if result.success:
        return []
    unequal = (result.result or {}).get("unexpected_index_list")
    if unequal is None:  # GX could not evaluate the pairs at all: say so rather than pass
        raise RuntimeError(f"Great Expectations did not evaluate the restored facts: {result.exception_info}")
    out = []
    for row in unequal:
        fact = facts[int(row["fact"])]
        out.append(ExpectationFailure(fact.table, fact.expectation, fact.column, fact.expected, fact.observed))
    return out


def _validate_extras(context, url: str, options: dict, engine: str, present, extras) -> tuple[int, list]:
    """The extra expectations of ``include/expectations/<db>.yaml``, one batch per table that has any."""
    import great_expectations as gx
    import sqlalchemy as sa

    wanted = {key: present[key] for key in sorted(extras) if key in present and extras[key]}
    if not wanted:
        return 0, []
    add = context.data_sources.add_postgres if engine == "postgres" else context.data_sources.add_sql
    source = add(name="restored", connection_string=url, **({"kwargs": options} if options else {}))
    evaluated, failures = 0, []
    for table_key, (schema, name) in wanted.items():
        # Quoted: names come from the catalog exactly ("Order Notes", mixed case, spaces).
        asset = source.add_table_asset(
            name=table_key,
            table_name=sa.sql.quoted_name(name, quote=True),
            schema_name=sa.sql.quoted_name(schema, quote=True) if schema else None,
        )
        batch = asset.add_batch_definition_whole_table("whole_table").get_batch()
        suite = gx.ExpectationSuite(name=f"restorable.{table_key}")
        for expectation in extras[table_key]:
            suite.add_expectation(expectation)
        result = batch.validate(suite)
        evaluated += len(result.results)
        failures.extend(_failure(table_key, r) for r in result.results if not r.success)
    return evaluated, failures


def preload() -> threading.Thread:
    """Import GX in a background thread and return it (join it before validating).

    GX's import costs 3 to 7 s and 234 MiB here, more than the validation of 2,000 tables; a
    drill starts it before its restore, so the import runs while the restore streams rather
    than after it. The thread only imports: an import that fails there fails again, with its
    traceback, where ``validate_restored`` imports GX itself.
    """

    def load() -> None:
        try:
            _quiet_gx()
            import great_expectations  # noqa: F401
        except Exception:  # noqa: BLE001 - reported by the validation's own import
            log.debug("preloading Great Expectations failed", exc_info=True)

    thread = threading.Thread(target=load, name="gx-preload", daemon=True)
    thread.start()
    return thread


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

    options = _engine_options(sqlalchemy_url)
    db_engine = sa.create_engine(sqlalchemy_url, poolclass=sa.pool.NullPool, **options)
    try:
        with db_engine.connect() as connection:
            inspector = sa.inspect(connection)
            # Which tables exist, read once: a missing table is a difference, not a crash.
            existing: set[tuple[str | None, str]] = set()
            for schema in {table_names(engine, t)[0] for t in metadata.row_counts}:
                existing.update((schema, n) for n in inspector.get_table_names(schema=schema))
            present = {}
            for table_key in sorted(metadata.row_counts):
                where = table_names(engine, table_key)
                if where in existing:
                    present[table_key] = where
                else:
                    summary.missing_tables.append(table_key)
            counted = found.row_counts if found is not None else None
            facts = gather_facts(engine, metadata, present, connection, inspector, counted)
    finally:
        db_engine.dispose()
    gathered = time.monotonic()

    context = _context()
    summary.failures.extend(_assert_facts(context, facts))
    evaluated, extra_failures = _validate_extras(context, sqlalchemy_url, options, engine, present, extras)
    summary.failures.extend(extra_failures)
    summary.tables = len(present)
    summary.expectations = len(facts) + evaluated

    if found is not None:
        from restorable.engines.compare import compare_descriptions

        summary.schema_differences = list(compare_descriptions(metadata, found))
    summary.seconds = round(time.monotonic() - started, 3)
    log.info(
        "validation finished ok=%s tables=%d expectations=%d failed=%d schema_differences=%d "
        "gather_seconds=%.2f seconds=%.2f",
        summary.ok,
        summary.tables,
        summary.expectations,
        len(summary.failures),
        len(summary.schema_differences),
        gathered - started,
        summary.seconds,
    )
    return summary
