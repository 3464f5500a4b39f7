"""The binlog archiver's failure paths (issue 13): killed and restarted without a gap or a duplicate;
the server's binlogs purged while it was down, the gap reported by the archiver, binlog-status
and verify-binlog with the lost files and the backup it cuts short; SIGTERM exits 143."""

from __future__ import annotations

import os
import signal

import pytest

from restorable.binlog.objects import list_archived
from restorable.repository.layout import Layout
from tests.integration.binlog.conftest import archived_through, gtid_seq, stop, wait_for

pytestmark = pytest.mark.integration


def _write(server, rows: int, flushes: int = 0) -> None:
    for i in range(rows):
        server.execute("INSERT INTO shop.items (v) VALUES (%s)", (i,))
        if flushes and i % max(1, rows // flushes) == rows // flushes - 1:
            server.execute("FLUSH BINARY LOGS")


def _server_files(server) -> list[str]:
    return [row[0] for row in server.query("SHOW BINARY LOGS")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _archived_closed(chain) -> list[str]:
    store = chain.services.store("restore")
    return [a.name for a in list_archived(store, Layout("restorable"), "shop") if not a.partial]


def test_killed_and_restarted_no_gap_no_duplicate_then_a_purge_while_down_is_a_named_gap(
    binlog_chain, binlog_mariadb, tmp_path
):
    server = binlog_mariadb
    server.execute("CREATE TABLE shop.items (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    backup = binlog_chain.run_cli("backup", "shop")
    assert backup.returncode == 0, backup.stderr[-2000:]
    log = tmp_path / "archiver.log"
    proc = binlog_chain.start_archiver(log)
    _write(server, 40, flushes=2)
    seq = gtid_seq(server)
    wait_for(lambda: archived_through(binlog_chain, seq), 30, "the first writes archived")
    receiver = binlog_chain.state()["receiver"]["pid"]
    assert receiver and _alive(receiver)

    # SIGKILL: no clean-up at all. mariadb-binlog must not outlive it (parent-death signal).
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    wait_for(lambda: not _alive(receiver), 10, "mariadb-binlog to die with its archiver")
    _write(server, 60, flushes=3)  # three rotations while nobody archives
    proc = binlog_chain.start_archiver(log)
    newest_closed = _server_files(server)[-2]
    wait_for(lambda: newest_closed in _archived_closed(binlog_chain), 30, f"{newest_closed} archived after restart")
    seq = gtid_seq(server)
    wait_for(lambda: archived_through(binlog_chain, seq), 30, "the live file's snapshot")
    verify = binlog_chain.run_cli("verify-binlog", "shop")
    assert verify.returncode == 0, verify.stdout + verify.stderr[-2000:]
    assert "no gap" in verify.stdout
    store = binlog_chain.services.store("restore")
    layout = Layout("restorable")
    closed = _archived_closed(binlog_chain)
    assert closed == _server_files(server)[: len(closed)]  # every file the server made, in order
    for name in closed:  # each written exactly once: no duplicate version
        assert len(store.list_versions(layout.binlog_key("shop", name))) == 1, name

    # Stopped (SIGTERM: 143), then the server rotates and purges what was never archived.
    assert stop(proc) == 143, log.read_text()[-3000:]
    _write(server, 30, flushes=3)
    files = _server_files(server)

    def purged() -> bool:
        # The server keeps a file until its binlog checkpoint (InnoDB's redo flush) has passed it.
        server.execute(f"PURGE BINARY LOGS TO '{files[-1]}'")
        return _server_files(server)[0] == files[-1]

    wait_for(purged, 20, f"the server to purge every binlog before {files[-1]}", interval=0.5)
    lost = [f for f in files[:-1] if f not in closed]
    assert lost
    proc = binlog_chain.start_archiver(log)
    try:
        alarm = wait_for(
            lambda: next((a for a in binlog_chain.state().get("alarms", []) if a["kind"] == "gap"), None),
            30,
            "the gap alarm",
        )
        # The live file at the stop was partly received: it is lost from the byte the archiver had on.
        assert set(lost) <= set(alarm["lost"]), alarm
        assert backup.stdout.split()[1] in alarm["message"], alarm["message"]
        assert [b["backup_id"] for b in alarm["backups"]] == [backup.stdout.split()[1]]
        status = binlog_chain.run_cli("binlog-status", "shop")
        assert status.returncode == 6 and "ALARM gap" in status.stdout, status.stdout + status.stderr
        verify = binlog_chain.run_cli("verify-binlog", "shop")
        assert verify.returncode == 6, verify.stdout + verify.stderr
        assert f"MISSING {lost[0]}" in verify.stdout or f"MISSING {alarm['lost'][0]}" in verify.stdout
        assert "breaks backup " + backup.stdout.split()[1] in verify.stdout
        # Archiving goes on after the gap: the server's current file is archived as a snapshot.
        seq = gtid_seq(server)
        wait_for(lambda: archived_through(binlog_chain, seq), 30, "archiving after the gap")
        # A restore past the gap from the only backup is refused, naming it.
        beyond = binlog_chain.run_cli(
            "restore", "shop", "--gtid", f"0-1-{gtid_seq(server)}", "--target", "tgt", "--database", "past_gap"
        )
        assert beyond.returncode == 7 and "a gap" in beyond.stderr, beyond.stderr[-2000:]
    finally:
        assert stop(proc) == 143, log.read_text()[-3000:]
