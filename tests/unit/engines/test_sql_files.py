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
