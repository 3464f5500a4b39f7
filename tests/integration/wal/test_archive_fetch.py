"""WAL archive mode end to end: PostgreSQL's archive step fills the spool, ``wal-archiver`` uploads,
``wal-fetch`` (the restore_command) returns the bytes PostgreSQL wrote, with its exit codes.

One archiving server and one archiver process for the module (budget: ~20 s).
"""

from __future__ import annotations

import hashlib
import json
import signal
import time
from pathlib import Path

import pytest

import restorable.wal.fetch
from devstack.wal import make_wal_chain, python_for_postgres, read_state, stop_archiver, switch_segment, wait_for
from restorable.repository.layout import Layout
from restorable.wal.objects import encode_wal_file, wal_object_metadata
from tests.integration.wal.conftest import SPOOL_MAX_BYTES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def chain(tmp_path_factory, archiving_pg, seaweed, wal_bucket):
    return make_wal_chain(
        tmp_path_factory.mktemp("walchain"),
        source=archiving_pg.connection("postgres"),
        s3=seaweed.connection(),
        bucket=wal_bucket,
        spool_dir=archiving_pg.base_dir / "spool",
        spool_max=str(SPOOL_MAX_BYTES),  # what the server's archive_command enforces
        spool_alarm="40MiB",
    )


@pytest.fixture(scope="module")
def archiver(chain, tmp_path_factory):
    log = tmp_path_factory.mktemp("walarchiver") / "archiver.log"
    proc = chain.start_archiver(log)
    wait_for(lambda: read_state(chain).get("running"), 20, "the archiver's first state file")
    yield proc, log
    stop_archiver(proc)


def _store(chain):
    return chain.services.store("backup")


def _archived(chain, names):
    store, layout = _store(chain), Layout("restorable")
    return all(store.exists(layout.wal_key(chain.database_id, n)) for n in names)


def test_segments_reach_the_bucket_and_wal_fetch_returns_the_bytes_postgres_wrote(
    chain, archiver, archiving_pg, tmp_path
):
    names = [switch_segment(archiving_pg) for _ in range(3)]
    wait_for(lambda: _archived(chain, names), 30, f"{names} in the bucket")
    # The spool is emptied only once each object was read back.
    wait_for(lambda: not any((chain.spool_dir / n).exists() for n in names), 10, "the spool to empty")
    store, layout = _store(chain), Layout("restorable")
    head = store.head(layout.wal_key(chain.database_id, names[0]))
    original = (archiving_pg.data_dir / "pg_wal" / names[0]).read_bytes()
    assert head["Metadata"]["restorable-sha256"] == hashlib.sha256(original).hexdigest()
    assert head["Metadata"]["restorable-size"] == str(len(original))
    assert head["Metadata"]["restorable-format"] == "restorable.wal/1"
    assert head["ContentLength"] < len(original) / 5  # zstd: WAL compresses well

    dest = tmp_path / "RECOVERYXLOG"
    done = chain.run_cli("wal-fetch", chain.database_id, names[0], str(dest))
    assert done.returncode == 0, done.stderr
    assert dest.read_bytes() == original
    # The prefetcher brings the next segments into the private cache; the next fetch takes one from there.
    cache = tmp_path / "restorable-prefetch"
    wait_for(lambda: (cache / names[1]).exists(), 20, "the prefetched next segment")
    second = tmp_path / "second"
    done = chain.run_cli("wal-fetch", chain.database_id, names[1], str(second), "--prefetch", "0")
    assert done.returncode == 0, done.stderr
    assert second.read_bytes() == (archiving_pg.data_dir / "pg_wal" / names[1]).read_bytes()
    assert not (cache / names[1]).exists()  # moved, not copied

    status = read_state(chain)
    assert status["last_archived_segment"] >= names[-1]
    assert status["alarms"] == []


def test_wal_fetch_exits_1_only_for_a_file_that_is_not_archived(chain, archiver, tmp_path):
    dest = tmp_path / "x"
    missing = chain.run_cli("wal-fetch", chain.database_id, "00000001000000FF000000FE", str(dest))
    assert missing.returncode == 1, missing.stderr
    assert "not in the WAL archive" in missing.stderr
    history = chain.run_cli("wal-fetch", chain.database_id, "00000007.history", str(dest))
    assert history.returncode == 1, history.stderr
    assert not dest.exists()
    # Anything else stops recovery loudly: a bad name, a bad argument list, an unknown database.
    for argv in (
        ("wal-fetch", chain.database_id, "RECOVERYXLOG", str(dest)),
        ("wal-fetch", chain.database_id),
        ("wal-fetch", "nosuchdb", "000000010000000000000001", str(dest)),
    ):
        done = chain.run_cli(*argv)
        assert done.returncode == 126, (argv, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr


def test_wal_fetch_exits_126_when_the_bucket_is_unreachable(chain, archiver, archiving_pg, tmp_path):
    name = switch_segment(archiving_pg)
    wait_for(lambda: _archived(chain, [name]), 30, f"{name} in the bucket")
    s3 = json.loads(chain.env["AIRFLOW_CONN_RESTORABLE_S3"])
    s3["extra"]["endpoint_url"] = "http://127.0.0.1:9"  # nothing listens: connection refused, as when S3 is down
    done = chain.run_cli(
        "wal-fetch",
        chain.database_id,
        name,
        str(tmp_path / "x"),
        env_extra={"AIRFLOW_CONN_RESTORABLE_S3": json.dumps(s3)},
    )
    assert done.returncode == 126, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("restorable: error:")]
    assert len(errors) == 1 and "Is the S3 endpoint reachable" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()


