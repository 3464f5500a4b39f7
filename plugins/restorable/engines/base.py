"""What every database engine provides to the backup chain.

The chain (``restorable.commands.backup``, ``restorable.commands.restore``) is engine-agnostic: it asks an
engine for a consistent snapshot's metadata plus a running dump whose stdout it streams, and
later for a restore fed from a decoded stream. PostgreSQL and MariaDB/MySQL implement this.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any

from restorable.connections import ConnectionInfo
from restorable.engines.integrity import IntegrityReport
from restorable.exceptions import ConfigError
from restorable.metadata import Description, SnapshotMetadata, TargetState

log = logging.getLogger(__name__)


class RunningDump(abc.ABC):
    """A dump process started inside the snapshot; the chain reads ``stdout`` to EOF."""

    stdout: IO[bytes]

    @abc.abstractmethod
    def finish(self) -> None:
        """Wait for the process; raise ``ToolError`` with the tail of its stderr if it failed."""

    @abc.abstractmethod
    def kill(self) -> None:
        """Stop the process now (a failure elsewhere in the chain)."""


class PendingMetadata:
    """A capture's metadata, read in the snapshot on a thread of its own while the dump streams.

    Exact row counts scan every table. Read before the dump's output is consumed, they would add
    a whole pass over the database to the backup's wall time while the dump sat blocked on its
    pipe, and MySQL drops a client it cannot write to for ``net_write_timeout`` seconds (60 by
    default): on a large database the dump itself would fail. ``result()`` waits for the reading
    and raises whatever it raised; ``raise_if_failed()`` lets the stream stop early on a failure.
    """

    def __init__(self, read: Callable[[], SnapshotMetadata], *, cancel: Callable[[], None], name: str) -> None:
        self._read = read
        self._cancel = cancel
        self._value: SnapshotMetadata | None = None
        self._error: BaseException | None = None
        self._started = time.monotonic()
        #: Seconds the reading took, once it is done.
        self.seconds: float | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._read()
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc
        finally:
            self.seconds = time.monotonic() - self._started

    def raise_if_failed(self) -> None:
        """Raise the reading's error now if it has already failed (cheap; call it often)."""
        if self._error is not None:
            raise self._error

    def result(self) -> SnapshotMetadata:
        """Wait for the metadata; raise the reading's error if it failed."""
        self._thread.join()
        self.raise_if_failed()
        assert self._value is not None
        return self._value

    def stop(self) -> None:
        """Interrupt a reading still running (a failure elsewhere) and wait for its thread."""
        if self._thread.is_alive():
            try:
                self._cancel()
            except Exception as exc:  # the connection may be gone already
                log.debug("cancelling the metadata reading failed error=%r", exc)
        self._thread.join(timeout=60)


class LogicalBackup(abc.ABC):
    """The logical-dump capability: a dump tool's stream, taken in a consistent snapshot, into a
    stored object of its own; restored by the matching restore tool into one database.

    Other kinds of backup of the same engine (a physical base backup, a log archive) are
    capabilities of their own beside this one: nothing here assumes it is the only one.
    """

    #: Recorded in the manifest: what the plain stream is ("pg_dump-custom", "mysql-sql").
    dump_format: str
    #: Suffix of the stored object before ".zst.age", e.g. "pgdump" or "sql".
    data_suffix: str

    @abc.abstractmethod
    def capture_streaming(self, conn: ConnectionInfo) -> AbstractContextManager[tuple[PendingMetadata, RunningDump]]:
        """Open a consistent snapshot, start the dump in it, and read the snapshot's metadata
        (row counts, schema, roles) on a thread while the caller streams the dump.

        Leaving the context stops the metadata reading and kills the dump if either is still
        running, ends the snapshot and removes any password file.
        """

    @contextmanager
    def capture(self, conn: ConnectionInfo) -> Iterator[tuple[SnapshotMetadata, RunningDump]]:
        """``capture_streaming`` with the metadata read before the dump is: for callers that need
        it first (a restore fed straight from a capture). Backups use ``capture_streaming``."""
        with self.capture_streaming(conn) as (pending, dump):
            yield pending.result(), dump

    @abc.abstractmethod
    def restore(
        self,
        conn: ConnectionInfo,
        database: str,
        metadata: SnapshotMetadata,
        *,
        overwrite: bool,
        jobs: int = 1,
    ) -> AbstractContextManager[IO[bytes]]:
        """Prepare ``database`` (create, or clear when ``overwrite``) and start the restore tool.

        Yields a writable stream: the chain writes the decoded plain dump into it. On normal
        exit the tool is waited for (``ToolError`` with stderr tail on failure); on an exception
        the tool is killed. Refuses (``RestoreRefused``) a non-empty target without ``overwrite``.
        With ``jobs > 1`` an engine whose tool needs a seekable file (pg_restore -j) may spool
        to a temporary file first; with ``jobs == 1`` it must stream.
        """

    @abc.abstractmethod
    def list_dump(self) -> AbstractContextManager[IO[bytes]]:
        """Deep verify: yields a writable stream for a decoded dump; on exit checks it parses
        (``pg_restore --list``; for SQL dumps a structural check of the stream) and raises
        ``IntegrityError`` if not."""


