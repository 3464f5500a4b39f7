"""Every log line of a CLI run names its run: the database, the backup id and the run id; with
``RESTORABLE_LOG_FORMAT=json`` each stderr line is one JSON object, the failure included."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.integration

RUN_ID = "manual__2026-12-04T01:00:00+00:00"


def test_every_text_line_of_a_backup_carries_database_backup_and_run_id(pg_cli_chain):
    done = pg_cli_chain.run_cli("--json", "backup", "shop", env_extra={"AIRFLOW_CTX_DAG_RUN_ID": RUN_ID})
    assert done.returncode == 0, done.stderr
    backup_id = json.loads(done.stdout)["backup_id"]
    lines = done.stderr.splitlines()
    assert len(lines) >= 5, done.stderr  # preflight, capture, upload, commit, verification at least
    loggers = set()
    for line in lines:
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR|DEBUG) restorable\.", line), line
        for field in ("database=shop", f"backup={backup_id}", f"run_id={RUN_ID}"):
            assert f" {field}" in line, f"{field} missing from: {line}"
            assert line.count(f" {field}") == 1, f"{field} twice in: {line}"
        loggers.add(line.split()[3])
    # Lines from the storage and engine layers, not only from the commands, carry them.
    assert {"restorable.commands.backup", "restorable.storage.s3.multipart", "restorable.commands.verify"} <= loggers
    assert pg_cli_chain.env["AIRFLOW_CONN_SRC"] not in done.stderr


def test_json_format_is_one_object_per_line_with_the_run_fields(pg_cli_chain):
    done = pg_cli_chain.run_cli("backup", "shop", env_extra={"RESTORABLE_LOG_FORMAT": "json"})
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert len(records) >= 5
    run_ids = {r["run_id"] for r in records}
    assert len(run_ids) == 1 and run_ids.pop().startswith("cli-")  # a correlation id outside Airflow
    backups = {r["backup"] for r in records}
    assert len(backups) == 1
    for r in records:
        assert {"time", "level", "logger", "message", "database", "backup", "run_id"} <= set(r), r
        assert r["database"] == "shop" and r["time"].endswith("Z")
    committed = next(r for r in records if r["message"] == "backup committed")
    assert committed["plain_bytes"] > 0 and committed["stored_sha256"]  # the line's own fields, typed

    src = json.loads(pg_cli_chain.env["AIRFLOW_CONN_SRC"])
    wrong = json.dumps({**src, "password": src["password"] + "-wrong"})
    failed = pg_cli_chain.run_cli(
        "backup", "shop", env_extra={"RESTORABLE_LOG_FORMAT": "json", "AIRFLOW_CONN_SRC": wrong}
    )
    assert failed.returncode != 0
    records = [json.loads(line) for line in failed.stderr.splitlines()]
    last = records[-1]
    assert last["level"] == "ERROR" and last["message"].startswith("restorable: error:")
    assert last["exit_code"] == failed.returncode and last["database"] == "shop" and last["backup"]
    assert src["password"] not in failed.stderr

    bad = pg_cli_chain.run_cli("list", "shop", env_extra={"RESTORABLE_LOG_FORMAT": "xml"})
    assert bad.returncode == 2 and "RESTORABLE_LOG_FORMAT='xml' is not a log format" in bad.stderr
