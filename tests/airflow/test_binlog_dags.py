"""MariaDB point-in-time recovery's DAGs with dag.test(): monitor__<db> and pitr_drill__<db> on binlogs.

The module's own MariaDB (binlog on) is archived by ``restorable binlog-archiver`` as a subprocess,
as a service would run it; a writer commits throughout the drill. The monitor passes while the
archiver runs and alerts the RPO breach once it is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.airflow.conftest import CONN_ENV, connection_json, write_config
from tests.airflow.test_postgres_dags import states, xcom
from tests.integration.binlog.conftest import mariadb_with_binlog, wait_for

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

RPO_OBJECTIVE = 4


@pytest.fixture(scope="module")
def dag_binlog_mariadb(tmp_path_factory):
    yield from mariadb_with_binlog(tmp_path_factory)


def test_binlog_monitor_and_pitr_drill_under_load(
    airflow_db,
    age_keys,
    seaweed,
    bucket,
    dag_binlog_mariadb,
    mariadb_target_server,
    alert_receiver,
    monkeypatch,
    tmp_path,
):
    from restorable.airflow.dag_factory import build_dags
    from restorable.commands.binlog_monitor import measure
    from restorable.config import load_config
    from restorable.connections import ConnectionInfo, resolve_connection
    from restorable.services import Services

    identity, recipient = age_keys
    server = dag_binlog_mariadb
    server.execute("CREATE DATABASE IF NOT EXISTS shopbin")
    server.execute("CREATE TABLE IF NOT EXISTS shopbin.items (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    spool = tmp_path / "spool"
    spool.mkdir()
    database = {
        "id": "shopbin",
        "engine": "mysql",
        "conn_id": "shopdb_mysql",
        "schedule": "30 2 * * *",
        "restore_target_conn_id": "drill_mysql",
        "binlog": {
            "spool_dir": str(spool),
            "heartbeat_interval": 1,
            "live_interval": 1,
            "monitor": {"rpo_objective": f"{RPO_OBJECTIVE}s", "max_queue_files": 100, "max_base_backup_age": "1h"},
        },
    }
    path = write_config(tmp_path / "restorable.yaml", bucket=bucket, recipient=recipient, databases=[database])
    monkeypatch.setenv("RESTORABLE_CONFIG", str(path))
    monkeypatch.setenv(CONN_ENV["shopdb_mysql"], connection_json(server.connection("shopbin")))
    monkeypatch.setenv(CONN_ENV["drill_mysql"], connection_json(mariadb_target_server.connection("mysql")))
    monkeypatch.setenv(CONN_ENV["restorable_s3"], connection_json(seaweed.connection("restorable_s3")))
    monkeypatch.setenv(
        CONN_ENV["restorable_age"], connection_json(ConnectionInfo("restorable_age", "generic", password=identity))
    )
    monkeypatch.setenv(CONN_ENV["restorable_alerts"], f'{{"conn_type": "http", "host": "{alert_receiver.url}"}}')
    alert_receiver.clear()
    dags = build_dags(path)
    assert {"monitor__shopbin", "pitr_drill__shopbin"} <= set(dags)
    services = Services(load_config(path), resolve=resolve_connection)
    cli = [sys.executable, "-m", "restorable.cli", "--config", str(path)]
    backup = subprocess.run([*cli, "backup", "shopbin"], capture_output=True, text=True, env=os.environ.copy())
    assert backup.returncode == 0, backup.stderr[-2000:]
    log = open(tmp_path / "archiver.log", "ab")
    archiver = subprocess.Popen(
        [*cli, "binlog-archiver", "shopbin"], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
    )
    log.close()
    stop = threading.Event()

    def write() -> None:
        conn = server.connect("shopbin")
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("INSERT INTO items (v) VALUES (1)")
                time.sleep(0.01)
        conn.close()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        wait_for(lambda: (measure(services, "shopbin")["rpo_seconds"] or 99) < 2.5, 30, "fresh binlogs archived")
        # Rotate once: the drill's range then spans a closed file (the one deleted below) and the live one.
        from restorable.repository.layout import Layout

        manifest = services.catalog("restore").pick("shopbin", kind="logical").manifest
        first = manifest.metadata.position["binlog_file"]
        key = Layout("restorable").binlog_key("shopbin", first)
        server.execute("FLUSH BINARY LOGS")
        wait_for(lambda: services.store("backup").exists(key), 30, f"{first} archived as a closed file")
        time.sleep(3)  # a few archived beats after the backup to drill between
        monitor = dags["monitor__shopbin"].test()
        assert monitor.state == "success", states(monitor)
        assert xcom(monitor, "monitor_binlog")["figures"]["rpo_seconds"] < RPO_OBJECTIVE
        drill = dags["pitr_drill__shopbin"].test()
        assert drill.state == "success", states(drill)
        result = xcom(drill, "pitr_drill")
        assert result["ok"] and result["heartbeats_checked"] >= 1
        evidence = services.store("restore").get_json(result["evidence_key"])
        assert evidence["kind"] == "pitr_drill" and evidence["ok"] and evidence["engine"] == "mysql"
        assert not mariadb_target_server.query("SHOW DATABASES LIKE 'pitr\\_shopbin\\_%'")
        assert alert_receiver.received == []

        # A binlog in the drill's range deleted from the bucket: the drill DAG fails, naming it,
        # drops its scratch database, records the failure and alerts.
        store = services.store("backup")
        original, body = store.head(key), store.get_bytes(key)
        store.delete_object(key)  # a delete marker: the archived version is not what a restore sees
        try:
            broken = dags["pitr_drill__shopbin"].test()
            assert broken.state == "failed", states(broken)
            assert not mariadb_target_server.query("SHOW DATABASES LIKE 'pitr\\_shopbin\\_%'")
            records = services.catalog("restore").verifications("shopbin", manifest.backup_id)
            failed = [r for r in records if r["kind"] == "pitr_drill" and not r["ok"]]
            assert failed and any(first in p for p in failed[-1]["problems"]), failed
            (alert,) = alert_receiver.received
            assert alert["dag_id"] == "pitr_drill__shopbin" and first in alert["error"], alert
            alert_receiver.clear()
        finally:
            store.delete_all_versions(key)
            store.put_bytes(key, body, metadata=original["Metadata"])
    finally:
        stop.set()
        writer.join(10)
        archiver.send_signal(signal.SIGTERM)
        assert archiver.wait(30) == 143
    time.sleep(RPO_OBJECTIVE + 2)
    breached = dags["monitor__shopbin"].test()
    assert breached.state == "failed"
    (alert,) = alert_receiver.received
    assert alert["check"] == "rpo" and "NOT running" in alert["text"], alert
