"""airflow_settings.yaml (Astro format) loads into plain Airflow and matches what the DAGs use."""

from __future__ import annotations

from pathlib import Path

import pytest

from restorable.exceptions import ConfigError

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.airflow


def test_repo_settings_pools_cover_every_source_of_the_repo_config():
    from restorable.airflow.dag_factory import source_pool
    from restorable.airflow.settings_loader import read_settings
    from restorable.config import load_config

    settings = read_settings(REPO / "airflow_settings.yaml", environ={})
    config = load_config(REPO / "include" / "restorable.yaml", environ={"RESTORABLE_AGE_RECIPIENT": "age1" + "q" * 58})
    assert {source_pool(db) for db in config.databases.values()} <= {p["name"] for p in settings["pools"]}
    (alerts,) = settings["connections"]
    assert alerts["conn_id"] == config.alerts.webhook_conn_id and alerts["conn_type"] == "http"
    assert alerts["conn_host"].startswith("http://127.0.0.1:")
    assert not any(c.get("conn_password") for c in settings["connections"])


def test_loader_writes_pools_variables_connections_and_skips_env_defined(airflow_db, tmp_path, monkeypatch):
    from airflow.models.connection import Connection
    from airflow.models.pool import Pool
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    from restorable.airflow.settings_loader import main

    path = tmp_path / "airflow_settings.yaml"
    path.write_text(
        "airflow:\n"
        "  connections:\n"
        "    - {conn_id: loader_hook, conn_type: http, conn_host: '${HOOK_URL}', conn_extra: {timeout: 5}}\n"
        "    - {conn_id: loader_env, conn_type: postgres, conn_host: nowhere}\n"
        "  pools:\n"
        "    - {pool_name: loader_pool, pool_slot: 3, pool_description: test}\n"
        "  variables:\n"
        "    - {variable_name: loader_var, variable_value: '${MISSING:-fallback}'}\n"
    )
    monkeypatch.setenv("HOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("AIRFLOW_CONN_LOADER_ENV", "postgres://u:p@h:5432/d")
    assert main([str(path)]) == 0
    assert main([str(path)]) == 0  # idempotent: updates, no duplicates
    assert Pool.get_pool("loader_pool").slots == 3
    assert Variable.get("loader_var") == "fallback"
    with create_session() as session:
        hooks = session.query(Connection).filter(Connection.conn_id == "loader_hook").all()
        assert len(hooks) == 1 and hooks[0].host == "http://127.0.0.1:9/hook"
        assert hooks[0].extra_dejson == {"timeout": 5}
        assert session.query(Connection).filter(Connection.conn_id == "loader_env").count() == 0


def test_loader_names_a_missing_variable(tmp_path):
    from restorable.airflow.settings_loader import read_settings

    path = tmp_path / "s.yaml"
    path.write_text("airflow:\n  connections:\n    - {conn_id: x, conn_type: http, conn_host: '${NOPE_X}'}\n")
    with pytest.raises(ConfigError, match=r"connections\[0\]\.conn_host refers to \$\{NOPE_X\}"):
        read_settings(path, environ={})
