"""The Postgres chain end to end with dag.test(): backup, drill, bad restores, backfills, manual restores."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


def states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: ti.state for ti in dag_run.get_task_instances(session=session)}


def xcom(dag_run, task_id: str, key: str = "return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        if row is None or not isinstance(row.value, str):
            return None if row is None else row.value
        try:
            return json.loads(row.value)
        except json.JSONDecodeError:  # a plain string pushed as it is
            return row.value


def drill_records(env, backup_id: str) -> list[dict]:
    return [r for r in env.catalog().verifications("shop", backup_id) if r["kind"] == "drill"]


def scratch_databases(env) -> list[str]:
    rows = env.target_server.query("SELECT datname FROM pg_database WHERE datname LIKE 'drill_%'")
    return [r[0] for r in rows]


def test_backup_then_drill_succeed_and_record_evidence(dags, restorable_env):
    env = restorable_env
    t0 = time.monotonic()
    backup_run = dags["backup__shop"].test()
    backup_seconds = time.monotonic() - t0
    assert backup_run.state == "success", states(backup_run)
    summary = xcom(backup_run, "backup")
    assert summary["backup_id"] and summary["stored_sha256"] and summary["tables"] > 0
    assert "password" not in json.dumps(summary).lower()
    assert xcom(backup_run, "verify_checksum")["ok"] is True

    t1 = time.monotonic()
    drill_run = dags["restore_drill__shop"].test()
    drill_seconds = time.monotonic() - t1
    assert drill_run.state == "success", states(drill_run)
    evidence = xcom(drill_run, "record_evidence")
    assert evidence["ok"] is True and evidence["backup_id"] == summary["backup_id"]
    (record,) = drill_records(env, summary["backup_id"])
    assert record["ok"] and record["hashes"]["verified"]
    assert record["counts"]["expected_rows"] == record["counts"]["found_rows"] == summary["rows"]
    assert record["validation"]["ok"] and record["validation"]["expectations"] > record["validation"]["tables"]
    assert record["rto_seconds"] > 0 and record["backup_age_seconds"] >= 0
    assert set(record["phases_seconds"]) == {"pick", "restore", "validate"}
    assert record["run"]["dag_id"] == "restore_drill__shop" and record["run"]["run_id"] == drill_run.run_id
    assert scratch_databases(env) == []
    assert env.alerts.received == []
    print(
        f"\nTIMING backup__shop {backup_seconds:.1f}s restore_drill__shop {drill_seconds:.1f}s "
        f"validate {record['phases_seconds']['validate']:.2f}s tables={record['validation']['tables']}"
    )


def test_drill_catches_a_bad_restore_drops_scratch_and_alerts_once(dags, restorable_env):
    """A manifest whose count no longer matches the data (a tampered copy under a new id)."""
    from devstack.chain import write_tampered_copy
    from restorable.commands.verify import verify_backup

    env = restorable_env
    backup_run = dags["backup__shop"].test()
    assert backup_run.state == "success", states(backup_run)
    catalog = env.catalog()
    good = catalog.read_manifest("shop", xcom(backup_run, "backup")["backup_id"])
    table = sorted(good.metadata.row_counts)[0]
    data = {"metadata": {"row_counts": {table: good.metadata.row_counts[table] + 1}}}

    def raise_a_count(copy: dict) -> None:
        copy["metadata"]["row_counts"][table] = data["metadata"]["row_counts"][table]

    tampered = write_tampered_copy(catalog, good, raise_a_count)
    verify_backup(env.services(), "shop", tampered.backup_id)  # same bytes: the checksum passes

    drill_run = dags["restore_drill__shop"].test()
    assert drill_run.state == "failed"
    got = states(drill_run)
    assert got["validate"] == "failed" and got["drop_scratch"] == "success" and got["drill_verdict"] == "failed"
    assert scratch_databases(env) == []
    validation = xcom(drill_run, "validate", key="summary")
    assert not validation["ok"]
    expected = data["metadata"]["row_counts"][table]
    assert any(
        d.startswith(f"{table}: expect_table_row_count_to_equal expected {expected}, found {expected - 1}")
        for d in validation["differences"]
    ), validation["differences"]
    (record,) = drill_records(env, tampered.backup_id)
    assert record["ok"] is False and record["failed_step"] == "validate"
    # One alert for one failure (the verdict does not alert again), with what on-call needs.
    assert len(env.alerts.received) == 1, env.alerts.received
    alert = env.alerts.received[0]
    assert alert["database"] == "shop" and alert["backup_id"] == tampered.backup_id
    assert alert["dag_id"] == "restore_drill__shop" and alert["task_id"] == "validate"
    assert alert["failing_step"] == "validate" and table in alert["error"]
    assert alert["runbook"] == "docs/runbooks/drill-failed.md" and alert["text"]
    assert "AGE-SECRET-KEY" not in json.dumps(alert) and env.source.password not in json.dumps(alert)


def test_backfill_drills_pick_the_backup_of_their_date(dags, restorable_env):
    env = restorable_env
    made = []
    for day in (1, 2, 3):
        run = dags["backup__shop"].test(logical_date=datetime(2026, 1, day, 2, tzinfo=UTC))
        assert run.state == "success", states(run)
        made.append(env.catalog().read_manifest("shop", xcom(run, "backup")["backup_id"]))
    assert len({m.backup_id for m in made}) == 3
    assert [m.backup_id[:8] for m in made] == ["20260101", "20260102", "20260103"]
    # A drill for a date picks the newest verified backup at or before it; the backups were
    # taken just now, so the drills' dates sit between their creation times.
    for index, manifest in enumerate(made):
        when = manifest.created + timedelta(milliseconds=1)
        drill = dags["restore_drill__shop"].test(logical_date=when)
        assert drill.state == "success", states(drill)
        assert xcom(drill, "pick_backup")["backup_id"] == manifest.backup_id, index
    # A retried backup run (same DAG run) does not make a second backup.
    assert len(env.catalog().backup_ids("shop")) == 3


def test_manual_restore_into_new_database_then_refuses_non_empty(dags, restorable_env):
    env = restorable_env
    backup_run = dags["backup__shop"].test()
    assert backup_run.state == "success", states(backup_run)
    target_db = f"restored_{int(time.time())}"
    conf = {
        "database": "shop",
        "backup_id": "latest",
        "target_conn_id": "drill_pg",
        "target_database": target_db,
        "overwrite": False,
    }
    try:
        run = dags["restore_database"].test(run_conf=conf)
        assert run.state == "success", states(run)
        assert states(run)["approve_overwrite"] == "skipped"  # nothing overwritten: no approval asked
        assert xcom(run, "validate_restore", key="summary")["ok"] is True
        env.alerts.clear()
        again = dags["restore_database"].test(run_conf=conf)
        assert again.state == "failed"
        assert states(again)["restore"] == "failed"
        (alert,) = env.alerts.received
        assert alert["task_id"] == "restore" and "RestoreRefused" in alert["error"]
        assert alert["runbook"] == "docs/runbooks/restore.md"
        # dag.test() cannot answer the approval (tests/airflow/test_restore_approval.py checks it):
        # it is marked approved here, to see the overwrite go through after it.
        overwrite = dags["restore_database"].test(
            run_conf={**conf, "overwrite": True}, mark_success_pattern="approve_overwrite"
        )
        assert overwrite.state == "success", states(overwrite)
        assert xcom(overwrite, "plan_restore", key="plan")["needs_approval"] is True
    finally:
        env.target_server.drop_database(target_db)


def test_manual_restore_over_the_source_database_needs_its_confirmation(dags, restorable_env, set_connection):
    from dataclasses import replace

    env = restorable_env
    assert dags["backup__shop"].test().state == "success"
    set_connection("alias_pg", replace(env.source, host="localhost"))  # the source under another name
    conf = {"database": "shop", "target_conn_id": "alias_pg", "target_database": env.source.schema, "overwrite": True}
    refused = dags["restore_database"].test(run_conf=conf)
    assert refused.state == "failed"
    got = states(refused)
    assert got["plan_restore"] == "failed" and got["restore"] == "upstream_failed"
    alert = env.alerts.received[-1]
    assert alert["task_id"] == "plan_restore" and "own source database" in alert["error"]


def test_drill_refuses_a_target_that_is_the_source(dags, restorable_env, set_connection):
    env = restorable_env
    assert dags["backup__shop"].test().state == "success"
    set_connection("drill_pg", env.source)  # a config mistake: the drill would restore into the source
    drill = dags["restore_drill__shop"].test()
    assert drill.state == "failed"
    got = states(drill)
    assert got["pick_backup"] == "failed" and got["restore_scratch"] == "upstream_failed"
    (alert,) = env.alerts.received
    assert "RestoreRefused" in alert["error"] and alert["task_id"] == "pick_backup"


def test_a_drill_before_the_first_backup_is_skipped_with_its_reason(dags, restorable_env):
    env = restorable_env
    early = dags["restore_drill__shop"].test(logical_date=datetime(2026, 1, 1, 3, tzinfo=UTC))
    found = states(early)
    assert early.state == "success", found  # not a red run for a slot before any backup
    assert found["pick_backup"] == "skipped" and found["drill_verdict"] == "skipped", found
    assert "no backup of shop exists yet" in xcom(early, "pick_backup", key="skipped")
    assert scratch_databases(env) == []

    backup = dags["backup__shop"].test()
    assert backup.state == "success", states(backup)
    first = env.catalog().read_manifest("shop", xcom(backup, "backup")["backup_id"])
    before = dags["restore_drill__shop"].test(logical_date=first.created - timedelta(days=1))
    assert states(before)["pick_backup"] == "skipped", states(before)
    assert "is before the first backup of shop" in xcom(before, "pick_backup", key="skipped")