def test_a_new_version_over_an_archived_segment_is_read_past_and_a_bad_body_fails(
    chain, archiver, archiving_pg, tmp_path
):
    store, layout = _store(chain), Layout("restorable")
    name = switch_segment(archiving_pg)
    wait_for(lambda: _archived(chain, [name]), 30, f"{name} in the bucket")
    original = (archiving_pg.data_dir / "pg_wal" / name).read_bytes()
    # Someone with write access puts a well-formed object of other bytes over it (a new version).
    forged = b"\x00" * len(original)
    encoded = encode_wal_file(forged, recipients=chain.services.config.encryption.recipients)
    key = layout.wal_key(chain.database_id, name)
    store.put_bytes(key, encoded.body, metadata=wal_object_metadata(encoded.plain_sha256, len(forged)))
    done = chain.run_cli("wal-fetch", chain.database_id, name, str(tmp_path / "a"), "--prefetch", "0")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a").read_bytes() == original  # the archived (first) version, not the forgery
    assert "overwritten" in done.stderr

    # A body that does not match its own recorded sha256 is refused (126), never written to %p.
    fake = "00000001000000FF00000001"
    store.put_bytes(
        layout.wal_key(chain.database_id, fake),
        encoded.body,
        if_none_match=True,
        metadata=wal_object_metadata(hashlib.sha256(b"other").hexdigest(), len(forged)),
    )
    try:
        done = chain.run_cli("wal-fetch", chain.database_id, fake, str(tmp_path / "b"), "--prefetch", "0")
        assert done.returncode == 126, done.stderr
        assert "altered" in done.stderr
        assert not (tmp_path / "b").exists()
    finally:
        store.delete_all_versions(layout.wal_key(chain.database_id, fake))


def test_same_name_with_different_content_is_an_alarm_not_an_overwrite(chain, archiver, archiving_pg):
    store, layout = _store(chain), Layout("restorable")
    name = switch_segment(archiving_pg)
    wait_for(lambda: _archived(chain, [name]), 30, f"{name} in the bucket")
    key = layout.wal_key(chain.database_id, name)
    before = store.list_versions(key)
    impostor = chain.spool_dir / name
    # The object is in the bucket a moment before the archiver removes its spool file.
    wait_for(lambda: not impostor.exists(), 10, f"{name} removed from the spool")
    impostor.write_bytes(b"not the archived segment" * 1000)
    alarm = wait_for(
        lambda: [a for a in read_state(chain).get("alarms", []) if a["kind"] == "conflict"], 15, "a conflict alarm"
    )
    assert name in alarm[0]["message"]
    # The archiver keeps going with other files meanwhile.
    later = switch_segment(archiving_pg)
    wait_for(lambda: _archived(chain, [later]), 30, f"{later} archived beside the conflict")
    assert impostor.exists()
    assert store.list_versions(key) == before  # never overwritten
    proc, log = archiver
    assert f"kind=conflict {name}" in log.read_text()
    impostor.unlink()


def test_heartbeats_are_committed_and_reported_once_archived(chain, archiver, archiving_pg):
    wait_for(lambda: read_state(chain).get("last_heartbeat_committed"), 10, "a heartbeat")
    with archiving_pg.connect("postgres") as pg:
        rows = pg.execute("SELECT count(*), max(at) FROM restorable.heartbeat").fetchone()
    assert rows[0] >= 1
    time.sleep(1.2)  # at least one more beat lands in the segment closed next
    switch_segment(archiving_pg)
    state = wait_for(
        lambda: read_state(chain).get("last_heartbeat_archived") and read_state(chain), 20, "an archived beat"
    )
    assert state["last_heartbeat_archived"]["wal_file"] <= state["last_archived_segment"]


