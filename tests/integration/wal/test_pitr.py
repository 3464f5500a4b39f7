"""Physical base backups and point-in-time restores, exact against commit timestamps (issue 11).

The module's own server archives into a spool with ``track_commit_timestamp = on``, so every row's
commit time is known on the source. A writer commits rows throughout (one per transaction, with
markers at known moments) while pgbench runs TPC-B beside it; a restore to a time T must hold
exactly the rows (and pgbench transactions) committed at or before T, a restore to an LSN or a
restore point exactly those before it.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from devstack.pgbench import Pgbench
from devstack.postgres import PostgresServer
from devstack.wal import (
    enable_archiving,
    make_wal_chain,
    python_for_postgres,
    read_state,
    stop_archiver,
    switch_segment,
    wait_for,
)
from restorable.repository.layout import Layout
from restorable.repository.manifest import parse_iso
from restorable.wal.objects import encode_wal_file, wal_object_metadata

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pitr_pg(tmp_path_factory):
    from tests.conftest import _reap_if_killed

    server = PostgresServer(tmp_path_factory.mktemp("pitrpg"), name="pg_pitr")
    try:
        server.start()
        _reap_if_killed(server, server.base_dir, sig=signal.SIGQUIT)

        def commit_timestamps() -> None:
            with open(server.data_dir / "postgresql.conf", "a") as fh:
                fh.write("track_commit_timestamp = on\n")

        server.restart_with(commit_timestamps)
        enable_archiving(server, server.base_dir / "spool", 1 << 30)
        python_for_postgres()  # the restored servers' restore_command runs this checkout as postgres
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chain(tmp_path_factory, pitr_pg, seaweed):
    bucket = f"t-pitr-{uuid.uuid4().hex[:10]}"
    seaweed.create_bucket(bucket, object_lock=True, versioning=True)
    return make_wal_chain(
        tmp_path_factory.mktemp("pitrchain"),
        source=pitr_pg.connection("postgres"),
        s3=seaweed.connection(),
        bucket=bucket,
        spool_dir=pitr_pg.base_dir / "spool",
        spool_max=str(1 << 30),
        spool_alarm="512MiB",
    )


@pytest.fixture(scope="module")
def archiver(chain, tmp_path_factory):
    log = tmp_path_factory.mktemp("pitrarchiver") / "archiver.log"
    proc = chain.start_archiver(log)
    wait_for(lambda: read_state(chain).get("running"), 20, "the archiver's first state file")
    yield proc, log
    stop_archiver(proc)


class Writer:
    """Commits one row per transaction into ``load`` until stopped (the load under which PITR must be exact)."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.stop = threading.Event()
        self.rows = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.server.connect("postgres") as pg:
            pg.autocommit = True
            while not self.stop.is_set():
                pg.execute("INSERT INTO load (payload) VALUES (repeat('x', 200))")
                self.rows += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


def _committed(server: PostgresServer, table: str, at=None, lsn_ids=None) -> set[int]:
    with server.connect("postgres") as pg:
        if at is not None:
            rows = pg.execute(f"SELECT id FROM {table} WHERE pg_xact_commit_timestamp(xmin) <= %s", (at,))
        else:
            rows = pg.execute(f"SELECT id FROM {table}")
        return {r[0] for r in rows}


def _pgbench_history(server_or_port, password: str, at=None) -> list[tuple]:
    """pgbench_history's rows (a multiset, sorted), on the source those committed by ``at``."""
    port = server_or_port if isinstance(server_or_port, int) else server_or_port.port
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres") as pg:
        query = "SELECT tid, bid, aid, delta, mtime FROM pgbench_history"
        rows = pg.execute(query + " WHERE pg_xact_commit_timestamp(xmin) <= %s", (at,)) if at else pg.execute(query)
        return sorted(rows)


def _balances_match_history(port: int, password: str) -> bool:
    """TPC-B adds each history row's delta to an account in the same transaction: the sums agree
    on any consistent state, and differ on a copy that holds half a transaction."""
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres") as pg:
        accounts, history = pg.execute(
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT coalesce(sum(delta), 0) FROM pgbench_history)"
        ).fetchone()
        return accounts == history


