"""The MariaDB chain end to end with dag.test(): backup__shopdb, then restore_drill__shopdb."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


def xcom(dag_run, task_id: str, key: str = "return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        return None if row is None else (json.loads(row.value) if isinstance(row.value, str) else row.value)


def states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: ti.state for ti in dag_run.get_task_instances(session=session)}


def test_mariadb_backup_then_drill(dags, restorable_env, mariadb_sample, mariadb_target_server, set_connection):
    set_connection("shopdb_mysql", mariadb_sample)
    set_connection("drill_mysql", mariadb_target_server.connection("mysql"))
    backup = dags["backup__shopdb"].test()
    assert backup.state == "success", states(backup)
    summary = xcom(backup, "backup")
    assert summary["engine"] == "mysql" and summary["tables"] > 0

    drill = dags["restore_drill__shopdb"].test()
    assert drill.state == "success", states(drill)
    evidence = xcom(drill, "record_evidence")
    assert evidence["ok"] and evidence["backup_id"] == summary["backup_id"]
    assert evidence["expected_rows"] == evidence["found_rows"] == summary["rows"]
    records = restorable_env.catalog().verifications("shopdb", summary["backup_id"])
    assert [r["kind"] for r in records] == ["checksum", "drill"]
    left = mariadb_target_server.query("SHOW DATABASES LIKE 'drill\\_%'")
    assert left == []
