"""enforce_lifecycle with dag.test(): retention applied per policy, bucket audited."""

from __future__ import annotations

import json

import pytest
import yaml

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


def test_enforce_lifecycle_dry_run_then_apply_keeps_the_newest_verified(dags, restorable_env):
    from restorable.config import load_config
    from restorable.lifecycle import BucketExpectations, audit_bucket

    env = restorable_env
    # keep_last 1: of two verified backups the older goes, the newest verified stays.
    data = yaml.safe_load(env.config_path.read_text())
    data["databases"][0]["retention"] = {"keep_last": 1}
    env.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert load_config(env.config_path).databases["shop"].retention == {"keep_last": 1}
    for _ in range(2):
        assert dags["backup__shop"].test().state == "success"
    older, newer = env.catalog().backup_ids("shop")
    store = env.services().store("lifecycle")
    audit_bucket(store, BucketExpectations(prefix="restorable/"), fix=True)

    dry = dags["enforce_lifecycle"].test(run_conf={"dry_run": True})
    assert dry.state == "success"
    assert xcom(dry, "enforce")["counts"]["deleted"] == 1
    assert env.catalog().backup_ids("shop") == [older, newer]

    real = dags["enforce_lifecycle"].test(run_conf={"dry_run": False})
    assert real.state == "success", xcom(real, "audit_bucket", key="summary")
    assert xcom(real, "enforce")["deleted"] == [f"shop/{older}"]
    assert env.catalog().backup_ids("shop") == [newer]
