"""The archiver under faults: the bucket down (the spool grows up to its bound, PostgreSQL keeps the
rest in pg_wal, then everything drains in order), SIGKILL and restart (no gap, no second version),
a second archiver on the same spool refused.

A SeaweedFS of this module's own is killed and restarted: the session's is shared by other tests.
Budget: ~30 s.
"""

from __future__ import annotations

import signal
import time
import uuid

import pytest

from devstack.seaweedfs import SeaweedS3
from devstack.wal import make_wal_chain, read_state, stop_archiver, switch_segment, wait_for
from restorable.repository.layout import Layout
from restorable.wal.names import parse_segment
from tests.integration.wal.conftest import SPOOL_MAX_BYTES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_seaweed(tmp_path_factory):
    from tests.conftest import _reap_if_killed

    server = SeaweedS3(tmp_path_factory.mktemp("walseaweed"))
    try:
        server.start()
        _reap_if_killed(server, server.state_dir)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chain(tmp_path_factory, archiving_pg, own_seaweed):
    bucket = f"t-walfault-{uuid.uuid4().hex[:8]}"
    own_seaweed.create_bucket(bucket, object_lock=True, versioning=True)
    return make_wal_chain(
        tmp_path_factory.mktemp("walfault"),
        source=archiving_pg.connection("postgres"),
        s3=own_seaweed.connection(),
        bucket=bucket,
        spool_dir=archiving_pg.base_dir / "spool",
        spool_max=str(SPOOL_MAX_BYTES),
        spool_alarm="20MiB",
    )


def _archived(chain, names):
    store, layout = chain.services.store("backup"), Layout("restorable")
    return all(store.exists(layout.wal_key(chain.database_id, n)) for n in names)


def _archived_segments(chain) -> list[str]:
    store, layout = chain.services.store("backup"), Layout("restorable")
    names = [o.key.rsplit("/", 1)[-1].removesuffix(".zst.age") for o in store.list_objects(layout.wal_prefix("shop"))]
    return sorted(n for n in names if len(n) == 24)


def _assert_no_gap(segments: list[str]) -> None:
    numbers = [parse_segment(n).number for n in segments]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), segments


def _failed_archive_attempts(pg) -> int:
    return pg.query("SELECT failed_count FROM pg_stat_archiver")[0][0]


def test_bucket_down_fills_the_spool_to_its_bound_then_drains_in_order(chain, archiving_pg, own_seaweed, tmp_path):
    proc = chain.start_archiver(tmp_path / "archiver.log")
    try:
        first = switch_segment(archiving_pg)
        wait_for(lambda: _archived(chain, [first]), 30, "the first segment archived")
        failed_before = _failed_archive_attempts(archiving_pg)
        own_seaweed.kill()
        names = [switch_segment(archiving_pg) for _ in range(5)]
        # Three 16 MiB segments fit under the 56 MiB bound; the archive step refuses the rest.
        wait_for(lambda: len(list(chain.spool_dir.glob("0000*"))) == 3, 30, "three segments in the spool")
        wait_for(lambda: _failed_archive_attempts(archiving_pg) > failed_before, 30, "a refused archive step")
        assert len(list(chain.spool_dir.glob("0000*"))) == 3
        alarms = wait_for(lambda: read_state(chain).get("alarms"), 10, "the spool alarm")
        assert any(a["kind"] == "spool_alarm" for a in alarms), alarms
        # The state file is rewritten every few seconds: under load it may still count the one before.
        wait_for(lambda: read_state(chain)["queue"]["files"] == 3, 15, "the state file counting three queued")

        own_seaweed.restart()
        wait_for(lambda: not list(chain.spool_dir.glob("0000*")), 40, "the spool to drain")
        # PostgreSQL retries the held segments when woken: a new segment does that.
        names.append(switch_segment(archiving_pg))
        wait_for(lambda: _archived(chain, names), 60, "every held segment archived")
        segments = _archived_segments(chain)
        _assert_no_gap(segments[segments.index(first) :])
        wait_for(lambda: not [a for a in read_state(chain)["alarms"] if a["kind"] == "spool_alarm"], 10, "no alarm")
    finally:
        if not own_seaweed.is_running():
            own_seaweed.restart()
        stop_archiver(proc)


