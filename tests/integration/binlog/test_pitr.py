"""MariaDB point-in-time restores from archived binlogs, exact under load (issue 13).

A writer commits throughout (one row per transaction into ``load``, a counter update every fifth,
noise into another database) while the binlog archiver runs, a logical backup is taken in the
middle and the server rotates its binlog twice. Each commit's GTID and binlog second are known
(``@@last_gtid``; ``ts`` defaults to ``UNIX_TIMESTAMP()``, the statement's start, which is what the
binlog stamps). A restore to a random GTID must hold exactly the rows committed at or before it,
a restore to a random whole second exactly those stamped before it, into a database of another
name, run in a non-UTC client time zone; per-table checksums compare the restored rows with the
source's rows of that point. Targets before the backup or beyond the archive are refused and
leave nothing behind.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from restorable.repository.layout import Layout
from tests.integration.binlog.conftest import archived_through, gtid_seq, stop, wait_for

pytestmark = pytest.mark.integration

CHECKSUM = (
    "SELECT COUNT(*), SHA2(GROUP_CONCAT(CONCAT_WS(',', id, v, ts) ORDER BY id SEPARATOR ';'), 256) FROM {db}.`load`"
)


class Writer:
    """Commits into shop.load (and shop.counter every fifth, and a noise database) until stopped."""

    def __init__(self, server, noise: str) -> None:
        self.server = server
        self.noise = noise
        self.stop = threading.Event()
        self.rows: list[tuple[int, int, int]] = []  # (gtid seq, load id, ts)
        self.counts: list[tuple[int, int, int]] = []  # (gtid seq, counter n, ts)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            conn = self.server.connect("shop")
            with conn.cursor() as cur:
                i = 0
                while not self.stop.is_set():
                    i += 1
                    cur.execute("INSERT INTO `load` (v) VALUES (%s)", (i,))
                    row_id = cur.lastrowid
                    cur.execute("SELECT @@last_gtid, ts FROM `load` WHERE id = %s", (row_id,))
                    gtid, ts = cur.fetchone()
                    self.rows.append((int(gtid.split("-")[-1]), row_id, int(ts)))
                    if i % 5 == 0:
                        cur.execute("UPDATE counter SET n = n + 1, ts = UNIX_TIMESTAMP() WHERE id = 1")
                        cur.execute("SELECT @@last_gtid, n, ts FROM counter WHERE id = 1")
                        gtid, n, ts = cur.fetchone()
                        self.counts.append((int(gtid.split("-")[-1]), int(n), int(ts)))
                    if i % 7 == 0:
                        cur.execute(f"INSERT INTO `{self.noise}`.noise (v) VALUES (%s)", (i,))
                    time.sleep(0.002)
            conn.close()
        except BaseException as exc:  # surfaced by the test
            self.error = exc


@pytest.fixture(scope="module")
def history(binlog_chain, binlog_mariadb, tmp_path_factory):
    server = binlog_mariadb
    noise = f"noise_{uuid.uuid4().hex[:8]}"
    server.execute(
        "CREATE TABLE shop.`load` (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL, "
        "ts BIGINT NOT NULL DEFAULT (UNIX_TIMESTAMP()))"
    )
    server.execute("CREATE TABLE shop.counter (id INT PRIMARY KEY, n BIGINT NOT NULL, ts BIGINT NOT NULL)")
    server.execute("INSERT INTO shop.counter VALUES (1, 0, 0)")
    server.execute(f"CREATE DATABASE `{noise}`")
    server.execute(f"CREATE TABLE `{noise}`.noise (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    log = tmp_path_factory.mktemp("blpitr") / "archiver.log"
    proc = binlog_chain.start_archiver(log)
    writer = Writer(server, noise)
    try:
        wait_for(lambda: binlog_chain.state().get("running"), 20, "the archiver's first state file")
        writer.thread.start()
        time.sleep(1.2)
        backup = binlog_chain.run_cli("--json", "backup", "shop")
        assert backup.returncode == 0, backup.stderr[-2000:]
        backup_seq = gtid_seq(server)  # an upper bound of the backup's own GTID
        rotated_at = []
        for _ in range(2):
            time.sleep(1.1)
            server.execute("FLUSH BINARY LOGS")
            rotated_at.append(gtid_seq(server))
        time.sleep(1.1)
        writer.stop.set()
        writer.thread.join(10)
        assert writer.error is None, writer.error
        final = gtid_seq(server)
        wait_for(lambda: archived_through(binlog_chain, final), 30, f"GTID 0-1-{final} archived")
        summary = json.loads(backup.stdout)
        manifest = binlog_chain.services.catalog("restore").read_manifest("shop", summary["backup_id"])
        yield {
            "writer": writer,
            "backup": manifest,
            "backup_seq": backup_seq,
            "rotated_at": rotated_at,
            "noise": noise,
            "log": log,
        }
    finally:
        writer.stop.set()
        code = stop(proc)
        assert code == 143, log.read_text()[-3000:]


def _checksum(server, last_id: int) -> tuple:
    conn = server.connect("shop")
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION group_concat_max_len = 1073741824")
            cur.execute(CHECKSUM.format(db="shop") + " WHERE id <= %s", (last_id,))
            return tuple(cur.fetchone())
    finally:
        conn.close()


def _target_checksum(target, db: str) -> tuple:
    conn = target.connect(db)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION group_concat_max_len = 1073741824")
            cur.execute(CHECKSUM.format(db=f"`{db}`"))
            return tuple(cur.fetchone())
    finally:
        conn.close()


def test_restore_to_a_random_gtid_holds_exactly_the_rows_committed_at_or_before_it(
    history, binlog_chain, binlog_mariadb, mariadb_target_server
):
    writer = history["writer"]
    # After the first rotation: the replay must cross a file boundary.
    after = [r for r in writer.rows if r[0] > history["rotated_at"][0] + 2]
    target_seq, last_id, _ = random.choice(after)
    name = f"at_gtid_{uuid.uuid4().hex[:6]}"
    result = binlog_chain.run_cli(
        "--json", "restore", "shop", "--gtid", f"0-1-{target_seq}", "--target", "tgt", "--database", name
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    try:
        assert report["backup_id"] == history["backup"].backup_id
        assert len(report["files"]) >= 2, report  # the replay crossed a rotation
        expected_ids = {i for s, i, _ in writer.rows if s <= target_seq}
        found = {r[0] for r in mariadb_target_server.query(f"SELECT id FROM `{name}`.`load`")}
        assert found == expected_ids and max(found) == last_id
        assert _target_checksum(mariadb_target_server, name) == _checksum(binlog_mariadb, last_id)
        n = max((c[1] for c in writer.counts if c[0] <= target_seq), default=0)
        assert mariadb_target_server.query(f"SELECT n FROM `{name}`.counter")[0][0] == n
        # Only the backed-up database's events were replayed.
        assert not mariadb_target_server.query("SHOW DATABASES LIKE %s", (history["noise"],))
    finally:
        mariadb_target_server.drop_database(name)


def test_restore_to_a_random_second_holds_exactly_the_rows_stamped_before_it_whatever_the_client_zone(
    history, binlog_chain, binlog_mariadb, mariadb_target_server
):
    writer = history["writer"]
    snapshot = datetime.fromisoformat(history["backup"].metadata.position["snapshot_time"]).timestamp()
    seconds = sorted({ts for _s, _i, ts in writer.rows if ts > snapshot + 1})
    assert len(seconds) >= 2, seconds
    chosen = random.choice(seconds[1:])
    when = datetime.fromtimestamp(chosen, UTC).isoformat().replace("+00:00", "Z")
    name = f"at_time_{uuid.uuid4().hex[:6]}"
    result = binlog_chain.run_cli(
        "--json",
        "restore",
        "shop",
        "--time",
        when,
        "--target",
        "tgt",
        "--database",
        name,
        env_extra={"TZ": "America/New_York"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    try:
        expected_ids = {i for _s, i, ts in writer.rows if ts < chosen}
        found = {r[0] for r in mariadb_target_server.query(f"SELECT id FROM `{name}`.`load`")}
        assert found == expected_ids, (when, len(found), len(expected_ids))
        assert _target_checksum(mariadb_target_server, name) == _checksum(binlog_mariadb, max(expected_ids))
        n = max((c[1] for c in writer.counts if c[2] < chosen), default=0)
        assert mariadb_target_server.query(f"SELECT n FROM `{name}`.counter")[0][0] == n
    finally:
        mariadb_target_server.drop_database(name)


def test_targets_before_the_backup_or_beyond_the_archive_are_refused_and_leave_nothing(
    history, binlog_chain, mariadb_target_server
):
    name = f"refused_{uuid.uuid4().hex[:6]}"
    first_seq = history["writer"].rows[0][0]
    late = datetime.fromtimestamp(int(time.time()) + 3600, UTC).isoformat()
    for args, words in (
        (("--gtid", f"0-1-{first_seq}"), "no backup can reach it"),
        (("--gtid", "0-1-999999999"), "beyond the binlog archive"),
        (("--time", late), "beyond the binlog archive"),
        (("--time", "2026-12-03T14:05:00"), "no UTC offset"),
    ):
        result = binlog_chain.run_cli("restore", "shop", *args, "--target", "tgt", "--database", name)
        assert result.returncode in (2, 7), result.stderr[-2000:]
        assert words in result.stderr, result.stderr[-2000:]
        assert not mariadb_target_server.query("SHOW DATABASES LIKE %s", (name,))


def test_a_replay_interrupted_after_the_backup_was_restored_drops_the_database_it_created(
    history, binlog_chain, mariadb_target_server, monkeypatch
):
    # The interrupt is injected where replay starts (a real SIGTERM cannot be timed into a 20 ms replay).
    from restorable.binlog import replay as replay_module
    from restorable.binlog.targets import parse_binlog_target
    from restorable.exceptions import Interrupted

    def interrupted(*args, **kwargs):
        assert mariadb_target_server.query("SHOW DATABASES LIKE %s", (name,)), "the backup was restored first"
        raise Interrupted(signal.SIGTERM)

    name = f"interrupted_{uuid.uuid4().hex[:6]}"
    monkeypatch.setattr(replay_module, "replay", interrupted)
    seq = history["writer"].rows[-1][0]
    with pytest.raises(Interrupted):
        replay_module.restore_to_moment(
            binlog_chain.services,
            "shop",
            parse_binlog_target(gtid=f"0-1-{seq}", time=None, position=None),
            target=binlog_chain.services.resolve("tgt"),
            database=name,
            identity=binlog_chain.identity,
        )
    assert not mariadb_target_server.query("SHOW DATABASES LIKE %s", (name,))


def test_a_binlog_altered_in_the_bucket_is_refused_before_the_target_is_touched(
    history, binlog_chain, mariadb_target_server
):
    store = binlog_chain.services.store("backup")
    layout = Layout("restorable")
    first = history["backup"].metadata.position["binlog_file"]
    key = layout.binlog_key("shop", first)
    original = store.head(key)
    body = store.get_bytes(key)
    # Written under the archived name itself (every version replaced): what a restore would read.
    store.delete_all_versions(key)
    store.put_bytes(key, body[:-40] + bytes(b ^ 1 for b in body[-40:]), metadata=original["Metadata"])
    try:
        name = f"altered_{uuid.uuid4().hex[:6]}"
        seq = history["writer"].rows[-1][0]
        result = binlog_chain.run_cli("restore", "shop", "--gtid", f"0-1-{seq}", "--target", "tgt", "--database", name)
        assert result.returncode == 6, result.stderr[-2000:]
        assert first in result.stderr, result.stderr[-2000:]
        assert not mariadb_target_server.query("SHOW DATABASES LIKE %s", (name,))
    finally:
        store.delete_all_versions(key)
        store.put_bytes(key, body, metadata=original["Metadata"])


def test_pitr_drill_under_load_proves_the_heartbeats_and_records_evidence(history, binlog_chain, mariadb_target_server):
    result = binlog_chain.run_cli("--json", "pitr-drill", "shop")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["ok"] and report["heartbeats_checked"] >= 1
    assert report["heartbeat_before"]["second"] < report["heartbeat_after"]["second"]
    evidence = binlog_chain.services.store("restore").get_json(report["evidence_key"])
    assert evidence["kind"] == "pitr_drill" and evidence["ok"] and evidence["target"] == report["target"]
    assert not mariadb_target_server.query("SHOW DATABASES LIKE %s", (report["scratch_database"],))


def test_pitr_drill_fails_and_cleans_up_when_a_binlog_in_its_range_is_deleted(
    history, binlog_chain, mariadb_target_server
):
    store = binlog_chain.services.store("backup")
    key = Layout("restorable").binlog_key("shop", history["backup"].metadata.position["binlog_file"])
    original, body = store.head(key), store.get_bytes(key)
    store.delete_object(key)  # a delete marker: the archived version is no longer what a restore sees
    try:
        result = binlog_chain.run_cli("--json", "pitr-drill", "shop")
        assert result.returncode == 6, result.stdout + result.stderr[-3000:]
        assert "lacks " + history["backup"].metadata.position["binlog_file"] in result.stderr
        drops = mariadb_target_server.query("SHOW DATABASES LIKE 'pitr_shop_%%'")
        assert not drops, drops
        records = binlog_chain.services.catalog("restore").verifications("shop", history["backup"].backup_id)
        assert [r for r in records if r["kind"] == "pitr_drill" and not r["ok"]]
    finally:
        store.delete_all_versions(key)
        store.put_bytes(key, body, metadata=original["Metadata"])


def test_a_view_created_after_the_backup_by_an_account_the_target_lacks_is_replayed_restorable(
    history, binlog_chain, binlog_mariadb, mariadb_target_server
):
    server = binlog_mariadb
    account = f"app_{uuid.uuid4().hex[:6]}"
    server.execute(f"CREATE USER '{account}'@'%' IDENTIFIED BY 'x'")
    conn = server.connect("shop")  # the default database: how --database matches statements
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DEFINER='{account}'@'%' VIEW recent AS SELECT id, v FROM `load` WHERE id > 10")
            cur.execute("SELECT @@last_gtid")
            gtid = cur.fetchone()[0]
    finally:
        conn.close()
    seq = int(gtid.split("-")[-1])
    wait_for(lambda: archived_through(binlog_chain, seq), 30, f"GTID {gtid} archived")
    name = f"view_{uuid.uuid4().hex[:6]}"
    result = binlog_chain.run_cli("restore", "shop", "--gtid", gtid, "--target", "tgt", "--database", name)
    assert result.returncode == 0, result.stderr[-3000:]
    try:
        assert "definers rewritten" in result.stderr and account in result.stderr
        count = mariadb_target_server.query(f"SELECT COUNT(*) FROM `{name}`.recent")[0][0]
        assert count == mariadb_target_server.query(f"SELECT COUNT(*) FROM `{name}`.`load` WHERE id > 10")[0][0]
    finally:
        mariadb_target_server.drop_database(name)
