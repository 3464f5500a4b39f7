"""Heartbeat rows in a MariaDB source, so an idle database still has moments to recover to and drills
can prove where a replay stopped.

The archiver inserts a row into ``<database>.restorable_heartbeat`` every ``heartbeat_interval``
seconds and notes the transaction's GTID (``@@last_gtid``). The table lives in the backed-up
database itself, not in a schema of its own: a restore replays only that database's events, and
the heartbeat rows must be among them for a drill to count them. Once a file (or the live file's
snapshot) holding a beat's GTID is archived, the beat's time is recoverable: the RPO as it stands.

Rights: CREATE on the database once (or create the table by hand), then INSERT, SELECT and DELETE
on the table.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from restorable.connections import ConnectionInfo
from restorable.engines.mysql.tools import address, connect, quote_ident

log = logging.getLogger(__name__)

_PRUNE_EVERY = 360


@dataclass(frozen=True)
class Beat:
    id: int
    at: datetime
    domain: int
    seq: int


def create_statement(table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {quote_ident(table)} (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
        "at DATETIME(6) NOT NULL) ENGINE=InnoDB"
    )


class BinlogHeartbeat:
    """Commits a beat every ``interval`` seconds from a thread until ``stop()``."""

    def __init__(self, conn: ConnectionInfo, database: str, interval: float, table: str) -> None:
        self.conn = conn
        self.database = database
        self.interval = interval
        self.table = table
        self.where = address(conn, database)
        self.pending: deque[Beat] = deque()
        self.last_committed: Beat | None = None
        self.last_error: str | None = None
        self.beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._db: Any = None
        self._lock = threading.Lock()

    def prepare(self) -> None:
        self._db = connect(self.conn, self.database)
        with self._db.cursor() as cur:
            cur.execute(create_statement(self.table))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="binlog-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._db is not None:
            try:
                self._db.close()
            except Exception:
                pass

    def beat(self) -> Beat:
        if self._db is None or not self._db.open:
            self.prepare()
        # The statement's own start in UTC, whatever the session's zone: its whole second is the
        # binlog timestamp of the beat's events, so a drill knows exactly which side of T a beat is.
        with self._db.cursor() as cur:
            cur.execute(f"INSERT INTO {quote_ident(self.table)} (at) VALUES (UTC_TIMESTAMP(6))")
            beat_id = cur.lastrowid
            cur.execute(f"SELECT @@last_gtid, at FROM {quote_ident(self.table)} WHERE id = %s", (beat_id,))
            gtid_value, at = cur.fetchone()
            gtid = str(gtid_value or "")
            if self.beats % _PRUNE_EVERY == _PRUNE_EVERY - 1:
                cur.execute(f"DELETE FROM {quote_ident(self.table)} WHERE at < UTC_TIMESTAMP() - INTERVAL 8 DAY")
        domain, _server, seq = (int(p) for p in gtid.split("-")) if gtid.count("-") == 2 else (0, 0, 0)
        beat = Beat(int(beat_id), at.replace(tzinfo=UTC), domain, seq)
        with self._lock:
            self.pending.append(beat)
            self.last_committed = beat
            self.beats += 1
        return beat

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
                self.last_error = None
            except Exception as exc:  # the database restarting must not stop the archiver
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if message != self.last_error:
                    log.error("binlog heartbeat failed server=%s error=%s", self.where, message)
                self.last_error = message
                try:
                    if self._db is not None:
                        self._db.close()
                except Exception:
                    pass
                self._db = None
            self._stop.wait(self.interval)

    def archived_through(self, archived: dict[int, int]) -> Beat | None:
        """Drop the beats whose GTID is archived (``archived``: newest seq per domain); return the newest."""
        newest: Beat | None = None
        with self._lock:
            while self.pending and self.pending[0].seq <= archived.get(self.pending[0].domain, -1):
                newest = self.pending.popleft()
        return newest
