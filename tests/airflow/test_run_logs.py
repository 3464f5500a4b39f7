"""Inside Airflow too, every line Restorable logs during a task names the run: the database, the
Airflow run id and DAG, and the backup once chosen (Airflow's task log shows a record's message)."""

from __future__ import annotations

import logging

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


def test_task_log_lines_carry_database_run_id_and_backup(dags, restorable_env, caplog):
    caplog.set_level(logging.INFO, logger="restorable")
    run = dags["backup__shop"].test()
    assert run.state == "success"
    backup_id = restorable_env.catalog().entries("shop")[-1].backup_id
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("restorable")]
    assert len(lines) >= 5, lines
    for line in lines:
        for field in ("database=shop", f"run_id={run.run_id}", "dag_id=backup__shop"):
            assert field in line or f'{field.split("=")[0]}="{field.split("=", 1)[1]}"' in line, (field, line)
    # From the moment the backup is chosen, its id is on the line, whichever layer logs it.
    chosen = [line for line in lines if f"backup={backup_id}" in line]
    assert any("s3 multipart completed" in line for line in chosen), lines
    assert any("verification passed" in line for line in chosen), lines