def _restored(port: int, server: PostgresServer, table: str) -> set[int]:
    with psycopg.connect(
        host="127.0.0.1", port=port, user="postgres", password=server.password, dbname="postgres"
    ) as pg:
        return {r[0] for r in pg.execute(f"SELECT id FROM {table}")}


def _restore_dir(server: PostgresServer, name: str):
    """Under the server's base directory: the postgres user can enter it (pytest's tmp_path it cannot)."""
    return server.base_dir / "restores" / name


def _stop_restored(target_dir) -> None:
    import subprocess

    from devstack.postgres import postgres_bindir

    subprocess.run(
        ["runuser", "-u", "postgres", "--", str(postgres_bindir() / "pg_ctl"), "stop", "-D", str(target_dir)]
        + ["-m", "immediate", "-w"],
        capture_output=True,
    )
    shutil.rmtree(target_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def history(chain, archiver, pitr_pg):
    """A base backup under load, then markers at known moments, all archived."""
    with pitr_pg.connect("postgres") as pg:
        pg.execute("CREATE TABLE load (id bigserial PRIMARY KEY, payload text)")
        pg.execute("CREATE TABLE marks (id int PRIMARY KEY, lsn_after pg_lsn)")
    pgbench = Pgbench(pitr_pg, clients=1)
    with Writer(pitr_pg) as writer, pgbench:
        wait_for(lambda: writer.rows > 50 and pgbench.transactions() > 20, 20, "the writer and pgbench under way")
        done = chain.run_cli("base-backup", chain.database_id, "--json", timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        base = json.loads(done.stdout)
        marks = {}
        with pitr_pg.connect("postgres") as pg:
            pg.autocommit = True
            for i in range(1, 9):
                time.sleep(0.3)
                pg.execute("INSERT INTO marks (id) VALUES (%s)", (i,))
                at, lsn = pg.execute(
                    "SELECT pg_xact_commit_timestamp(xmin), pg_current_wal_insert_lsn()::text FROM marks WHERE id = %s",
                    (i,),
                ).fetchone()
                marks[i] = {"at": at, "lsn": lsn}
                if i == 5:
                    pg.execute("SELECT pg_create_restore_point('after_mark_5')")
        time.sleep(0.3)
    time.sleep(1.5)  # a heartbeat after the last mark
    last = switch_segment(pitr_pg)
    store, layout = chain.services.store("backup"), Layout("restorable")
    wait_for(lambda: store.exists(layout.wal_key(chain.database_id, last)), 60, f"{last} in the bucket")
    return {"base": base, "marks": marks}


def test_a_base_backup_under_load_commits_with_its_wal_range_and_postgres_own_manifest(chain, history):
    base = history["base"]
    assert base["kind"] == "physical" and base["verified"] is True
    manifest = chain.services.catalog("restore").read_manifest(chain.database_id, base["backup_id"])
    assert [o.role for o in manifest.objects] == ["base", "backup_manifest"]
    assert manifest.physical["system_identifier"].isdigit() and manifest.physical["timeline"] == 1
    assert manifest.wal["start_segment"] <= manifest.wal["stop_segment"]
    store, layout = chain.services.store("backup"), Layout("restorable")
    for name in (manifest.wal["start_segment"], manifest.wal["stop_segment"], manifest.physical["backup_label_file"]):
        assert store.exists(layout.wal_key(chain.database_id, name)), name
    verify = chain.run_cli("verify-wal", chain.database_id, "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["gaps"] == []


def test_restore_to_a_time_between_two_commits_holds_exactly_the_rows_committed_by_then(chain, history, pitr_pg):
    marks = history["marks"]
    # Midway between marks 3 and 4: the load's rows around it commit a few ms apart.
    target = marks[3]["at"] + (marks[4]["at"] - marks[3]["at"]) / 2
    target_dir = _restore_dir(pitr_pg, "at_time")
    done = chain.run_cli(
        "restore",
        chain.database_id,
        "--target-dir",
        str(target_dir),
        "--time",
        target.isoformat(),
        "--start",
        "--json",
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads(done.stdout)
    try:
        assert report["pg_verifybackup"] == "passed"
        assert report["settings"]["recovery_target_timeline"] == "1"
        assert report["settings"]["archive_mode"] == "off"
        assert report["recovery"]["paused"] is True
        port = report["port"]
        assert _restored(port, pitr_pg, "marks") == {1, 2, 3}
        expected = _committed(pitr_pg, "load", at=target)
        assert len(expected) > 50
        assert _restored(port, pitr_pg, "load") == expected
        # pgbench committed throughout: exactly its transactions committed by T are there, whole.
        tpcb = _pgbench_history(pitr_pg, pitr_pg.password, at=target)
        assert len(tpcb) > 10
        assert _pgbench_history(port, pitr_pg.password) == tpcb
        assert _balances_match_history(port, pitr_pg.password)
        assert parse_iso(report["recovery"]["last_replayed_commit"]) <= target
    finally:
        _stop_restored(target_dir)


def test_restore_to_an_lsn_and_to_a_restore_point(chain, history, pitr_pg):
    marks = history["marks"]
    # A drill elsewhere promoted a copy and its history file reached the bucket: a restore that
    # followed timeline "latest" would go looking for timeline 2; this one stays on the backup's.
    store, layout = chain.services.store("backup"), Layout("restorable")
    history_file = "00000002.history"
    encoded = encode_wal_file(
        b"1\t0/3000000\tno recovery target specified\n", recipients=chain.services.config.encryption.recipients
    )
    store.put_bytes(
        layout.wal_key(chain.database_id, history_file),
        encoded.body,
        metadata=wal_object_metadata(encoded.plain_sha256, encoded.plain_size),
    )
    by_lsn = _restore_dir(pitr_pg, "at_lsn")
    done = chain.run_cli(
        "restore",
        chain.database_id,
        "--target-dir",
        str(by_lsn),
        "--lsn",
        marks[6]["lsn"],
        "--start",
        "--json",
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    store.delete_all_versions(layout.wal_key(chain.database_id, history_file))
    try:
        report = json.loads(done.stdout)
        assert report["settings"]["recovery_target_timeline"] == "1"
        assert _restored(report["port"], pitr_pg, "marks") == {1, 2, 3, 4, 5, 6}
    finally:
        _stop_restored(by_lsn)
    by_name = _restore_dir(pitr_pg, "at_name")
    done = chain.run_cli(
        "restore",
        chain.database_id,
        "--target-dir",
        str(by_name),
        "--name",
        "after_mark_5",
        "--start",
        "--json",
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    try:
        assert _restored(json.loads(done.stdout)["port"], pitr_pg, "marks") == {1, 2, 3, 4, 5}
    finally:
        _stop_restored(by_name)


def test_targets_no_restore_can_reach_are_refused_before_anything_is_written(chain, history, tmp_path):
    manifest = chain.services.catalog("restore").read_manifest(chain.database_id, history["base"]["backup_id"])
    before_base = parse_iso(manifest.physical["stop_time"]) - timedelta(seconds=5)
    beyond = history["marks"][8]["at"] + timedelta(hours=1)
    cases = {
        "before the oldest base backup": (["--time", before_base.isoformat()], 7, "before the oldest base backup"),
        "past the archive": (["--time", beyond.isoformat()], 7, "past the newest archived commit"),
        "a time without a zone": (["--time", "2026-12-03T10:00:00"], 2, "no UTC offset"),
        "two targets": (["--lsn", "0/1", "--name", "x"], 2, "one recovery target"),
    }
    for case, (args, code, text) in cases.items():
        target_dir = tmp_path / case.replace(" ", "_")
        done = chain.run_cli("restore", chain.database_id, "--target-dir", str(target_dir), *args)
        assert done.returncode == code, (case, done.stderr[-2000:])
        assert text in done.stderr and "Traceback" not in done.stderr, (case, done.stderr[-2000:])
        assert not target_dir.exists(), case
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    done = chain.run_cli("restore", chain.database_id, "--target-dir", str(occupied), "--immediate")
    assert done.returncode == 7 and "is not empty" in done.stderr
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]


def test_a_segment_deleted_from_the_bucket_is_named_by_verify_wal_and_refuses_a_restore_across_it(
    chain, history, pitr_pg
):
    """Last in the module: it hides a segment (a delete marker), then brings it back."""
    store, layout = chain.services.store("backup"), Layout("restorable")
    manifest = chain.services.catalog("restore").read_manifest(chain.database_id, history["base"]["backup_id"])
    stop = manifest.wal["stop_segment"]
    after = f"{stop[:16]}{int(stop[16:], 16) + 1:08X}"
    key = layout.wal_key(chain.database_id, after)
    later = [switch_segment(pitr_pg) for _ in range(2)]  # so that `after` sits inside the archive
    wait_for(lambda: all(store.exists(layout.wal_key(chain.database_id, n)) for n in later), 60, f"{later} archived")
    assert store.exists(key), after
    marker = store.delete_object(key)
    try:
        verify = chain.run_cli("verify-wal", chain.database_id, "--json")
        assert verify.returncode == 6, verify.stdout + verify.stderr
        assert after in verify.stdout
        target_dir = _restore_dir(pitr_pg, "across_the_gap")
        done = chain.run_cli(
            "restore",
            chain.database_id,
            "--target-dir",
            str(target_dir),
            "--time",
            history["marks"][8]["at"].isoformat(),
        )
        assert done.returncode == 7, done.stderr[-2000:]
        assert f"segment {after} is missing" in done.stderr
        assert not target_dir.exists()
    finally:
        store.delete_object(key, marker.get("VersionId"))


def test_a_quiet_base_backup_restored_to_its_end_matches_its_manifest_and_an_idle_moment_is_reachable(
    chain, history, pitr_pg
):
    """After the others: this base backup is the newest. No writer runs: the counts are exact, and
    only the archiver's heartbeats commit after the chosen moment."""
    done = chain.run_cli("base-backup", chain.database_id, "--json", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    base_id = json.loads(done.stdout)["backup_id"]
    deep = chain.run_cli("verify", chain.database_id, base_id, "--deep", "--json", timeout=300)
    assert deep.returncode == 0, deep.stdout + deep.stderr[-2000:]
    assert json.loads(deep.stdout)["extracted"]["pg_verifybackup"] == "passed"

    at_end = _restore_dir(pitr_pg, "at_base_end")
    done = chain.run_cli(
        "restore", chain.database_id, "--target-dir", str(at_end), "--immediate", "--start", "--json", timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    try:
        comparison = json.loads(done.stdout)["comparison"]
        assert comparison["ok"], comparison["differences"]
        assert comparison["tables"] >= 2 and comparison["rows"] > 50
    finally:
        _stop_restored(at_end)

    idle_moment = datetime.now(UTC)
    time.sleep(3)  # nothing but heartbeats commits now
    last = switch_segment(pitr_pg)
    store, layout = chain.services.store("backup"), Layout("restorable")
    wait_for(lambda: store.exists(layout.wal_key(chain.database_id, last)), 60, f"{last} in the bucket")
    idle = _restore_dir(pitr_pg, "idle_moment")
    done = chain.run_cli(
        "restore",
        chain.database_id,
        "--target-dir",
        str(idle),
        "--time",
        idle_moment.isoformat(),
        "--start",
        "--json",
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    try:
        report = json.loads(done.stdout)
        assert report["base_backup"] == base_id and report["recovery"]["paused"] is True
        assert _restored(report["port"], pitr_pg, "marks") == set(range(1, 9))
    finally:
        _stop_restored(idle)


def test_a_transient_fetch_error_stops_recovery_loudly_instead_of_ending_it_early(chain, history, pitr_pg):
    """The bucket unreachable while the copy replays: wal-fetch exits 126, PostgreSQL stops with FATAL
    and never comes up promoted at some early point (an exit 1 would have ended recovery there)."""
    import os
    import subprocess

    from devstack.chain import connection_uri
    from devstack.ports import free_port
    from devstack.postgres import postgres_bindir

    target_dir = _restore_dir(pitr_pg, "unreachable_bucket")
    marks = history["marks"]
    done = chain.run_cli(
        "restore", chain.database_id, "--target-dir", str(target_dir), "--time", marks[7]["at"].isoformat(), "--json"
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert "recovery" not in report  # extracted and configured, not started
    s3 = chain.services.resolve("restorable_s3")
    dead = replace(s3, extra={**s3.extra, "endpoint_url": f"http://127.0.0.1:{free_port()}"})
    env = {**os.environ, **chain.env, "AIRFLOW_CONN_RESTORABLE_S3": connection_uri(dead)}
    log = target_dir / "restorable-recovery.log"
    try:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(postgres_bindir() / "pg_ctl"), "start", "-D", str(target_dir)]
            + ["-l", str(log), "-w", "-t", "60"],
            env=env,
            capture_output=True,
            timeout=120,
        )
        text = wait_for(lambda: "FATAL" in log.read_text() and log.read_text(), 60, "recovery to stop")
        assert "restore_command" in text or "could not restore file" in text, text[-2000:]
        assert "database system is ready to accept connections" not in text, text[-2000:]
        assert "selected new timeline ID" not in text, text[-2000:]
    finally:
        _stop_restored(target_dir)


def test_a_copy_that_lost_its_recovery_signal_is_refused_not_reported_as_the_moment_asked(
    chain, history, pitr_pg, monkeypatch
):
    """Without recovery.signal PostgreSQL ignores restore_command and every recovery_target setting:
    it does crash recovery on what pg_wal holds and, given WAL there, comes up read-write wherever
    that ends, saying nothing. Here the file is removed after Restorable wrote it (as a tool that
    "cleans" a directory would): the restore must refuse to start the copy, name the file, and
    remove what it extracted."""
    from restorable.exceptions import IntegrityError
    from restorable.physical import restore as physical_restore
    from restorable.physical.targets import parse_target

    for name, value in chain.env.items():
        monkeypatch.setenv(name, value)
    real_write = physical_restore.write_recovery_config

    def write_then_lose_the_signal(target_dir, settings, config_source):
        real_write(target_dir, settings, config_source)
        (target_dir / "recovery.signal").unlink()

    monkeypatch.setattr(physical_restore, "write_recovery_config", write_then_lose_the_signal)
    marks = history["marks"]
    target_dir = _restore_dir(pitr_pg, "no_recovery_signal")
    request = physical_restore.PhysicalRestore(
        database_id=chain.database_id,
        target=parse_target(time=marks[4]["at"].isoformat(), lsn=None, xid=None, name=None, immediate=False),
        target_dir=target_dir,
        start=True,
        timeout=120,
    )
    try:
        with pytest.raises(IntegrityError, match="recovery.signal is missing") as refused:
            physical_restore.restore_to_point(chain.services, request, identity=chain.services.identity())
        assert "was not started" in refused.value.message and "never start this copy" in refused.value.hint
        assert not (target_dir / "postmaster.pid").exists()
        assert not target_dir.exists() or not any(target_dir.iterdir()), "the unusable copy was left behind"
    finally:
        _stop_restored(target_dir)


def test_the_pitr_drill_proves_the_heartbeats_up_to_its_moment_and_records_evidence(chain, history, pitr_pg):
    """Under load, after the other tests: the newest base backup, beats after it archived."""
    with Writer(pitr_pg):
        time.sleep(4)  # a few heartbeats (every second here) after the newest base backup
    last = switch_segment(pitr_pg)
    store, layout = chain.services.store("backup"), Layout("restorable")
    wait_for(lambda: store.exists(layout.wal_key(chain.database_id, last)), 60, f"{last} in the bucket")
    work = _restore_dir(pitr_pg, "drills")
    work.mkdir(parents=True, exist_ok=True)
    done = chain.run_cli("pitr-drill", chain.database_id, "--work-dir", str(work), "--json", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["ok"] and result["problems"] == []
    assert result["heartbeats_checked"] > 0 and result["heartbeat_after"]["id"] == result["heartbeat_before"]["id"] + 1
    assert parse_iso(result["last_replayed_commit"]) <= parse_iso(result["target"])
    assert result["rto_seconds"] > 0 and result["wal_files_replayed"] >= 1
    evidence = store.get_json(result["evidence_key"])
    assert evidence["ok"] is True and evidence["target"] == result["target"]
    # GX against the newest backup's facts (no logical backup here: the base backup's own), reported.
    validation = evidence["validation"]
    assert validation["reference_backup"] and "error" not in validation, validation
    assert validation["found_rows"] > 0
    assert list(work.iterdir()) == []  # the throwaway copy is gone

    # A backfilled run of a date before the newest base backup drills the base backup current then.
    catalog = chain.services.catalog("restore")
    manifests = [catalog.read_manifest(chain.database_id, b) for b in catalog.backup_ids(chain.database_id)]
    bases = sorted((m for m in manifests if m.kind == "physical"), key=lambda m: m.physical["stop_time"])
    older, newest = bases[-2], bases[-1]
    assert result["base_backup"] == newest.backup_id
    as_of = parse_iso(newest.physical["stop_time"]) - timedelta(seconds=1)
    done = chain.run_cli(
        "pitr-drill", chain.database_id, "--as-of", as_of.isoformat(), "--work-dir", str(work), "--json", timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    backfilled = json.loads(done.stdout)
    assert backfilled["base_backup"] == older.backup_id
    assert parse_iso(older.physical["stop_time"]) < parse_iso(backfilled["target"]) <= as_of


def test_a_cluster_with_a_tablespace_gives_one_object_per_tablespace_and_restores_it_elsewhere(chain, history, pitr_pg):
    """Last: from here on the cluster has a tablespace (pg_basebackup cannot stream it: staged)."""
    import os
    import pwd

    location = pitr_pg.base_dir / "ts_fast"
    location.mkdir()
    user = pwd.getpwnam("postgres")
    os.chown(location, user.pw_uid, user.pw_gid)
    with pitr_pg.connect("postgres") as pg:
        pg.autocommit = True
        pg.execute(f"CREATE TABLESPACE ts_fast LOCATION '{location}'")
        pg.execute("CREATE TABLE on_fast (id int PRIMARY KEY) TABLESPACE ts_fast")
        pg.execute("INSERT INTO on_fast SELECT generate_series(1, 1000)")
    done = chain.run_cli("base-backup", chain.database_id, "--json", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    base_id = json.loads(done.stdout)["backup_id"]
    manifest = chain.services.catalog("restore").read_manifest(chain.database_id, base_id)
    assert [o.role for o in manifest.objects] == ["base", "tablespace", "backup_manifest"]
    (space,) = manifest.physical["tablespaces"]
    assert space["name"] == "ts_fast" and space["key"] == manifest.objects[1].key
    deep = chain.run_cli("verify", chain.database_id, base_id, "--deep", "--json", timeout=300)
    assert deep.returncode == 0, deep.stdout + deep.stderr[-2000:]

    target_dir = _restore_dir(pitr_pg, "with_tablespace")
    elsewhere = pitr_pg.base_dir / "restores" / "ts_fast_copy"
    done = chain.run_cli(
        "restore",
        chain.database_id,
        "--target-dir",
        str(target_dir),
        "--immediate",
        "--start",
        "--json",
        "--tablespace-map",
        f"ts_fast={elsewhere}",
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    try:
        report = json.loads(done.stdout)
        assert report["tablespaces"] == {str(space["oid"]): str(elsewhere)}
        assert (target_dir / "pg_tblspc" / str(space["oid"])).resolve() == elsewhere
        assert _restored(report["port"], pitr_pg, "on_fast") == set(range(1, 1001))
        assert report["comparison"]["ok"], report["comparison"]["differences"]
    finally:
        _stop_restored(target_dir)
        shutil.rmtree(elsewhere, ignore_errors=True)
