"""The WAL commands' refusals through the CLI, without servers: one line, the documented exit code
(wal-fetch: 126 for anything but "not archived", even a bad argument list)."""

from __future__ import annotations

import json

import pytest
import yaml

from restorable.cli import main
from restorable.stream.keys import generate_identity

_, RECIPIENT = generate_identity()


@pytest.fixture
def config(tmp_path, monkeypatch):
    def write(physical: dict | None) -> str:
        db = {"id": "shop", "engine": "postgres", "conn_id": "src"}
        if physical is not None:
            db["physical"] = physical
        data = {
            "storage": {"conn_id": "s3", "bucket": "wal-bucket"},
            "encryption": {"recipients": [RECIPIENT]},
            "databases": [db],
        }
        path = tmp_path / "restorable.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)

    s3 = {"conn_type": "aws", "login": "k", "password": "s", "extra": {"endpoint_url": "http://127.0.0.1:9"}}
    monkeypatch.setenv("AIRFLOW_CONN_S3", json.dumps(s3))
    monkeypatch.setenv("AIRFLOW_CONN_SRC", json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "schema": "x"}))
    return write


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("restorable: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_wal_commands_on_a_database_without_a_physical_block_are_config_errors(config, capsys):
    path = config(None)
    assert main(["--config", path, "wal-archiver", "shop"]) == 2
    assert "has no physical block" in _one_error_line(capsys.readouterr().err)
    assert main(["--config", path, "wal-status", "shop"]) == 2
    assert "no physical block" in _one_error_line(capsys.readouterr().err)


def test_the_archiver_refuses_a_missing_spool_directory(config, capsys, tmp_path):
    path = config({"wal": {"spool_dir": str(tmp_path / "nope")}})
    assert main(["--config", path, "wal-archiver", "shop", "--no-heartbeat"]) == 2
    assert "spool directory" in _one_error_line(capsys.readouterr().err)


def test_wal_fetch_turns_every_refusal_into_126_never_1_or_2(config, capsys, tmp_path):
    path = config({"wal": {"spool_dir": str(tmp_path)}})
    assert main(["--config", path, "wal-fetch", "shop", "RECOVERYXLOG", str(tmp_path / "x")]) == 126
    assert "not a WAL file name" in capsys.readouterr().err
    assert main(["--config", path, "wal-fetch", "shop"]) == 126
    assert main(["--config", path, "wal-fetch", "other", "000000010000000000000001", str(tmp_path / "x")]) == 126
    assert main(["--config", str(tmp_path / "missing.yaml"), "wal-fetch", "shop", "00000002.history", "x"]) == 126
    assert main(["wal-fetch", "--help"]) == 0
    assert "restore_command" in capsys.readouterr().out


def test_verify_wal_refuses_a_bad_start_segment(config, capsys, tmp_path):
    path = config({"wal": {"spool_dir": str(tmp_path)}})
    assert main(["--config", path, "verify-wal", "shop", "--from", "0000000100000000000000"]) == 2
    assert "not a WAL file name" in _one_error_line(capsys.readouterr().err)
