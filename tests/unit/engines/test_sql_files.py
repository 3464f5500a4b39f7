"""The engines' SQL files: found in the package's include/, or under $RESTORABLE_INCLUDE_DIR."""

from __future__ import annotations

import pytest

from restorable.engines.sql_files import load_sql


def test_sql_files_found_from_env_and_package(tmp_path, monkeypatch):
    assert "pg_export_snapshot()" in load_sql("postgres", "snapshot_position")
    (tmp_path / "sql" / "postgres").mkdir(parents=True)
    (tmp_path / "sql" / "postgres" / "server_info.sql").write_text("select 42")
    monkeypatch.setenv("RESTORABLE_INCLUDE_DIR", str(tmp_path))
    assert load_sql("postgres", "server_info") == "select 42"
    with pytest.raises(ValueError):
        load_sql("postgres", "../secrets")


def test_identifiers_go_only_where_the_statement_has_them(tmp_path, monkeypatch):
    from restorable.engines.mysql.tools import quote_ident
    from restorable.engines.sql_files import sql_with_identifiers

    (tmp_path / "sql" / "mysql").mkdir(parents=True)
    (tmp_path / "sql" / "mysql" / "count_rows.sql").write_text("-- Count {table}.\nSELECT COUNT(*) FROM {table}\n")
    monkeypatch.setenv("RESTORABLE_INCLUDE_DIR", str(tmp_path))
    name = quote_ident("line\nbreak {table} `x`")
    assert sql_with_identifiers("mysql", "count_rows", table=name) == f"SELECT COUNT(*) FROM {name}"
    with pytest.raises(ValueError, match="needs identifiers"):
        sql_with_identifiers("mysql", "count_rows")
