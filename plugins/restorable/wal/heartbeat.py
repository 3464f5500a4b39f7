"""Heartbeat commits in the source database, so an idle database still has moments to recover to.

A time target needs a commit at or after it; without writes there is none, and recovery to
"five minutes ago" cannot stop where asked. The archiver commits a row into
``restorable.heartbeat`` every ``heartbeat_interval`` seconds and notes the WAL file holding the
commit; once that file is archived, the heartbeat's time is recoverable (``wal-status`` reports
the newest such time: the RPO as it stands). ``pg_switch_wal()`` is *not* called per beat (16 MiB
of WAL each): ``archive_timeout`` decides how soon a quiet segment is closed and archived.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from restorable.connections import ConnectionInfo
from restorable.engines.postgres.tools import address, connect
from restorable.exceptions import ConfigError, RestorableError

log = logging.getLogger(__name__)

SCHEMA = "restorable"
TABLE = "heartbeat"
_CREATE = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{TABLE} (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())",
)
#: The commit record ends before the insert position read right after the commit; its last byte
#: is at (insert LSN - 1), so that is the WAL file that must be archived.
_BEAT = f"INSERT INTO {SCHEMA}.{TABLE} (at) VALUES (clock_timestamp()) RETURNING at"
_WHERE = "SELECT pg_walfile_name(pg_current_wal_insert_lsn() - 1)"
#: Old beats are pruned now and then: a row every 10 s is 8,640 rows a day.
_PRUNE = f"DELETE FROM {SCHEMA}.{TABLE} WHERE at < now() - interval '8 days'"
_PRUNE_EVERY = 360


@dataclass(frozen=True)
class Beat:
    at: datetime
    wal_file: str


def ensure_table(pg: Any, where: str, login: str | None) -> None:
    import psycopg

    try:
        for statement in _CREATE:
            pg.execute(statement)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ConfigError(
            f"role {login!r} may not create the heartbeat table {SCHEMA}.{TABLE} on {where}: "
            f"{str(exc).strip().splitlines()[0]}",
            hint=(
                f"Create it once as an owner: CREATE SCHEMA {SCHEMA}; CREATE TABLE {SCHEMA}.{TABLE} "
                f"(id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now()); then GRANT INSERT, DELETE, "
                f"SELECT ON {SCHEMA}.{TABLE} and USAGE ON its sequence to {login}"
            ),
        ) from None


class Heartbeat:
    """Commits a beat every ``interval`` seconds from a thread until ``stop()``."""

    def __init__(self, conn: ConnectionInfo, database: str, interval: float) -> None:
        self.conn = conn
        self.database = database
        self.interval = interval
        self.where = address(conn, database)
        self.pending: deque[Beat] = deque()
        self.last_committed: Beat | None = None
        self.last_error: str | None = None
        self.beats = 0
        #: The server's wal_segment_size (bytes), read at ``prepare()``: segment arithmetic depends on it.
        self.segment_size: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pg: Any = None
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Connect and create the table; raises ConfigError when the role may not (checked at start)."""
        self._pg = connect(self.conn, self.database)
        ensure_table(self._pg, self.where, self.conn.login)
        row = self._pg.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'").fetchone()
        self.segment_size = int(row[0]) if row else None

    @property
    def connection(self) -> Any:
        """The open connection (for the archiver's one-off checks at start, before ``start()``)."""
        return self._pg

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wal-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._pg is not None:
            try:
                self._pg.close()
            except Exception:
                pass

    def beat(self) -> Beat:
        if self._pg is None or self._pg.closed:
            self.prepare()  # the table too: the server may have been unreachable at start
        at = self._pg.execute(_BEAT).fetchone()[0]
        wal_file = self._pg.execute(_WHERE).fetchone()[0]
        beat = Beat(at, wal_file)
        with self._lock:
            self.pending.append(beat)
            self.last_committed = beat
            self.beats += 1
        if self.beats % _PRUNE_EVERY == 0:
            self._pg.execute(_PRUNE)
        return beat

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
                self.last_error = None
            except Exception as exc:  # the database restarting must not stop the archiver
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if not isinstance(exc, RestorableError):
                    message = f"{type(exc).__name__}: {message}"
                if message != self.last_error:
                    log.error("heartbeat failed server=%s error=%s", self.where, message)
                self.last_error = message
                try:
                    if self._pg is not None:
                        self._pg.close()
                except Exception:
                    pass
                self._pg = None
            self._stop.wait(self.interval)

    def archived_in_partial(self, segment: str, written_at: float) -> Beat | None:
        """Stream mode: drop the beats committed in ``segment`` (or before) more than a second before
        its ``.partial`` was last written (``written_at``, epoch seconds) and uploaded; return the
        newest. pg_receivewal writes within milliseconds of the commit (``--synchronous``); the second
        of margin keeps a beat from counting before its WAL can be in the file."""
        newest: Beat | None = None
        with self._lock:
            while (
                self.pending
                and self.pending[0].wal_file <= segment
                and self.pending[0].at.timestamp() < written_at - 1.0
            ):
                newest = self.pending.popleft()
        return newest

    def archived_through(self, newest_archived_segment: str) -> Beat | None:
        """Drop the beats whose WAL file is archived (at or before ``newest_archived_segment`` in
        WAL order, same timeline or an earlier one); return the newest of them."""
        newest: Beat | None = None
        with self._lock:
            while self.pending and self.pending[0].wal_file <= newest_archived_segment:
                newest = self.pending.popleft()
        return newest