def test_sigkill_and_restart_leave_no_gap_and_no_second_version(chain, archiving_pg, tmp_path):
    store, layout = chain.services.store("backup"), Layout("restorable")
    proc = chain.start_archiver(tmp_path / "first.log")
    wait_for(lambda: read_state(chain).get("running") and read_state(chain)["pid"] == proc.pid, 20, "the archiver")
    names = [switch_segment(archiving_pg) for _ in range(4)]
    wait_for(lambda: any(store.exists(layout.wal_key("shop", n)) for n in names), 30, "uploads under way")
    stop_archiver(proc, signal.SIGKILL)
    # As if killed between its PUT and removing the spool file: an archived segment is back in the spool.
    (chain.spool_dir / names[0]).write_bytes((archiving_pg.data_dir / "pg_wal" / names[0]).read_bytes())

    again = chain.start_archiver(tmp_path / "second.log")
    try:
        wait_for(lambda: read_state(chain).get("pid") == again.pid, 20, "the restarted archiver")
        # A second archiver on the same spool is refused while one runs.
        twin = chain.run_cli("wal-archiver", "shop", timeout=30)
        assert twin.returncode != 0 and "already running" in twin.stderr, twin.stderr
        wait_for(lambda: _archived(chain, names) and not list(chain.spool_dir.glob("0000*")), 30, "all archived")
    finally:
        stop_archiver(again)
    for name in names:
        versions = store.list_versions(layout.wal_key("shop", name))
        assert len(versions) == 1, (name, versions)
    _assert_no_gap([n for n in _archived_segments(chain) if n >= names[0]])
    assert "wal already" in (tmp_path / "second.log").read_text()


def test_a_role_that_may_not_create_the_heartbeat_table_is_told_what_to_run(chain, archiving_pg):
    import json

    archiving_pg.execute("DROP ROLE IF EXISTS hb_weak")
    archiving_pg.execute("CREATE ROLE hb_weak LOGIN PASSWORD 'weak-pass-123'")
    archiving_pg.execute("CREATE DATABASE hb_weak_db")  # a database without the restorable schema yet
    src = json.loads(chain.env["AIRFLOW_CONN_SRC"])
    src.update(login="hb_weak", password="weak-pass-123", schema="hb_weak_db")
    done = chain.run_cli("wal-archiver", "shop", env_extra={"AIRFLOW_CONN_SRC": json.dumps(src)}, timeout=30)
    assert done.returncode == 2, done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("restorable: error:")]
    assert len(error) == 1 and "may not create the heartbeat table restorable.heartbeat" in error[0], done.stderr
    assert "CREATE SCHEMA restorable" in error[0] and "weak-pass-123" not in done.stderr


def test_the_spool_drains_while_the_heartbeat_database_is_unreachable(chain, archiving_pg, tmp_path):
    import json

    src = json.loads(chain.env["AIRFLOW_CONN_SRC"])
    src["port"] = 9  # nothing listens there
    proc = chain.start_archiver(tmp_path / "archiver.log", env_extra={"AIRFLOW_CONN_SRC": json.dumps(src)})
    try:
        name = switch_segment(archiving_pg)
        wait_for(lambda: _archived(chain, [name]), 30, f"{name} archived without a heartbeat")
        alarms = wait_for(lambda: read_state(chain).get("alarms"), 10, "the heartbeat alarm")
        assert any(a["kind"] == "heartbeat" for a in alarms), alarms
    finally:
        stop_archiver(proc)


def test_sigterm_waits_for_the_uploads_in_flight_then_exits_143(chain, archiving_pg, own_seaweed, tmp_path):
    proc = chain.start_archiver(tmp_path / "archiver.log")
    wait_for(lambda: read_state(chain).get("pid") == proc.pid, 20, "the archiver")
    own_seaweed.pause()  # requests hang: the uploads stay in flight
    try:
        names = [switch_segment(archiving_pg) for _ in range(2)]
        wait_for(lambda: len(read_state(chain).get("in_flight", [])) == 2, 20, "two uploads in flight")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None  # still finishing
    finally:
        own_seaweed.resume()
    assert proc.wait(60) == 143
    assert _archived(chain, names)
    assert not any((chain.spool_dir / n).exists() for n in names)  # finished uploads: their spool files removed
    assert "finishing 2 upload(s)" in (tmp_path / "archiver.log").read_text()
