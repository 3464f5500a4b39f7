"""MariaDB and MySQL 8: logical backups with ``mariadb-dump``/``mysqldump``, metadata in its snapshot.

The snapshot, and the global read lock it costs
-----------------------------------------------
``mysqldump`` cannot join another session's snapshot, so Restorable lines two snapshots up the
way mydumper does, under a brief global read lock:

1. Session A runs ``FLUSH TABLES WITH READ LOCK`` (with a short ``lock_wait_timeout``, default
   10 s, extra ``lock_wait_timeout``, so a long-running query makes the backup fail rather than
   stall every writer behind the pending lock). From here on no transaction can commit.
2. Session B (the metadata session) runs ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` and reads
   the binary log position (``SHOW MASTER STATUS``, ``gtid_binlog_pos``/``gtid_executed``): with
   commits blocked, that position *is* the snapshot's.
3. The dump starts with ``--single-transaction``.
4. The lock is held until the dump has provably opened its own snapshot: its output has gone past
   the header. ``mysqldump``/``mariadb-dump`` write the header, then run ``START TRANSACTION WITH
   CONSISTENT SNAPSHOT``, and only then write anything else, so the first bytes after the header
   (read from the pipe, and replayed to the chain) prove the dump's snapshot was opened while no
   commit could happen: both snapshots are the same point.
5. Session A runs ``UNLOCK TABLES``. ``lock_seconds`` in the metadata is how long the lock was held
   (tens of milliseconds: a process start, a connection and the dump's first 4 KiB of output).
   Session B then reads the schema description and counts rows exactly in its snapshot, on a
   thread of its own while the chain streams the dump. (information_schema is not transactional:
   like the dump's own SHOW CREATE TABLE it sees the schema of the moment, which is why DDL must
   not run during a backup; reading it under the lock cost ten times the lock time and was dropped.)

Limits: only transactional tables (InnoDB) are consistent this way, as with any
``--single-transaction`` dump; DDL while the dump runs breaks it; the account needs RELOAD
(for the lock) and BINLOG MONITOR / REPLICATION CLIENT (for the position). Counting runs beside
the stream, never before it: the server drops a client it cannot write to for
``net_write_timeout`` seconds (60 by default), so a dump left waiting on its pipe while large
tables were counted would fail.

DEFINERs on restore
-------------------
Views, routines, triggers and events carry ``DEFINER=`user`@`host```. Restoring them needs the
account to exist on the target server (or SUPER/SET USER), which a scratch server for drills
rarely has. Restorable streams the dump through a line filter between the decoder and the client:
a ``DEFINER`` clause naming an account the target lacks is rewritten to ``DEFINER=CURRENT_USER``
(the restoring user); clauses naming existing accounts are kept. If the target's account list
cannot be read, every DEFINER is rewritten. Only the lines mysqldump uses for these clauses are
touched (data lines are never rewritten), and the filter never holds more than 4 KiB of a line.
Consequences: ``SQL SECURITY DEFINER`` objects then run with the restoring user's privileges;
the schema description leaves DEFINER out, so drills still compare equal. The capture records the
definers in use (``SnapshotMetadata.roles``: account and objects) and the restore stream reports
what it rewrote (``stream.definers_rewritten``). Creating missing accounts was rejected: it
leaves global accounts behind on shared restore servers and still fails at query time without
grants.

The dump holds no ``CREATE DATABASE``/``USE``: one database is dumped without ``--databases``,
so it restores under any name. The ``ALTER DATABASE `<source>``` lines that mysqldump writes
around routines created under another database collation are pointed at the target.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import select
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from restorable.connections import ConnectionInfo
from restorable.engines.base import LogicalBackup, PendingMetadata, RunningDump
from restorable.engines.mysql.describe import base_tables, count_rows, definers, describe_schema, load_sql, table_kinds
from restorable.engines.mysql.stream import DefinerRewriter, DumpStructureCheck, PrefixedReader
from restorable.engines.mysql.tools import (
    ClientTool,
    address,
    child_env,
    connect,
    connection_error,
    defaults_file,
    find_tool,
    kill_query,
    quote_ident,
)
from restorable.engines.process import (
    SecretFile,
    StreamTail,
    failure_message,
    running,
    scrub,
    stop_process,
    tool_failure,
)
from restorable.exceptions import ConfigError, RestoreRefused, SourceUnreachable, ToolError
from restorable.interrupt import held
from restorable.metadata import SnapshotMetadata

if TYPE_CHECKING:
    from restorable.engines.mysql.engine import MySQLEngine

log = logging.getLogger(__name__)

#: Default seconds FLUSH TABLES WITH READ LOCK may wait (extra ``lock_wait_timeout``).
LOCK_WAIT_TIMEOUT = 10
#: Default seconds the dump may take to open its snapshot while the lock is held.
SNAPSHOT_TIMEOUT = 30
#: The last line of mysqldump's header; everything after it is written inside its snapshot.
HEADER_END = b"SQL_NOTES=0 */;\n"
_HEADER_LIMIT = 1 << 16
_ER_ACCESS_DENIED = {1227, 1142, 1044, 1045}
#: The client programs' packet ceiling (their default is 16-24 MB; 1 GB is the most they take), so a
#: row as big as the server allows (a 100 MB BLOB) dumps and restores: the server's own
#: max_allowed_packet still governs what it sends and accepts.
MAX_ALLOWED_PACKET = "--max-allowed-packet=1G"
#: Recorded with each definer the capture finds: what a restore does with it.
DEFINER_ON_RESTORE = "rewritten to DEFINER=CURRENT_USER when missing on the target"


class MySQLDumpProcess(RunningDump):
    """``mariadb-dump``/``mysqldump`` running in the snapshot; ``stdout`` starts at byte 0."""

    def __init__(self, proc: subprocess.Popen, tool: ClientTool, database: str, prefix: bytes) -> None:
        self._proc = proc
        self._tool = tool
        self._database = database
        self._stderr = StreamTail(proc.stderr, tool.name)
        self._reader = PrefixedReader(prefix, proc.stdout.fileno())
        self.stdout = self._reader  # type: ignore[assignment]

    @property
    def pid(self) -> int:
        return self._proc.pid

    def finish(self) -> None:
        returncode = self._proc.wait()
        self._stderr.join()
        if returncode != 0:
            raise tool_failure(
                self._tool.name,
                returncode,
                self._stderr,
                database=self._database,
                hint="The backup was not stored; see the tool's error above and retry",
            )
        if b"-- Dump completed" not in self._reader.tail:
            raise ToolError(
                f"{self._tool.name} exited 0 but its output lacks the '-- Dump completed' trailer",
                database=self._database,
                hint="The dump is incomplete; retry the backup",
            )

    def kill(self) -> None:
        stop_process(self._proc)
        self._stderr.join(5)

    def close(self) -> None:
        """Stop the dump if it still runs and close its pipes (leaving the capture)."""
        stop_process(self._proc)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()


class MySQLDumpBackup(LogicalBackup):
    """Logical dumps of one database with ``mariadb-dump``/``mysqldump``, restored by the client."""

    dump_format = "mysql-sql"
    data_suffix = "sql"

    def __init__(self, engine: MySQLEngine) -> None:
        self._engine = engine

    # -- capture -------------------------------------------------------------------------
    @staticmethod
    def _dump_argv(tool: ClientTool, cnf: SecretFile, database: str, server: dict[str, Any]) -> list[str]:
        argv = [
            tool.path,
            f"--defaults-extra-file={cnf.path}",  # must come first
            "--single-transaction",
            "--quick",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            "--default-character-set=utf8mb4",
            "--no-create-db",
            "--skip-lock-tables",
            "--no-tablespaces",
            MAX_ALLOWED_PACKET,
        ]
        if tool.flavour == "mysql":
            # Restores into servers with GTIDs of their own fail on SET @@GLOBAL.GTID_PURGED.
            argv.append("--set-gtid-purged=OFF")
            if server["flavour"] == "mariadb":
                argv.append("--column-statistics=0")  # MariaDB has no COLUMN_STATISTICS table
        argv.append(database)
        return argv

    @contextmanager
    def capture_streaming(self, conn: ConnectionInfo) -> Iterator[tuple[PendingMetadata, RunningDump]]:
        """Steps 1-5 of the module docstring: the dump's snapshot lined up with the metadata
        session's under a brief global read lock; the metadata is then read beside the stream."""
        database = self._engine.database_of(conn)
        lock_wait = int(conn.extra.get("lock_wait_timeout", LOCK_WAIT_TIMEOUT))
        snapshot_timeout = float(conn.extra.get("snapshot_timeout", SNAPSHOT_TIMEOUT))
        locker = connect(conn, database)
        snap = None
        dump: MySQLDumpProcess | None = None
        try:
            snap = connect(conn, database, autocommit=False)
            with locker.cursor() as lcur, snap.cursor() as cur:
                info = self._engine.server_info(cur)
                tool = find_tool("dump", info["flavour"])
                with defaults_file(conn) as cnf:
                    lcur.execute(f"SET SESSION lock_wait_timeout = {lock_wait}")
                    self._global_read_lock(lcur, conn, database)
                    locked_at = time.monotonic()
                    try:
                        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                        position = self._engine.position(cur, info)
                        taken_at = dt.datetime.now(dt.UTC)
                        argv = self._dump_argv(tool, cnf, database, info)
                        log.info("mysql dump starting database=%s tool=%s", database, tool.name)
                        proc = None
                        try:
                            with held():  # a stop signal waits until the dump is in this try
                                proc = subprocess.Popen(
                                    argv,
                                    stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE,
                                    env=child_env(),
                                    pass_fds=cnf.pass_fds,
                                    bufsize=0,
                                )
                            prefix = self._wait_for_dump_snapshot(proc, tool, database, snapshot_timeout)
                            dump = MySQLDumpProcess(proc, tool, database, prefix)
                        except BaseException:
                            if proc is not None:
                                stop_process(proc)
                            raise
                    finally:
                        lcur.execute("UNLOCK TABLES")
                        lock_seconds = time.monotonic() - locked_at
                    cnf.close()  # the dump has connected; it reads the file only at start
                log.info("mysql global read lock released database=%s lock_seconds=%.4f", database, lock_seconds)
                locker.close()
                position["snapshot_time"] = taken_at.isoformat()
                started = time.monotonic()

                def read_metadata() -> SnapshotMetadata:
                    return self._read_metadata(conn, database, snap, cur, info, tool, position, lock_seconds, started)

                pending = PendingMetadata(
                    read_metadata, cancel=lambda: kill_query(conn, database, snap), name="mysql-metadata"
                )
                try:
                    yield pending, dump
                finally:
                    pending.stop()
        except Exception as exc:
            import pymysql

            if isinstance(exc, pymysql.err.MySQLError):
                raise connection_error(exc, conn, database) from None
            raise
        finally:
            if dump is not None:
                dump.close()
            for session in (snap, locker):
                if session is not None and session.open:
                    session.close()

    @staticmethod
    def _read_metadata(
        conn: ConnectionInfo,
        database: str,
        snap: Any,
        cur: Any,
        info: dict[str, Any],
        tool: ClientTool,
        position: dict[str, Any],
        lock_seconds: float,
        started: float,
    ) -> SnapshotMetadata:
        """Schema, definers and exact counts, in the consistent-snapshot transaction the dump's
        own snapshot lines up with (``snap``/``cur``); runs on the metadata thread."""
        import pymysql

        try:
            kinds = table_kinds(cur, database)
            schema = describe_schema(cur, database, info["flavour"], kinds)
            definer_list = definers(cur, database)
            counts = count_rows(cur, database, base_tables(kinds))
            snap.commit()
        except pymysql.err.MySQLError as exc:
            raise connection_error(exc, conn, database) from None
        log.info(
            "mysql snapshot captured database=%s tables=%d count_seconds=%.2f binlog=%s:%s",
            database,
            len(counts),
            time.monotonic() - started,
            position.get("binlog_file"),
            position.get("binlog_position"),
        )
        return SnapshotMetadata(
            server_version=info["version"],
            row_counts=counts,
            schema=schema,
            position=position,
            roles=[{**d, "restore": DEFINER_ON_RESTORE} for d in definer_list],
            tools={tool.name: tool.version},
            lock_seconds=round(lock_seconds, 4),
        )

    @staticmethod
    def _global_read_lock(lcur: Any, conn: ConnectionInfo, database: str) -> None:
        import pymysql

        try:
            lcur.execute("FLUSH TABLES WITH READ LOCK")
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args else None
            text = scrub(str(exc.args[1] if len(exc.args) > 1 else exc), conn)
            if code in _ER_ACCESS_DENIED:
                raise ConfigError(
                    f"user {conn.login!r} may not run FLUSH TABLES WITH READ LOCK on {address(conn)}: {text}",
                    database=database,
                    hint="GRANT RELOAD ON *.* to the backup user",
                ) from None
            raise SourceUnreachable(
                f"FLUSH TABLES WITH READ LOCK did not get the lock on {address(conn)}: {text}",
                database=database,
                hint="A long-running query or lock held it up; retry later or raise extra lock_wait_timeout",
            ) from None

    @staticmethod
    def _wait_for_dump_snapshot(proc: subprocess.Popen, tool: ClientTool, database: str, timeout: float) -> bytes:
        """Read the dump's output until it has gone past its header: proof that its
        ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` has run. Returns the bytes read."""
        fd = proc.stdout.fileno()
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            end = buf.find(HEADER_END)
            if end >= 0 and buf[end + len(HEADER_END) :].strip():
                return bytes(buf)
            left = deadline - time.monotonic()
            if left <= 0:
                raise ToolError(
                    f"{tool.name} did not start its snapshot within {timeout:.0f} s",
                    database=database,
                    hint="The server or the dump is stalled; the global read lock was released. Retry",
                )
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                returncode = proc.wait()
                err = proc.stderr.read().decode("utf-8", "replace").strip() if proc.stderr else ""
                raise ToolError(
                    failure_message(f"{tool.name} (before its snapshot was open)", returncode, err[-4000:]),
                    database=database,
                    hint="Check the dump user's privileges (SELECT, SHOW VIEW, TRIGGER, EVENT) and retry",
                )
            buf += chunk
            if len(buf) > _HEADER_LIMIT and buf.find(HEADER_END) < 0:
                raise ToolError(
                    f"{tool.name} output has no recognisable header",
                    database=database,
                    hint="Use mariadb-dump or mysqldump without --compact",
                )

    # -- restore -------------------------------------------------------------------------
    @staticmethod
    def _accounts(cur: Any) -> set[tuple[str, str]] | None:
        import pymysql

        try:
            cur.execute(load_sql("accounts"))
        except pymysql.err.MySQLError as exc:
            log.warning("mysql cannot list accounts, rewriting every DEFINER error=%s", exc.args[-1])
            return None
        return {(str(u), str(h)) for u, h in cur.fetchall()}

    def _prepare_target(
        self, conn: ConnectionInfo, database: str, *, overwrite: bool
    ) -> tuple[str, set[tuple[str, str]] | None]:
        """Refuse a non-empty target without ``overwrite``; (re)create the database. Returns the
        server's flavour and its accounts (None when they cannot be read)."""
        state = self._engine.target_state(conn, database)
        if state == "non_empty" and not overwrite:
            raise RestoreRefused.not_empty(database, address(conn))
        admin = connect(conn, None)
        try:
            with admin.cursor() as cur:
                info = self._engine.server_info(cur)
                if state == "non_empty":
                    cur.execute(f"DROP DATABASE {quote_ident(database)}")
                    log.info("mysql target dropped for overwrite database=%s server=%s", database, address(conn))
                if state != "empty":
                    cur.execute(f"CREATE DATABASE {quote_ident(database)} CHARACTER SET utf8mb4")
                accounts = self._accounts(cur)
        finally:
            admin.close()
        return info["flavour"], accounts

    @contextmanager
    def restore(
        self,
        conn: ConnectionInfo,
        database: str,
        metadata: SnapshotMetadata,
        *,
        overwrite: bool,
        jobs: int = 1,
    ) -> Iterator[IO[bytes]]:
        """Feed the SQL dump to the client program through the DEFINER filter (``jobs`` unused:
        a SQL stream restores in one session)."""
        flavour, accounts = self._prepare_target(conn, database, overwrite=overwrite)
        client = find_tool("client", flavour)
        with defaults_file(conn) as cnf:
            argv = [
                client.path,
                f"--defaults-extra-file={cnf.path}",
                "--binary-mode",
                "--default-character-set=utf8mb4",
                "--batch",
                MAX_ALLOWED_PACKET,
                database,
            ]
            popen = {"stdin": subprocess.PIPE, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
            with running(argv, **popen, env=child_env(), pass_fds=cnf.pass_fds) as proc:
                tail = StreamTail(proc.stderr, client.name)

                def failure() -> ToolError:
                    returncode = proc.wait()
                    tail.join()
                    return tool_failure(
                        f"{client.name} restore into {database!r} on {address(conn)}",
                        returncode,
                        tail,
                        database=database,
                        hint="The target database is partly restored; fix the cause and restore again with --overwrite",
                    )

                rewriter = DefinerRewriter(
                    proc.stdin,
                    accounts=accounts,
                    target_database=database,
                    drop_sandbox_line=client.flavour != "mariadb",
                    on_broken_pipe=failure,
                )
                try:
                    yield rewriter
                    rewriter.finish()
                    try:
                        proc.stdin.close()
                    except BrokenPipeError:
                        raise failure() from None
                except BaseException:
                    stop_process(proc)
                    tail.join(5)
                    raise
                returncode = proc.wait()
                tail.join()
                if returncode != 0:
                    raise failure()
        if rewriter.rewritten:
            log.info(
                "mysql definers rewritten to CURRENT_USER database=%s accounts=%s",
                database,
                ",".join(f"{a}x{n}" for a, n in sorted(rewriter.rewritten.items())),
            )
        log.info("mysql restore done database=%s server=%s bytes=%d", database, address(conn), rewriter.bytes_in)

    # -- verify --------------------------------------------------------------------------
    @contextmanager
    def list_dump(self) -> Iterator[IO[bytes]]:
        """Structural check of a decoded SQL dump, without a server (``DumpStructureCheck``)."""
        check = DumpStructureCheck()
        yield check
        check.verify()
        log.info(
            "mysql dump structure ok tables=%d insert_lines=%d bytes=%d",
            len(check.tables),
            check.insert_lines,
            check.bytes,
        )