def test_wal_status_reports_the_archiver_the_queue_and_the_bucket(chain, archiver, archiving_pg):
    name = switch_segment(archiving_pg)
    wait_for(lambda: _archived(chain, [name]), 30, f"{name} in the bucket")
    wait_for(lambda: read_state(chain).get("last_archived_segment") == name, 10, "the state to catch up")
    done = chain.run_cli("wal-status", chain.database_id, "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["archiver"]["running"] is True
    assert status["archiver"]["segment_size"] == 16 * 1024 * 1024
    assert status["last_archived_segment"] == name
    assert status["bucket"]["newest_segment"] == name
    assert status["queue"]["files"] == 0 and status["queue"]["oldest"] is None
    assert status["last_heartbeat_committed"]["at"]
    assert status["alarms"] == [], status["alarms"]
    assert 0 <= status["archive_lag_seconds"]["p50"] <= status["archive_lag_seconds"]["p99"] < 30


def test_verify_wal_names_a_deleted_segment_and_exits_6(chain, archiver, archiving_pg):
    store, layout = _store(chain), Layout("restorable")
    names = [switch_segment(archiving_pg) for _ in range(3)]
    wait_for(lambda: _archived(chain, names), 30, f"{names} in the bucket")
    intact = chain.run_cli("verify-wal", chain.database_id, "--json")
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert json.loads(intact.stdout)["gaps"] == []
    assert json.loads(intact.stdout)["server_timeline"] == 1
    key = layout.wal_key(chain.database_id, names[1])
    store.delete_object(key)  # a delete marker: the segment is gone from the archive as a restore sees it
    try:
        broken = chain.run_cli("verify-wal", chain.database_id, "--from", names[0], "--json")
        assert broken.returncode == 6, broken.stdout + broken.stderr
        report = json.loads(broken.stdout)
        assert [(g["first"], g["last"]) for g in report["gaps"]] == [(names[1], names[1])]
        assert f"missing {names[1]} .. {names[1]}" in broken.stderr
        text = chain.run_cli("verify-wal", chain.database_id)
        assert text.returncode == 6 and f"MISSING {names[1]}" in text.stdout, text.stdout
        fetch = chain.run_cli("wal-fetch", chain.database_id, names[1], "/tmp/nonexistent-dir/x")
        assert fetch.returncode == 1, fetch.stderr  # deleted: "not archived", as PostgreSQL must hear it
    finally:
        store.delete_all_versions(key)


def test_postgres_replays_the_archive_through_wal_fetch_to_the_last_commit(chain, archiver, archiving_pg):
    """A base backup restored with wal-fetch as restore_command reaches the newest archived commit."""
    import os
    import shutil
    import subprocess

    from devstack.ports import free_port
    from devstack.postgres import postgres_bindir

    bindir, base = postgres_bindir(), archiving_pg.base_dir
    restore = base / "restored"
    as_pg = ["runuser", "-u", "postgres", "--"]
    pg_env = {**os.environ, "PGPASSWORD": archiving_pg.password}
    subprocess.run(
        [*as_pg, str(bindir / "pg_basebackup"), "-D", str(restore), "-X", "none", "-c", "fast", "-h", "127.0.0.1"]
        + ["-p", str(archiving_pg.port), "-U", "postgres"],
        check=True,
        env=pg_env,
        capture_output=True,
        timeout=60,
    )
    with archiving_pg.connect("postgres") as pg:
        pg.execute("CREATE TABLE IF NOT EXISTS after_backup (n int)")
        pg.execute("INSERT INTO after_backup SELECT generate_series(1, 500)")
    last = switch_segment(archiving_pg)
    wait_for(lambda: _archived(chain, [last]), 30, f"{last} in the bucket")

    config = base / "restore.yaml"  # the restored server (user postgres) must read it
    shutil.copy(chain.config_path, config)
    os.chmod(config, 0o644)
    port = free_port()
    python, python_env = python_for_postgres()
    script = Path(restorable.wal.fetch.__file__).with_name("wal-fetch.sh")
    fetch = f"{script} %f %p {python} -m restorable.cli --config {config} wal-fetch {chain.database_id}"
    (restore / "port.conf").write_text(f"port = {port}\n")
    with open(restore / "postgresql.conf", "a") as fh:
        fh.write(f"archive_mode = off\nrestore_command = '{fetch}'\n")
    (restore / "recovery.signal").write_text("")
    subprocess.run(["chown", "-R", "postgres:postgres", str(restore)], check=True)
    env = {**os.environ, **chain.env, **python_env}
    log = base / "restored.log"
    started = subprocess.run(
        [*as_pg, str(bindir / "pg_ctl"), "start", "-D", str(restore), "-l", str(log), "-w", "-t", "60"],
        env=env,
        capture_output=True,
        timeout=90,
    )
    try:
        assert started.returncode == 0, log.read_text()[-3000:]
        restored = archiving_pg.connection("postgres")
        import psycopg

        def promoted():
            with psycopg.connect(
                host="127.0.0.1", port=port, user="postgres", password=restored.password, dbname="postgres"
            ) as pg:
                if pg.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    return None
                return pg.execute("SELECT count(*) FROM after_backup").fetchone()[0]

        assert wait_for(promoted, 60, "recovery to end") == 500
        text = log.read_text()
        assert "restored log file" in text and "FATAL" not in text, text[-3000:]
    finally:
        subprocess.run(
            [*as_pg, str(bindir / "pg_ctl"), "stop", "-D", str(restore), "-m", "immediate", "-w"], capture_output=True
        )
        shutil.rmtree(restore, ignore_errors=True)


def test_sigterm_finishes_and_exits_143(chain, archiver):
    proc, log = archiver
    assert stop_archiver(proc, signal.SIGTERM) == 143
    assert "stopped" in log.read_text()
    assert read_state(chain)["running"] is False
