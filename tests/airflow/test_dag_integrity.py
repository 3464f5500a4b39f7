"""Every DAG file imports cleanly, fast, and every DAG carries the settings operations rely on."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.airflow


def test_dag_files_import_without_errors_and_fast(dags, default_config):
    # ``dags`` parsed the folder once already: Airflow's own modules and the providers manager
    # are loaded, as they are in the DAG processor. What is timed is the DAG file itself.
    from airflow.dag_processing.dagbag import DagBag

    started = time.monotonic()
    bag = DagBag(dag_folder=str(REPO / "dags"))
    seconds = time.monotonic() - started
    assert bag.import_errors == {}
    assert seconds < 2.0, f"parsing dags/ took {seconds:.2f}s"
    expected = {
        "backup__shop",
        "restore_drill__shop",
        "backup__shopdb",
        "restore_drill__shopdb",
        "restore_database",
        "enforce_lifecycle",
        "report__all",
    }
    assert expected <= set(bag.dag_ids)


def test_every_dag_has_tags_owner_retries_and_one_active_run(dags):
    for dag_id, dag in dags.items():
        assert dag.tags, dag_id
        assert dag.max_active_runs == 1, dag_id
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", (dag_id, task.task_id)
            if dag_id != "restore_database":
                assert task.retries >= 1, (dag_id, task.task_id)
                assert task.retry_exponential_backoff == 2.0, (dag_id, task.task_id)
            assert task.retry_policy is not None, (dag_id, task.task_id)


def test_backup_dag_shape_pool_and_asset(dags):
    dag = dags["backup__shop"]
    assert [t.task_id for t in dag.topological_sort()] == ["preflight", "backup", "verify_checksum", "publish"]
    assert dag.get_task("backup").pool == "restorable_shop_pg"
    assert dag.get_task("preflight").pool == "restorable_shop_pg"
    (asset,) = dag.get_task("publish").outlets
    assert asset.name == "restorable://shop/backups"
    assert dag.timetable.expression == "0 2 * * *"


def test_drill_dag_shape_trigger_rules_and_schedules(dags):
    dag = dags["restore_drill__shop"]
    order = [t.task_id for t in dag.topological_sort()]
    assert order == ["pick_backup", "restore_scratch", "validate", "record_evidence", "drop_scratch", "drill_verdict"]
    for task_id in ("record_evidence", "drop_scratch", "drill_verdict"):
        assert dag.get_task(task_id).trigger_rule == "all_done"
    assert dag.timetable.expression == "0 3 * * 0"
    # drill_on_backup: weekly cron OR the backup Asset.
    from airflow.sdk import AssetOrTimeSchedule

    assert isinstance(dags["restore_drill__shopdb"].timetable, AssetOrTimeSchedule)


def test_restore_dag_params_form(dags):
    dag = dags["restore_database"]
    params = dag.params
    assert params.get_param("database").schema["enum"] == ["shop", "shopdb"]
    assert params["backup_id"] == "latest"
    assert params["overwrite"] is False
    assert params["i_am_restoring_over_the_source"] is False
    assert params["target_conn_id"] == ""  # blank: the drill server; never the source connection
    assert "never its source" in params.get_param("target_conn_id").description
    assert dag.schedule is None


def test_restore_dag_plans_then_waits_for_a_second_persons_approval_only_to_overwrite(dags):
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    dag = dags["restore_database"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "plan_restore",
        "approve_overwrite",
        "restore",
        "validate_restore",
    ]
    assert dag.get_task("plan_restore").downstream_task_ids == {"approve_overwrite", "restore"}
    assert dag.get_task("approve_overwrite").downstream_task_ids == {"restore"}
    approve = dag.get_task("approve_overwrite")
    assert isinstance(approve, ApprovalOperator)
    assert approve.response_timeout == timedelta(hours=4)
    assert approve.defaults == ["Reject"] and approve.fail_on_reject  # no answer in time rejects
    assert dag.get_task("restore").trigger_rule == "none_failed_min_one_success"


def test_permanent_errors_fail_at_once_others_retry():
    from airflow.sdk.definitions.retry_policy import RetryAction

    from restorable.airflow.retry import RETRY_POLICY
    from restorable.exceptions import (
        AuthenticationFailed,
        ConfigError,
        IntegrityError,
        SourceUnreachable,
        StorageError,
        ValidationFailed,
    )

    for exc in (IntegrityError("checksum"), ConfigError("bad"), AuthenticationFailed("no"), ValidationFailed("x")):
        assert RETRY_POLICY.evaluate(exc, 1, 3).action == RetryAction.FAIL, exc
    for exc in (StorageError("slow"), SourceUnreachable("down"), RuntimeError("?")):
        assert RETRY_POLICY.evaluate(exc, 1, 3).action == RetryAction.DEFAULT, exc


def test_retries_default_to_two_first_after_two_minutes_doubling_to_an_hour(default_config, monkeypatch):
    # The suite's conftest sets RESTORABLE_TASK_RETRIES/RETRY_DELAY_SECONDS for quick dag.test()
    # runs; without them the factory's own defaults apply.
    from restorable.airflow.dag_factory import build_dags, build_lifecycle_dag

    monkeypatch.delenv("RESTORABLE_TASK_RETRIES")
    monkeypatch.delenv("RESTORABLE_RETRY_DELAY_SECONDS")
    dags = {**build_dags(default_config), "enforce_lifecycle": build_lifecycle_dag(default_config)}
    for dag_id, dag in dags.items():
        for task in dag.tasks:
            where = (dag_id, task.task_id)
            # restore_database is manual: whoever triggered it retries by hand (default_args retries=0).
            assert task.retries == (0 if dag_id == "restore_database" else 2), where
            assert task.retry_delay == timedelta(minutes=2), where
            assert task.retry_exponential_backoff == 2.0, where
            assert task.max_retry_delay == timedelta(hours=1), where


def test_retries_and_first_delay_follow_the_environment(default_config, monkeypatch):
    from restorable.airflow.dag_factory import build_dags, build_lifecycle_dag

    monkeypatch.setenv("RESTORABLE_TASK_RETRIES", "5")
    monkeypatch.setenv("RESTORABLE_RETRY_DELAY_SECONDS", "30")
    for dag in (build_dags(default_config)["backup__shop"], build_lifecycle_dag(default_config)):
        for task in dag.tasks:
            assert (task.retries, task.retry_delay) == (5, timedelta(seconds=30)), (dag.dag_id, task.task_id)
