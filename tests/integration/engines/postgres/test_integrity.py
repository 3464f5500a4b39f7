"""amcheck on restored copies: a clean database passes; an index whose page was overwritten on
disk (the server stopped, as a storage fault leaves it) fails, naming the index."""

from __future__ import annotations

import os

import pytest

from devstack.postgres import PostgresServer
from restorable.engines import engine_for

pytestmark = pytest.mark.integration


def test_a_clean_copy_passes_and_every_index_and_table_is_counted(pg_sample):
    report = engine_for("postgres").check_integrity(pg_sample)
    assert report.ok, report.problems
    assert report.checked["indexes"] > 0 and report.checked["tables"] > 0
    # The extension was made for the check and taken away again: the copy is left as restored.
    engine_state = PostgresExtensions(pg_sample)
    assert "amcheck" not in engine_state


def PostgresExtensions(conn):  # noqa: N802 - reads like the set it returns
    from restorable.engines.postgres.tools import connect

    pg = connect(conn, conn.schema)
    try:
        return {row[0] for row in pg.execute("SELECT extname FROM pg_extension").fetchall()}
    finally:
        pg.close()


def test_an_index_overwritten_on_disk_fails_naming_it(tmp_path):
    server = PostgresServer(tmp_path, name="pg_corrupt").start()
    try:
        server.create_database("broken")
        server.execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, note text); "
            "CREATE INDEX orders_note ON orders (note); "
            "INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 20000) g; CHECKPOINT",
            database="broken",
        )
        (path,) = server.query("SELECT pg_relation_filepath('orders_note')", database="broken")[0]
        index_file = server.data_dir / path

        def scribble() -> None:
            # Page 1 is the first leaf after the metapage: overwrite part of its item area.
            with open(index_file, "r+b") as fh:
                fh.seek(8192 + 200)
                fh.write(os.urandom(3000))

        server.restart_with(scribble)

        report = engine_for("postgres").check_integrity(server.connection("broken"))
        assert not report.ok
        assert any(p.startswith("index public.orders_note:") for p in report.problems), report.problems
        assert not any("orders_pkey" in p for p in report.problems), report.problems
    finally:
        server.stop()
