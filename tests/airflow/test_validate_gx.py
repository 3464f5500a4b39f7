"""validate_restored (GX Core) on a real PostgreSQL database: passes on a faithful copy, names every difference."""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


def metadata_of(conn):
    from restorable.engines import engine_for
    from restorable.metadata import SnapshotMetadata

    found = engine_for("postgres").describe(conn)
    return SnapshotMetadata(server_version="15", row_counts=dict(found.row_counts), schema=found.schema)


def test_gx_passes_then_names_count_type_missing_table_and_extra_expectation(pg_server, pg_sample, tmp_path):
    from restorable.engines import engine_for
    from restorable.validate.gx import sqlalchemy_url, validate_restored

    url = sqlalchemy_url(pg_sample)
    metadata = metadata_of(pg_sample)
    started = time.monotonic()
    ok = validate_restored(url, metadata, found=engine_for("postgres").describe(pg_sample))
    first = time.monotonic() - started
    assert ok.ok, ok.differences
    assert ok.tables == len(metadata.row_counts) and ok.expectations > 3 * ok.tables

    # Tamper with the "restored" copy in four ways.
    db = pg_sample.schema
    pg_server.execute(
        "DELETE FROM sales.order_items WHERE id IN (SELECT id FROM sales.order_items LIMIT 2)", database=db
    )
    pg_server.execute("ALTER TABLE inventory.categories ALTER COLUMN name TYPE varchar(200)", database=db)
    pg_server.execute('DROP TABLE sales."Order Notes"', database=db)
    pg_server.execute("UPDATE sales.orders SET total = -1 WHERE id = (SELECT min(id) FROM sales.orders)", database=db)
    extra = tmp_path / "shop.yaml"
    extra.write_text(
        "sales.orders:\n  - expectation: ExpectColumnValuesToBeBetween\n    kwargs: {column: total, min_value: 0}\n"
    )
    started = time.monotonic()
    bad = validate_restored(
        url, metadata, extra_expectations_path=extra, found=engine_for("postgres").describe(pg_sample)
    )
    second = time.monotonic() - started
    assert not bad.ok
    text = "\n".join(bad.differences)
    items = metadata.row_counts["sales.order_items"]
    assert f"sales.order_items: expect_table_row_count_to_equal expected {items}, found {items - 2}" in text
    assert 'sales."Order Notes": table is missing from the restored database' in text
    assert "inventory.categories.name: expect_column_values_to_be_of_type expected" in text
    assert "sales.orders.total: expect_column_values_to_be_between" in text and "unexpected_count" in text
    assert any(d.startswith("schema: ") for d in bad.differences)  # compare_descriptions sees it too
    print(
        f"\nTIMING gx tables={ok.tables} expectations={ok.expectations} first={first:.2f}s "
        f"(incl. GX import) second={second:.2f}s"
    )
