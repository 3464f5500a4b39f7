"""A Restorable config archiving a throwaway MariaDB server's binlogs: for the binlog tests and the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from devstack.chain import connection_uri
from restorable.config import load_config
from restorable.connections import ConnectionInfo
from restorable.services import Services
from restorable.stream.keys import generate_identity


@dataclass
class BinlogChain:
    services: Services
    config_path: Path
    env: dict[str, str]
    identity: str
    database_id: str
    spool_dir: Path

    def cli_argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "restorable.cli", "--config", str(self.config_path), *args]

    def run_cli(self, *args: str, env_extra: dict[str, str] | None = None, timeout: float = 120):
        return subprocess.run(
            self.cli_argv(*args),
            capture_output=True,
            text=True,
            env={**os.environ, **self.env, **(env_extra or {})},
            timeout=timeout,
        )

    def start_archiver(self, log_path: Path, *extra: str) -> subprocess.Popen:
        """``restorable binlog-archiver DB`` as a service runs it, its log in ``log_path``."""
        log = open(log_path, "ab")
        try:
            return subprocess.Popen(
                self.cli_argv("binlog-archiver", self.database_id, *extra),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
            )
        finally:
            log.close()

    def state(self) -> dict:
        try:
            return json.loads((self.spool_dir / ".restorable-binlog-state.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}


def make_binlog_chain(
    tmp_path: Path,
    *,
    source: ConnectionInfo,
    target: ConnectionInfo,
    s3: ConnectionInfo,
    bucket: str,
    spool_dir: Path,
    database_id: str = "shop",
    heartbeat_interval: int = 1,
    live_interval: int = 1,
    replica_server_id: int = 4000000001,
    extra_connections: dict[str, ConnectionInfo] | None = None,
    retention: dict | None = None,
) -> BinlogChain:
    identity, recipient = generate_identity()
    connections = {
        "src": source,
        "tgt": target,
        "restorable_s3": s3,
        "restorable_age": ConnectionInfo("restorable_age", "generic", password=identity),
        **(extra_connections or {}),
    }
    entry = {
        "id": database_id,
        "engine": "mysql",
        "conn_id": "src",
        "schedule": "0 2 * * *",
        "restore_target_conn_id": "tgt",
        "binlog": {
            "spool_dir": str(spool_dir),
            "heartbeat_interval": heartbeat_interval,
            "live_interval": live_interval,
            "replica_server_id": replica_server_id,
            "replication_conn_id": "repl" if "repl" in connections else "src",
        },
        **({"retention": retention} if retention else {}),
    }
    data = {
        "storage": {"conn_id": "restorable_s3", "bucket": bucket, "prefix": "restorable", "max_attempts": 2},
        "encryption": {"recipients": [recipient], "identity_conn_id": "restorable_age"},
        "compression": {"level": 1, "threads": 2},
        "databases": [entry],
    }
    path = tmp_path / "restorable.yaml"
    path.write_text(yaml.safe_dump(data))
    env = {f"AIRFLOW_CONN_{k.upper()}": connection_uri(v) for k, v in connections.items()}
    services = Services(load_config(path, env), resolve=lambda conn_id: connections[conn_id])
    return BinlogChain(services, path, env, identity, database_id, spool_dir)