class Engine(abc.ABC):
    """One database engine: what is true of its servers whatever the kind of backup.

    ``conn`` is the source (for backups) with ``schema`` = database name. Each kind of backup
    the engine can make is a capability attribute (``logical`` today).
    """

    #: "postgres" or "mysql": the value of ``engine:`` in the config (see ``engines.ENGINES``).
    name: str
    #: The longest database name the server keeps whole, counted in ``database_name_unit``.
    max_database_name: int
    #: "bytes" (PostgreSQL's NAMEDATALEN) or "characters" (MySQL).
    database_name_unit: str

    @property
    @abc.abstractmethod
    def logical(self) -> LogicalBackup:
        """Logical dumps of one database."""

    @staticmethod
    def database_of(conn: ConnectionInfo) -> str:
        """The database ``conn`` names (its schema); ``ConfigError`` when it names none."""
        if not conn.schema:
            raise ConfigError(
                f"connection {conn.conn_id!r} names no database",
                hint="Set the connection's schema (Airflow) or the URI path to the database to back up",
            )
        return conn.schema

    @abc.abstractmethod
    def preflight(self, conn: ConnectionInfo) -> dict[str, str]:
        """Check connectivity and tool versions; return them. Raises SourceUnreachable/ToolError."""

    @abc.abstractmethod
    def describe(self, conn: ConnectionInfo) -> Description:
        """Exact row counts and schema of the database ``conn.schema`` (a restored copy)."""

    @abc.abstractmethod
    def target_state(self, conn: ConnectionInfo, database: str) -> TargetState:
        """Whether ``database`` on the server of ``conn`` is absent, empty or holds objects."""

    @abc.abstractmethod
    def drop_database(self, conn: ConnectionInfo, database: str) -> None:
        """Drop ``database`` if it exists (scratch databases of drills)."""

    @abc.abstractmethod
    def open_session(self, conn: ConnectionInfo) -> Any:
        """A DB-API connection to ``conn.schema`` as ``conn.login``, in a transaction (not autocommit)."""

    @abc.abstractmethod
    def check_integrity(self, conn: ConnectionInfo) -> IntegrityReport:
        """The engine's own checker over ``conn.schema`` (indexes against tables, page structure)."""

    @abc.abstractmethod
    def server_identity(self, conn: ConnectionInfo) -> str:
        """What names the server of ``conn`` whatever address, name or socket reaches it."""

    @abc.abstractmethod
    def reserved_databases(self, conn: ConnectionInfo) -> frozenset[str]:
        """Databases of the server of ``conn`` that a restore never writes into (templates,
        maintenance, system catalogues), lower-case."""

    @abc.abstractmethod
    def database_name_length(self, name: str) -> int:
        """The length of ``name`` as the server counts it against ``max_database_name``."""


def iter_chunks(stream: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
