"""``restorable binlog-archiver DB``: the long-running service that archives a MariaDB server's binlogs.

One process per database, started by systemd or compose (not by Airflow), like ``wal-archiver``.
``mariadb-binlog --stop-never`` (``binlog.receiver``) writes the server's files into the spool; this
loop uploads every *closed* file (one the receiver has gone past: a newer file exists in the spool)
oldest first, then removes it from the spool; every ``live_interval`` seconds it uploads a snapshot
of the live file (whole events only, ``<file>.partial``, overwritten), so the RPO is seconds rather
than a file's lifetime. A heartbeat row is committed every ``heartbeat_interval`` seconds.

Where the receiver starts (each start, restarts included): the oldest file in the spool (a closed
file not yet uploaded, or the live one, written again from byte 0), else the file after the newest
one archived, else the server's oldest. A gap: the file it needs is no longer on the server
(``SHOW BINARY LOGS`` starts later: purged before it was archived; there is no slot to hold it).
Then the ``gap`` alarm names the lost files and which backups can no longer reach which moments,
and archiving goes on from the server's oldest file (the backups after the gap stay recoverable).

Alarms are logged at ERROR and listed in the state file (``binlog-status`` exits 6 on a gap).
SIGTERM or SIGINT: the receiver is stopped, the upload in flight finishes, the state is written,
the command exits 143 (130). SIGKILL: the receiver dies with it (parent-death signal); the next
start finds the same spool, and a file already archived is recognised by its sha256.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from restorable.binlog.objects import (
    ALREADY,
    ARCHIVED,
    CONFLICT,
    file_name,
    file_number,
    list_archived,
    upload_binlog,
)
from restorable.binlog.positions import backup_starts, gap_impact
from restorable.exceptions import ConfigError, RestorableError, StorageError
from restorable.repository.layout import BINLOG_FILE_RE, Layout
from restorable.services import Services
from restorable.storage.protocol import Store
from restorable.wal.state import write_state

log = logging.getLogger(__name__)

LOCK_FILE = ".restorable-binlog-archiver.lock"
STATE_FILE = ".restorable-binlog-state.json"
_STATE_EVERY = 1.0


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def spool_files(directory: Path) -> list[Path]:
    """The binlog files in the spool, in file order (the receiver's own names, nothing else)."""
    found = [p for p in directory.iterdir() if BINLOG_FILE_RE.fullmatch(p.name) and not p.name.endswith(".partial")]
    return sorted(found, key=lambda p: file_number(p.name)[1])


def server_binlogs(conn: Any) -> list[str]:
    """``SHOW BINARY LOGS``: the files the server still has, oldest first."""
    from restorable.engines.mysql.tools import connect

    db = connect(conn, None)
    try:
        with db.cursor() as cur:
            cur.execute("SHOW BINARY LOGS")
            return [str(row[0]) for row in cur.fetchall()]
    finally:
        db.close()


def choose_start(spooled: list[str], newest_archived: str | None, on_server: list[str]) -> tuple[str | None, list[str]]:
    """(the file the receiver starts from, the files lost before it): see the module docstring.

    The newest spool file is the one the receiver was writing; the older ones are closed and
    waiting for upload, and are never written again (the uploader may be reading them).
    """
    if not on_server:
        return None, []
    wanted = spooled[-1] if spooled else None
    if wanted is None and newest_archived is not None:
        base, number = file_number(newest_archived)
        wanted = file_name(base, number + 1, len(newest_archived) - len(base) - 1)
    if wanted is None:
        return on_server[0], []
    oldest = on_server[0]
    w_base, w_number = file_number(wanted)
    o_base, o_number = file_number(oldest)
    if w_base == o_base and w_number < o_number:
        width = len(oldest) - len(o_base) - 1
        return oldest, [file_name(w_base, n, width) for n in range(w_number, o_number)]
    newest_base, newest_number = file_number(on_server[-1])
    if w_base == newest_base and w_number > newest_number:
        return on_server[-1], []  # the server has not made that file yet (or was reset): follow it
    return wanted, []


class BinlogArchiver:
    """The archive loop of one MariaDB database (``run()`` blocks until stopped)."""

    def __init__(
        self,
        services: Services,
        database_id: str,
        *,
        store: Store | None = None,
        poll_interval: float = 0.2,
        heartbeat: bool = True,
    ) -> None:
        config = services.config
        db = config.database(database_id)
        if db.binlog is None:
            raise ConfigError(
                f"{config.path}: database {database_id!r} has no binlog block, so no binlog to archive",
                hint="Add binlog: {spool_dir: /var/lib/restorable/binlog/<db>} to its entry (engine mysql)",
            )
        self.services = services
        self.database_id = database_id
        self.settings = db.binlog
        self.spool_dir = Path(db.binlog.spool_dir)
        self.store = store if store is not None else services.store("backup")
        self.layout = Layout(config.storage.prefix)
        self.recipients = tuple(config.encryption.recipients)
        self.level = db.compression.level
        lock = config.object_lock_for(database_id)
        self.lock = lock
        self.poll_interval = poll_interval
        self.replication = services.resolve(db.binlog.replication_conn_id)
        self.heartbeat = None
        if heartbeat and db.binlog.heartbeat_interval:
            from restorable.binlog.heartbeat import BinlogHeartbeat
            from restorable.engines.mysql.engine import MySQLEngine

            source = services.resolve(db.conn_id)
            self.heartbeat = BinlogHeartbeat(
                source, MySQLEngine.database_of(source), db.binlog.heartbeat_interval, db.binlog.heartbeat_table
            )
        self.receiver = None
        self.alarms: dict[str, dict[str, Any]] = {}
        self.counts = {ARCHIVED: 0, ALREADY: 0, CONFLICT: 0, "snapshots": 0, "failed_attempts": 0}
        self.newest_archived: str | None = None
        #: Newest archived sequence number per GTID domain (closed files and live snapshots).
        self.archived_seq: dict[int, int] = {}
        self.last_archived: dict[str, Any] | None = None
        self.last_heartbeat_archived: dict[str, Any] | None = None
        self.lost: list[str] = []
        self.started_at = _now()
        self._lock_fd: int | None = None
        self._state_written = 0.0
        self._live: tuple[str, int] | None = None
        self._live_at = 0.0
        self._conflicts: set[str] = set()
        #: The live file's summarizer, kept across its snapshots and its final upload.
        self._summarizers: dict[str, Any] = {}
        self._mutex = threading.Lock()

    # -- alarms ------------------------------------------------------------------------------
    def _raise_alarm(self, name: str, kind: str, message: str, **extra: Any) -> None:
        if name not in self.alarms or self.alarms[name]["message"] != message:
            log.error("binlog alarm database=%s kind=%s %s", self.database_id, kind, message)
            self.alarms[name] = {"kind": kind, "message": message, "since": _now(), **extra}

    def _clear_alarm(self, name: str) -> None:
        if self.alarms.pop(name, None) is not None:
            log.info("binlog alarm cleared database=%s alarm=%s", self.database_id, name)

    # -- where to start ----------------------------------------------------------------------
    def start_file(self) -> str | None:
        """Called by the receiver at each (re)start: see ``choose_start``; raises the gap alarm."""
        on_server = server_binlogs(self.replication)
        spooled = [p.name for p in spool_files(self.spool_dir)]
        with self._mutex:
            newest = self.newest_archived
        first, lost = choose_start(spooled, newest, on_server)
        if lost:
            self._gap(lost)
        return first

    def _gap(self, lost: list[str]) -> None:
        self.lost = sorted(set(self.lost) | set(lost), key=lambda n: file_number(n)[1])
        archived = {a.name: a for a in list_archived(self.store, self.layout, self.database_id)}
        before = [a for a in archived.values() if not a.partial and a.number < file_number(lost[0])[1]]
        last_time = max((a.last_time or 0 for a in before), default=0) or None
        try:
            impact = gap_impact(
                backup_starts(self.services.catalog("backup"), self.database_id), file_number(lost[0])[1], last_time
            )
        except RestorableError as exc:
            impact = [{"error": f"backups not listed: {exc}"}]
        cut = "; ".join(
            f"backup {i['backup_id']} reaches only until {i['reaches_until']}" for i in impact if "backup_id" in i
        )
        self._raise_alarm(
            "gap",
            "gap",
            f"binlog files {lost[0]} .. {lost[-1]} ({len(lost)}) were purged from the server before they were "
            f"archived: moments after the last archived event before them cannot be restored from older backups"
            + (f" ({cut})" if cut else "")
            + "; take a new logical backup now",
            lost=lost,
            backups=impact,
        )

    # -- the loop ----------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> None:
        """Archive until ``stop`` is set or a signal raises ``Interrupted`` (then finish the upload in flight)."""
        from restorable.binlog.receiver import BinlogReceiver

        self._open_spool()
        archived = list_archived(self.store, self.layout, self.database_id)
        closed = [a for a in archived if not a.partial]
        if closed:
            self.newest_archived = closed[-1].name
        for a in archived:
            for domain, (_first, last) in a.gtids.items():
                self.archived_seq[domain] = max(self.archived_seq.get(domain, -1), last)
        if self.heartbeat is not None:
            try:
                self.heartbeat.prepare()
            except RestorableError as exc:
                self.heartbeat.last_error = str(exc)
                log.error("binlog heartbeat not prepared database=%s error=%s", self.database_id, exc)
            self.heartbeat.start()
        self.receiver = BinlogReceiver(
            self.replication, self.spool_dir, self.start_file, self.settings.replica_server_id
        )
        self.receiver.start()
        log.info(
            "binlog archiver started database=%s spool=%s newest_archived=%s",
            self.database_id,
            self.spool_dir,
            self.newest_archived,
        )
        try:
            while stop is None or not stop.is_set():
                self.tick()
                time.sleep(self.poll_interval)
        finally:
            self.receiver.stop()
            if self.heartbeat is not None:
                self.heartbeat.stop()
            self._write_state(running=False)
            log.info("binlog archiver stopped database=%s archived=%d", self.database_id, self.counts[ARCHIVED])

    def _open_spool(self) -> None:
        if not self.spool_dir.is_dir():
            raise ConfigError(
                f"binlog spool directory {self.spool_dir} does not exist",
                hint="Create it, writable by the archiver (mariadb-binlog writes the server's files there)",
            )
        fd = os.open(self.spool_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RestorableError(
                f"another binlog-archiver is already running on {self.spool_dir}",
                hint="Run one archiver per database; stop the other first",
            ) from None
        self._lock_fd = fd

    def tick(self) -> None:
        """One pass: upload the closed files, snapshot the live one when due, note heartbeats, write the state."""
        files = spool_files(self.spool_dir)
        names = {p.name for p in files}
        self._summarizers = {k: v for k, v in self._summarizers.items() if k in names}
        for path in files[:-1]:
            if path.name in self._conflicts:
                continue
            if path.name in self.lost:
                # Partly received before the server purged it: kept as a snapshot, never as a closed file.
                if self._archive(path, partial=True):
                    path.unlink(missing_ok=True)
                continue
            if not self._archive(path, partial=False):
                break  # keep file order: retry this one at the next tick
        if files and self.settings.live_interval and time.monotonic() - self._live_at >= self.settings.live_interval:
            self._snapshot(files[-1])
        self._note_heartbeats()
        if time.monotonic() - self._state_written >= _STATE_EVERY:
            self._write_state(running=True)

    def _archive(self, path: Path, *, partial: bool) -> bool:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return True
        lock_mode, days = self.lock if self.lock else (None, None)
        retain = None
        if days:
            from datetime import timedelta

            retain = datetime.now(UTC) + timedelta(days=days)
        started = time.monotonic()
        from restorable.binlog.events import Summarizer

        summarizer = self._summarizers.setdefault(path.name, Summarizer())
        try:
            outcome = upload_binlog(
                self.store,
                self.layout,
                self.database_id,
                path.name,
                data,
                recipients=self.recipients,
                level=self.level,
                partial=partial,
                lock_mode=lock_mode,
                retain_until=retain,
                summarizer=summarizer,
            )
        except (StorageError, OSError) as exc:
            self.counts["failed_attempts"] += 1
            log.warning("binlog upload failed database=%s file=%s error=%s", self.database_id, path.name, exc)
            return False
        for domain, (_first, last) in outcome.summary.gtid_ranges().items():
            self.archived_seq[domain] = max(self.archived_seq.get(domain, -1), last)
        if partial:
            self.counts["snapshots"] += 1
            return True
        if outcome.status == CONFLICT:
            self._conflicts.add(path.name)
            self.counts[CONFLICT] += 1
            self._raise_alarm(
                f"file:{path.name}",
                "conflict",
                f"{path.name} is already archived with other content (sha256 differs): not overwritten, "
                "the spool file is kept",
            )
            return False
        self.counts[outcome.status] += 1
        with self._mutex:
            if self.newest_archived is None or file_number(path.name)[1] > file_number(self.newest_archived)[1]:
                self.newest_archived = path.name
        self.last_archived = {"name": path.name, "at": _now(), "status": outcome.status, "key": outcome.key}
        log.info(
            "binlog %s database=%s file=%s bytes=%d seconds=%.3f",
            outcome.status,
            self.database_id,
            path.name,
            outcome.plain_size,
            time.monotonic() - started,
        )
        path.unlink(missing_ok=True)
        self._summarizers.pop(path.name, None)
        self._drop_snapshot(path.name)
        return True

    def _snapshot(self, path: Path) -> None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return
        if self._live == (path.name, st.st_size):
            self._live_at = time.monotonic()
            return
        if self._archive(path, partial=True):
            self._live = (path.name, st.st_size)
            self._live_at = time.monotonic()

    def _drop_snapshot(self, name: str) -> None:
        """The closed file supersedes its live snapshot: remove it (best effort)."""
        key = self.layout.binlog_key(self.database_id, name + ".partial")
        try:
            if self.store.exists(key):
                self.store.delete_all_versions(key)
        except StorageError as exc:
            log.warning("superseded binlog snapshot not removed key=%s error=%s", key, exc)

    def _note_heartbeats(self) -> None:
        if self.heartbeat is None:
            return
        if self.heartbeat.last_error:
            self._raise_alarm("heartbeat", "heartbeat", f"heartbeat failed: {self.heartbeat.last_error}")
        else:
            self._clear_alarm("heartbeat")
        beat = self.heartbeat.archived_through(self.archived_seq)
        if beat is not None:
            self.last_heartbeat_archived = {"id": beat.id, "at": beat.at.isoformat(), "gtid_seq": beat.seq}

    def state(self, *, running: bool) -> dict[str, Any]:
        hb = self.heartbeat
        spooled = [p.name for p in spool_files(self.spool_dir)] if self.spool_dir.is_dir() else []
        receiver = self.receiver
        return {
            "format": "restorable.binlog-state/1",
            "database_id": self.database_id,
            "pid": os.getpid(),
            "running": running,
            "started_at": self.started_at,
            "updated_at": _now(),
            "newest_archived": self.newest_archived,
            "last_archived": self.last_archived,
            "archived_gtid_seq": {str(k): v for k, v in sorted(self.archived_seq.items())},
            "spool": spooled,
            "counts": dict(self.counts),
            "alarms": [{"name": k, **v} for k, v in sorted(self.alarms.items())],
            "lost": self.lost,
            "last_heartbeat_committed": (
                {"id": hb.last_committed.id, "at": hb.last_committed.at.isoformat()}
                if hb is not None and hb.last_committed
                else None
            ),
            "last_heartbeat_archived": self.last_heartbeat_archived,
            "receiver": {
                "pid": receiver.pid,
                "starts": receiver.starts,
                "last_exit": receiver.last_exit,
            }
            if receiver is not None
            else None,
        }

    def _write_state(self, *, running: bool) -> None:
        try:
            write_state(self.spool_dir / STATE_FILE, self.state(running=running))
        except OSError as exc:
            log.warning("binlog state file not written dir=%s error=%s", self.spool_dir, exc)
        self._state_written = time.monotonic()
