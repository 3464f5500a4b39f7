"""The ``restorable`` command as an operator runs it during an incident: no Airflow, only env vars."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def chain(pg_cli_chain):
    return pg_cli_chain


def cli(chain, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    return chain.run_cli("--json", *args, env_extra=env_extra)


def test_backup_list_verify_restore(chain, tmp_path, pg_target_server):
    backup = cli(chain, "backup", "shop")
    assert backup.returncode == 0, backup.stderr
    summary = json.loads(backup.stdout)
    assert summary["database_id"] == "shop" and summary["stored_bytes"] > 0
    assert "backup committed" in backup.stderr and f"backup={summary['backup_id']}" in backup.stderr
    # Done means read back: the checksum record is in the bucket before the command returns.
    assert summary["verified"] and summary["verify_seconds"] >= 0

    listing = cli(chain, "list", "shop")
    rows = json.loads(listing.stdout)
    assert [r["backup_id"] for r in rows] == [summary["backup_id"]]
    assert rows[0]["verified"] and rows[0]["last_check"] == "checksum:ok"

    verify = cli(chain, "verify", "shop", "latest", "--deep")
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["found_plain_sha256"] == summary["plain_sha256"]

    key_file = tmp_path / "key.txt"
    key_file.write_text(f"# created: today\n{chain.identity}\n")
    key_file.chmod(0o600)
    restore = cli(
        chain,
        "restore",
        "shop",
        summary["backup_id"],
        "--target",
        "tgt",
        "--database",
        "cli_restored",
        "--identity-file",
        str(key_file),
    )
    assert restore.returncode == 0, restore.stderr
    report = json.loads(restore.stdout)
    assert report["ok"] and report["differences"] == []

    again = cli(chain, "restore", "shop", "--target", "tgt", "--database", "cli_restored")
    assert again.returncode == 7, again.stderr
    assert "not empty" in again.stderr and "--overwrite" in again.stderr


def test_exit_codes_tell_failures_apart(chain, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("storage: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "restorable.cli", "--config", str(bad), "list"],
        capture_output=True,
        text=True,
        env={**os.environ, **chain.env},
    )
    assert result.returncode == 2 and "storage.conn_id" in result.stderr

    missing = cli(chain, "verify", "shop", "20200101T000000Z-00000000")
    assert missing.returncode == 8 and "restorable list shop" in missing.stderr

    unreachable_env = dict(chain.env)
    src = json.loads(unreachable_env["AIRFLOW_CONN_SRC"])
    src["port"] = 1  # nothing listens there
    unreachable = cli(chain, "backup", "shop", env_extra={"AIRFLOW_CONN_SRC": json.dumps(src)})
    assert unreachable.returncode == 3, unreachable.stderr

    bad_s3 = json.loads(chain.env["AIRFLOW_CONN_RESTORABLE_S3"])
    bad_s3["extra"]["endpoint_url"] = "http://127.0.0.1:1"
    storage = cli(chain, "list", env_extra={"AIRFLOW_CONN_RESTORABLE_S3": json.dumps(bad_s3)})
    assert storage.returncode == 5, storage.stderr


def test_backup_no_verify_returns_once_committed_unread(chain):
    backup = cli(chain, "backup", "shop", "--no-verify")
    assert backup.returncode == 0, backup.stderr
    summary = json.loads(backup.stdout)
    assert summary["verified"] is False
    assert chain.services.catalog().verifications("shop", summary["backup_id"]) == []


def test_object_lock_against_a_bucket_without_it_fails_before_the_dump(tmp_path, pg_sample, pg_target_server, seaweed):
    from devstack.chain import make_chain

    bucket = seaweed.create_bucket(f"nolock-{os.getpid()}", object_lock=False)
    try:
        chain = make_chain(
            tmp_path,
            source=pg_sample,
            engine="postgres",
            s3=seaweed.connection(),
            bucket=bucket,
            target=pg_target_server.connection("postgres"),
            object_lock=True,
        )
        result = chain.run_cli("backup", "shop")
        assert result.returncode == 2, result.stderr
        assert f"bucket s3://{bucket} has no Object Lock" in result.stderr and "Traceback" not in result.stderr
        assert "backup starting" not in result.stderr  # refused before any dump
        assert list(chain.services.store().list_objects("")) == []
    finally:
        seaweed.delete_bucket(bucket)
