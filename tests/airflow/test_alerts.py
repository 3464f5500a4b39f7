"""Alerts: one webhook message per failed task, none on retries; permanent errors skip the retries."""

from __future__ import annotations

import dataclasses

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


def tries(dag_run, task_id: str) -> tuple[str, int]:
    from airflow.utils.session import create_session

    with create_session() as session:
        (ti,) = [t for t in dag_run.get_task_instances(session=session) if t.task_id == task_id]
        return ti.state, ti.try_number


def test_transient_failure_retries_then_alerts_once(dags, restorable_env, set_connection):
    from devstack.ports import free_port

    unreachable = dataclasses.replace(restorable_env.source, port=free_port())
    set_connection("shop_pg", unreachable)
    run = dags["backup__shop"].test()
    assert run.state == "failed"
    assert tries(run, "preflight") == ("failed", 2)  # retried once (RESTORABLE_TASK_RETRIES=1)
    (alert,) = restorable_env.alerts.received
    assert alert["task_id"] == "preflight" and alert["database"] == "shop" and alert["try_number"] == 2
    assert alert["runbook"] == "docs/runbooks/backup-failed.md"
    assert "SourceUnreachable" in alert["error"] or "ToolError" in alert["error"]


def test_refused_credentials_fail_at_once_with_one_alert(dags, restorable_env, set_connection):
    wrong = dataclasses.replace(restorable_env.source, password="not-the-password")
    set_connection("shop_pg", wrong)
    run = dags["backup__shop"].test()
    assert run.state == "failed"
    assert tries(run, "preflight") == ("failed", 1)  # permanent: the retry policy skipped the retry
    (alert,) = restorable_env.alerts.received
    assert "AuthenticationFailed" in alert["error"]
    assert "not-the-password" not in str(alert)


def test_a_broken_database_entry_fails_alone_and_alerts_the_others_run(restorable_env, age_keys, tmp_path, monkeypatch):
    from restorable.airflow.dag_factory import build_dags
    from tests.airflow.conftest import write_config

    env = restorable_env
    good = {"id": "shop", "engine": "postgres", "conn_id": "shop_pg", "schedule": "0 2 * * *"}
    good["restore_target_conn_id"] = "drill_pg"
    broken = {"id": "crm", "engine": "postgres", "conn_id": "crm_pg", "schedul": "@daily"}
    path = write_config(
        tmp_path / "restorable.yaml", bucket=env.bucket, recipient=age_keys[1], databases=[good, broken]
    )
    monkeypatch.setenv("RESTORABLE_CONFIG", str(path))  # dag.test() re-parses dags/ with it
    dags = build_dags(path)
    assert {"backup__shop", "restore_drill__shop", "backup__crm", "restore_database"} <= set(dags)
    assert [t.task_id for t in dags["backup__crm"].tasks] == ["config_error"]

    failed = dags["backup__crm"].test()
    assert failed.state == "failed" and tries(failed, "config_error") == ("failed", 1)
    (alert,) = env.alerts.received
    assert alert["database"] == "crm" and "databases[crm]" in alert["error"] and "schedul" in alert["error"]

    ran = dags["backup__shop"].test()
    assert ran.state == "success"
