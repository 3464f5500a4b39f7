"""The facts GX asserts are read in bulk from the restored copy, and read right (issue 17, drills that scale)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from restorable.engines import engine_for
from restorable.metadata import SnapshotMetadata
from restorable.validate import facts
from restorable.validate.gx import sqlalchemy_url

pytestmark = pytest.mark.integration


def _present(metadata):
    return {key: facts.table_names("postgres", key) for key in metadata.row_counts}


def test_counts_in_chunks_equal_the_engines_exact_counts(pg_sample, monkeypatch):
    """Chunks of two tables: every UNION ALL statement maps its counts back to the right table."""
    found = engine_for("postgres").describe(pg_sample)
    metadata = SnapshotMetadata(server_version="15", row_counts=dict(found.row_counts), schema=found.schema)
    monkeypatch.setattr(facts, "COUNT_CHUNK", 2)
    engine = sa.create_engine(sqlalchemy_url(pg_sample), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            gathered = facts.gather_facts("postgres", metadata, _present(metadata), connection, sa.inspect(connection))
    finally:
        engine.dispose()
    counted = {f.table: f.observed for f in gathered if f.expectation == facts.ROW_COUNT}
    assert counted == dict(found.row_counts)  # names with spaces and capitals included
    assert len(counted) > 4 and len(set(counted.values())) > 2
    assert all(f.expected == f.observed for f in gathered), [f for f in gathered if f.expected != f.observed]


def test_a_dropped_column_and_a_changed_type_are_facts_that_differ(pg_server, pg_sample):
    found = engine_for("postgres").describe(pg_sample)
    metadata = SnapshotMetadata(server_version="15", row_counts=dict(found.row_counts), schema=found.schema)
    pg_server.execute("ALTER TABLE inventory.categories ALTER COLUMN name TYPE varchar(200)", database=pg_sample.schema)
    pg_server.execute("ALTER TABLE sales.orders DROP COLUMN total CASCADE", database=pg_sample.schema)
    engine = sa.create_engine(sqlalchemy_url(pg_sample), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            gathered = facts.gather_facts("postgres", metadata, _present(metadata), connection, sa.inspect(connection))
    finally:
        engine.dispose()
    differ = {(f.table, f.expectation, f.column): f.observed for f in gathered if f.expected != f.observed}
    assert differ[("inventory.categories", facts.COLUMN_TYPE, "name")] == "VARCHAR(200)"
    assert differ[("sales.orders", facts.COLUMN_TYPE, "total")] == facts.NO_SUCH_COLUMN
    assert "total" not in differ[("sales.orders", facts.COLUMNS, None)]
    assert len(differ) == 3
