"""Point-in-time recovery's DAGs with dag.test(): base_backup__<db>, monitor__<db>, and the deadline alert.

The module's own PostgreSQL 15 archives into a spool (``spool-archive.sh``); ``restorable
wal-archiver`` runs as a subprocess, as a service would, and is stopped and started by the tests.
A switcher thread closes a WAL segment every half second while the tests want fresh heartbeats in
the bucket (an idle server would otherwise keep its heartbeats in an unfinished segment).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from devstack.pgbench import Pgbench
from devstack.postgres import PostgresServer
from devstack.wal import enable_archiving, switch_segment, wait_for
from restorable.repository.manifest import parse_iso, utcnow
from tests.airflow.conftest import CONN_ENV, connection_json, write_config
from tests.airflow.test_postgres_dags import states, xcom

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

RPO_OBJECTIVE = 4  # seconds: tiny, so a stopped archiver breaches it within the test


@pytest.fixture(scope="module")
def archiving_server(tmp_path_factory) -> Iterator[PostgresServer]:
    from tests.conftest import _reap_if_killed

    server = PostgresServer(tmp_path_factory.mktemp("physpg"), name="pg_phys")
    try:
        server.start()
        _reap_if_killed(server, server.base_dir, sig=signal.SIGQUIT)

        def zero_filled_segments() -> None:
            # New segments are zero-filled, not recycled: a switched segment compresses to almost nothing.
            with open(server.data_dir / "postgresql.conf", "a") as fh:
                fh.write("wal_recycle = off\n")

        server.restart_with(zero_filled_segments)
        enable_archiving(server, server.base_dir / "spool", 1 << 30)
        yield server
    finally:
        server.stop()


class Switcher:
    """Closes a WAL segment every ``interval`` seconds until stopped (heartbeats reach the bucket)."""

    def __init__(self, server: PostgresServer, interval: float = 0.5) -> None:
        self.server = server
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            switch_segment(self.server)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


@dataclass
class PhysicalEnv:
    config_path: Path
    server: PostgresServer
    dags: dict[str, Any]
    alerts: Any
    log_path: Path
    switcher: Switcher
    archiver: subprocess.Popen | None = None
    spool: Path = field(default_factory=Path)

    def services(self):
        from restorable.config import load_config
        from restorable.services import Services

        return Services(load_config(self.config_path))

    def state(self) -> dict:
        from restorable.wal.status import wal_status

        return wal_status(self.services(), "shop")

    def start_archiver(self) -> None:
        log = open(self.log_path, "ab")
        self.archiver = subprocess.Popen(
            [sys.executable, "-m", "restorable.cli", "--config", str(self.config_path), "wal-archiver", "shop"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=os.environ.copy(),
        )
        log.close()
        wait_for(lambda: self.state()["archiver"]["running"], 20, "the archiver running")

    def stop_archiver(self) -> None:
        if self.archiver is not None and self.archiver.poll() is None:
            self.archiver.send_signal(signal.SIGTERM)
            try:
                self.archiver.wait(30)
            except subprocess.TimeoutExpired:
                self.archiver.kill()
                self.archiver.wait(10)
        self.archiver = None

    def rpo(self) -> float | None:
        from restorable.commands.wal_monitor import measure

        return measure(self.services(), "shop")["rpo_seconds"]


def physical_database(spool: Path, **extra: Any) -> dict[str, Any]:
    return {
        "id": "shop",
        "engine": "postgres",
        "conn_id": "shop_pg",
        "schedule": "0 2 * * *",
        "restore_target_conn_id": "drill_pg",
        "physical": {
            "schedule": "0 1 * * *",
            "wal_wait": "30s",
            "wal": {"spool_dir": str(spool), "heartbeat_interval": 1, "spool_max": "1GiB", "spool_alarm": "512MiB"},
            "monitor": {"rpo_objective": f"{RPO_OBJECTIVE}s", "max_queue_files": 1000, "max_base_backup_age": "1h"},
        },
        **extra,
    }


@pytest.fixture
def physical_env(
    airflow_db, age_keys, seaweed, bucket, archiving_server, pg_target_server, alert_receiver, monkeypatch, tmp_path
) -> Iterator[PhysicalEnv]:
    from restorable.airflow.dag_factory import build_dags
    from restorable.connections import ConnectionInfo

    identity, recipient = age_keys
    spool = archiving_server.base_dir / "spool"
    path = write_config(
        tmp_path / "restorable.yaml", bucket=bucket, recipient=recipient, databases=[physical_database(spool)]
    )
    monkeypatch.setenv("RESTORABLE_CONFIG", str(path))  # dag.test() re-parses dags/ with it
    monkeypatch.setenv(CONN_ENV["shop_pg"], connection_json(archiving_server.connection("postgres")))
    monkeypatch.setenv(CONN_ENV["drill_pg"], connection_json(pg_target_server.connection("postgres")))
    monkeypatch.setenv(CONN_ENV["restorable_s3"], connection_json(seaweed.connection("restorable_s3")))
    monkeypatch.setenv(
        CONN_ENV["restorable_age"], connection_json(ConnectionInfo("restorable_age", "generic", password=identity))
    )
    monkeypatch.setenv(CONN_ENV["restorable_alerts"], f'{{"conn_type": "http", "host": "{alert_receiver.url}"}}')
    alert_receiver.clear()
    env = PhysicalEnv(
        path, archiving_server, build_dags(path), alert_receiver, tmp_path / "archiver.log", Switcher(archiving_server)
    )
    env.spool = spool
    try:
        yield env
    finally:
        env.switcher.stop()
        env.stop_archiver()


def test_base_backup_succeeds_with_the_archiver_running_and_its_preflight_names_a_stopped_archiver(physical_env):
    from restorable.repository.manifest import new_backup_id

    env = physical_env
    env.start_archiver()
    run = env.dags["base_backup__shop"].test()
    assert run.state == "success", states(run)
    preflight = xcom(run, "physical_preflight")
    assert preflight["wal_level"] == "replica" and preflight["archive_mode"] == "on"
    assert preflight["archiver"]["pid"] == env.archiver.pid
    summary = xcom(run, "base_backup")
    # The id comes from the DAG run: every try of this run finds the same (committed) base backup.
    assert summary["backup_id"] == new_backup_id(run.logical_date, f"base_backup__shop/{run.run_id}")
    assert summary["kind"] == "physical" and summary["timeline"] == 1
    assert xcom(run, "verify_checksum")["ok"] is True
    assert xcom(run, "publish")["backup_id"] == summary["backup_id"]
    catalog = env.services().catalog("restore")
    assert catalog.read_manifest("shop", summary["backup_id"]).kind == "physical"
    assert env.alerts.received == []

    env.stop_archiver()
    stopped = env.dags["base_backup__shop"].test()
    assert stopped.state == "failed"
    got = states(stopped)
    assert got["physical_preflight"] == "failed" and got["base_backup"] == "upstream_failed", got
    (alert,) = env.alerts.received
    assert alert["task_id"] == "physical_preflight" and alert["database"] == "shop"
    assert "WalArchiverUnhealthy" in alert["error"] and "archiver_down" in alert["error"], alert["error"]
    assert "wal-archiver is not running" in alert["error"]
    assert alert["runbook"] == "docs/runbooks/base-backup-failed.md"
    assert catalog.backup_ids("shop") == [summary["backup_id"]]  # nothing else was started


def _monitor(env) -> tuple[Any, dict]:
    run = env.dags["monitor__shop"].test()
    figures = xcom(run, "monitor_wal") if run.state == "success" else xcom(run, "monitor_wal", key="figures")
    return run, figures


def _breach_alerts(env) -> list[dict]:
    return [a for a in env.alerts.received if a.get("kind") == "breach"]


def test_the_monitor_alerts_once_per_breach_of_the_rpo_and_again_after_it_recovered(physical_env):
    from restorable.commands.base_backup import run_base_backup
    from restorable.commands.wal_monitor import read_state

    env = physical_env
    env.start_archiver()
    env.switcher.start()
    run_base_backup(env.services(), "shop")
    wait_for(lambda: (env.rpo() or 99) < 1.5, 20, "a fresh heartbeat in the bucket")

    healthy, figures = _monitor(env)
    assert healthy.state == "success", (states(healthy), figures)
    assert figures["ok"] and figures["figures"]["rpo_seconds"] < RPO_OBJECTIVE
    assert figures["figures"]["continuity"]["ok"] and figures["figures"]["bucket_timeline"] == 1
    assert figures["figures"]["server_timeline"] == 1 and figures["figures"]["pg_stat_archiver"]["failing"] is False
    assert env.alerts.received == []

    env.stop_archiver()
    stopped_at = time.monotonic()
    before, figures = _monitor(env)  # stopped, but the RPO is still within its objective
    assert before.state == "success", figures
    assert figures["figures"]["archiver_running"] is False and "archiver_down" in figures["figures"]["alarms"]
    assert env.alerts.received == []

    time.sleep(max(0.0, RPO_OBJECTIVE + 1 - (time.monotonic() - stopped_at)))
    breached, figures = _monitor(env)
    assert breached.state == "failed" and states(breached)["monitor_wal"] == "failed"
    assert [b["check"] for b in figures["breaches"]] == ["rpo"], figures["breaches"]
    (alert,) = env.alerts.received  # the breach alert, and no failure alert for the red run
    assert alert["kind"] == "breach" and alert["check"] == "rpo" and alert["database"] == "shop"
    assert alert["objective"] == f"{RPO_OBJECTIVE:.1f}s" and float(alert["measured"].rstrip("s")) > RPO_OBJECTIVE
    assert "NOT running" in alert["message"] and alert["runbook"] == "docs/runbooks/rpo.md"
    assert "shop" in alert["text"] and alert["measured"] in alert["text"]
    assert read_state(env.services(), "shop")["open_breaches"]["rpo"]["alerted"] is True

    still, figures = _monitor(env)  # still broken: no second alert
    assert still.state == "failed" and figures["alerting"] == []
    assert len(env.alerts.received) == 1

    env.start_archiver()
    wait_for(lambda: (env.rpo() or 99) < 1.5, 20, "the archiver catching up")
    recovered, figures = _monitor(env)
    assert recovered.state == "success", figures
    assert figures["cleared"] == ["rpo"] and len(env.alerts.received) == 1
    assert read_state(env.services(), "shop")["open_breaches"] == {}

    env.stop_archiver()
    time.sleep(RPO_OBJECTIVE + 1)
    again, figures = _monitor(env)
    assert again.state == "failed"
    assert len(_breach_alerts(env)) == 2 and len(env.alerts.received) == 2
    assert env.alerts.received[1]["check"] == "rpo"


def test_a_backup_held_past_its_deadline_alerts_through_the_notifier(restorable_env, age_keys, tmp_path, monkeypatch):
    """dag.test() creates the run's Deadline row and prunes it when the run ends in time, but only the
    scheduler's loop marks a deadline missed and only the triggerer runs its callback. This test does
    those two steps as they do (``Deadline.handle_miss``, then ``CallbackTrigger`` on the queued data)."""
    import psycopg
    from airflow.models.deadline import Deadline
    from airflow.triggers.callback import CallbackTrigger
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from restorable.airflow.dag_factory import build_dags

    env = restorable_env
    # A database id of its own: dag.test() re-syncs the DAG folder's bundle, and a backup__shop that
    # earlier tests registered there (with the default 2 h deadline) must not stand in for this one.
    shop = {
        "id": "held_shop",
        "engine": "postgres",
        "conn_id": "shop_pg",
        "schedule": "0 2 * * *",
        "restore_target_conn_id": "drill_pg",
    }

    def dags_with(deadline: str) -> dict[str, Any]:
        path = write_config(
            tmp_path / "restorable.yaml",
            bucket=env.bucket,
            recipient=age_keys[1],
            databases=[{**shop, "backup_deadline": deadline}],
        )
        monkeypatch.setenv("RESTORABLE_CONFIG", str(path))
        return build_dags(path)

    def deadlines_of(run) -> list[Deadline]:
        with create_session() as session:
            rows = session.scalars(select(Deadline).where(Deadline.dagrun_id == run.id)).all()
            session.expunge_all()
            return rows

    dags = dags_with("2s")
    (alert_def,) = dags["backup__held_shop"].deadline
    assert alert_def.interval == timedelta(seconds=2) and alert_def.callback.kwargs["database_id"] == "held_shop"
    source = env.source
    lock = psycopg.connect(
        host=source.host, port=source.port, user=source.login, password=source.password, dbname=source.schema
    )
    table = lock.execute(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1 LIMIT 1"
    ).fetchone()[0]
    lock.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # pg_dump waits on it
    release = threading.Timer(4, lambda: (lock.rollback(), lock.close()))
    release.start()
    try:
        held = dags["backup__held_shop"].test()
    finally:
        release.join()
    assert held.state == "success", states(held)
    assert held.end_date - held.logical_date > timedelta(seconds=2)
    (deadline,) = deadlines_of(held)  # ended after its deadline: Airflow kept it for the scheduler
    assert deadline.deadline_time == held.logical_date + timedelta(seconds=2) and deadline.missed is False
    assert env.alerts.received == []  # dag.test() itself never fires a deadline

    with create_session() as session:  # the scheduler's step
        row = session.get(Deadline, deadline.id)
        row.handle_miss(session)
        data = dict(row.callback.data)
    events = []

    async def trigger() -> None:  # the triggerer's step
        async for event in CallbackTrigger(callback_path=data["path"], callback_kwargs=data["kwargs"]).run():
            events.append(event.payload)

    asyncio.run(trigger())
    assert events[-1]["state"] == "success" and events[-1]["body"] is True, events
    (alert,) = env.alerts.received
    assert alert["kind"] == "deadline" and alert["database"] == "held_shop" and alert["dag_id"] == "backup__held_shop"
    assert alert["run_id"] == held.run_id and alert["allowed"] == "2s"
    assert alert["scheduled"].startswith(held.logical_date.strftime("%Y-%m-%dT%H:%M:%S"))
    assert alert["deadline"].startswith(str(deadline.deadline_time)[:19])
    assert alert["runbook"] == "docs/runbooks/backup-deadline.md" and "has not finished" in alert["text"]


def test_base_backups_then_pitr_drills_under_pgbench_prove_the_heartbeats_and_a_backfill_drills_its_date(
    physical_env,
):
    env = physical_env
    env.start_archiver()
    env.switcher.start()
    with Pgbench(env.server) as pgbench:
        first = env.dags["base_backup__shop"].test()
        assert first.state == "success", states(first)
        first_id = xcom(first, "base_backup")["backup_id"]
        wait_for(lambda: (env.rpo() or 99) < 1.5, 20, "fresh heartbeats in the bucket after the first base backup")
        time.sleep(2)  # archived beats after the first base backup, before the date drilled below
        dated = utcnow()
        time.sleep(1.5)
        second = env.dags["base_backup__shop"].test()
        assert second.state == "success", states(second)
        second_id = xcom(second, "base_backup")["backup_id"]
        wait_for(lambda: (env.rpo() or 99) < 1.5, 20, "fresh heartbeats in the bucket after the second base backup")
        time.sleep(3)  # a few more archived beats to drill between
        drill = env.dags["pitr_drill__shop"].test()
        # A run for a date further back than the RPO objective: a backfill of that date.
        wait_for(lambda: (utcnow() - dated).total_seconds() > RPO_OBJECTIVE + 1, 20, "the date to age")
        backfilled = env.dags["pitr_drill__shop"].test(logical_date=dated)
        assert pgbench.transactions() > 100, "pgbench was not committing throughout"
    assert drill.state == "success", states(drill)
    result = xcom(drill, "pitr_drill")
    assert result["ok"] and result["base_backup"] == second_id
    assert result["heartbeat_after"]["id"] == result["heartbeat_before"]["id"] + 1
    assert result["heartbeats_checked"] >= 1 and result["rto_seconds"] > 0
    evidence = env.services().store("restore").get_json(result["evidence_key"])
    assert evidence["ok"] is True and evidence["target"] == result["target"]
    assert evidence["rpo_seconds_at_drill"] < 60 and evidence["wal_files_replayed"] >= 1

    assert backfilled.state == "success", states(backfilled)
    past = xcom(backfilled, "pitr_drill")
    assert past["ok"] and past["base_backup"] == first_id, "the backfill did not drill the base backup of its date"
    assert parse_iso(past["target"]) <= dated
    assert env.alerts.received == []


def test_the_pitr_drill_fails_naming_a_gap_a_foreign_timeline_and_a_stopped_archiver(physical_env, monkeypatch):
    import glob
    import tempfile

    # The drills' scratch directories go to a temp dir of this test's own (the postgres user must
    # enter it), so "cleaned up" cannot see another test's drill running at the same time.
    scratch_root = Path(tempfile.mkdtemp(prefix="restorable-test-drills-"))
    scratch_root.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))

    from restorable.commands.base_backup import run_base_backup
    from restorable.repository.layout import Layout
    from restorable.wal.continuity import archived_names
    from restorable.wal.objects import encode_wal_file, wal_object_metadata

    env = physical_env
    env.start_archiver()
    env.switcher.start()
    base = run_base_backup(env.services(), "shop")
    wait_for(lambda: (env.rpo() or 99) < 1.5, 20, "fresh heartbeats in the bucket")
    time.sleep(2)
    services = env.services()
    store, layout = services.store("backup"), Layout("restorable")

    def failed_drill() -> tuple[list[str], list[dict]]:
        run = env.dags["pitr_drill__shop"].test()
        assert run.state == "failed", states(run)
        drills = [
            r for r in services.catalog("restore").verifications("shop", base.backup_id) if r["kind"] == "pitr_drill"
        ]
        assert drills and drills[-1]["ok"] is False
        assert glob.glob(f"{scratch_root}/restorable-pitr-shop-*") == []  # cleaned up
        return drills[-1]["problems"], list(env.alerts.received)

    segments = sorted(n for n in archived_names(store, layout, "shop") if len(n) == 24)
    hidden = next(n for n in segments if base.wal["stop_segment"] < n < segments[-2])
    marker = store.delete_object(layout.wal_key("shop", hidden))
    try:
        problems, alerts = failed_drill()
    finally:
        store.delete_object(layout.wal_key("shop", hidden), marker.get("VersionId"))
    assert any(f"segment {hidden} is missing" in p for p in problems), problems
    assert alerts and alerts[-1]["task_id"] == "pitr_drill"

    history = encode_wal_file(b"1\t0/9000000\tpromoted by a drill\n", recipients=services.config.encryption.recipients)
    key = layout.wal_key("shop", "00000002.history")
    store.put_bytes(key, history.body, metadata=wal_object_metadata(history.plain_sha256, history.plain_size))
    try:
        problems, _ = failed_drill()
    finally:
        store.delete_all_versions(key)
    assert any("newest timeline is 2, the server is on 1" in p for p in problems), problems

    env.switcher.stop()
    env.stop_archiver()
    time.sleep(RPO_OBJECTIVE + 2)
    problems, _ = failed_drill()
    assert any("RPO at drill time" in p and "past the objective" in p for p in problems), problems


def test_restore_to_point_from_the_ui_plans_restores_paused_at_the_target_and_refuses_a_full_directory(physical_env):
    from restorable.commands.base_backup import run_base_backup
    from restorable.physical.server import remove_restored, stop_server

    env = physical_env
    env.start_archiver()  # no switcher: nothing but heartbeats writes, so the copy matches the manifest
    base = run_base_backup(env.services(), "shop")
    target_dir = env.server.base_dir / "ui_restore"
    conf = {"database": "shop", "immediate": True, "target_dir": str(target_dir), "start": True}
    run = env.dags["restore_to_point"].test(run_conf=conf)
    try:
        assert run.state == "success", states(run)
        got = states(run)
        assert got["approve_promotion"] == "skipped", got  # not promoted: nothing to approve
        plan = xcom(run, "plan_restore", key="plan")
        assert plan["base_backup"] == base.backup_id and plan["target"]["kind"] == "immediate"
        report = xcom(run, "restore_to_point")
        assert report["pg_verifybackup"] == "passed" and report["recovery"]["paused"] is True
        assert report["comparison"]["ok"], report["comparison"]["differences"]
    finally:
        stop_server(target_dir, base)
    refused = env.dags["restore_to_point"].test(run_conf=conf)  # the directory now holds the copy
    try:
        assert refused.state == "failed" and states(refused)["plan_restore"] == "failed"
        assert (target_dir / "PG_VERSION").exists()  # untouched
    finally:
        remove_restored(target_dir)
