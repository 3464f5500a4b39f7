"""PostgreSQL logical dumps: pg_dump in an exported snapshot, pg_restore from a stream.

Capture opens a REPEATABLE READ READ ONLY transaction, exports its snapshot, starts
``pg_dump -Fc -Z0 --snapshot=<id>`` and, while pg_dump streams, reads row counts, the schema
description and the roles in that same snapshot. The transaction stays open until the context
exits, so the snapshot outlives pg_dump's import of it.

Restore recreates the roles the dump needs (as NOLOGIN, without superuser or other risky
attributes; see ``postgres/prepare.py``), prepares the database, then feeds ``pg_restore
--exit-on-error`` on stdin (``jobs`` == 1) or from a spool file (``jobs`` > 1, in
``$RESTORABLE_SPOOL_DIR`` or the system temp dir, since pg_restore -j needs a seekable file).
Owners and grants come back (no ``--no-owner``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import psycopg

from restorable.connections import ConnectionInfo
from restorable.engines.base import LogicalBackup, PendingMetadata, RunningDump
from restorable.engines.postgres import tools as pg_tools
from restorable.engines.postgres.describe import prepare_session, read_description, read_roles, read_sequences
from restorable.engines.postgres.listing import DumpListing, list_archive
from restorable.engines.postgres.prepare import create_database, ensure_roles
from restorable.engines.postgres.properties import apply_database_properties, seal_settings
from restorable.engines.postgres.tools import address
from restorable.engines.process import StreamTail, running, stop_process, tool_failure
from restorable.engines.sql_files import load_sql
from restorable.exceptions import ConfigError, RestorableError, RestoreRefused, SourceUnreachable, ToolError
from restorable.interrupt import held
from restorable.metadata import SnapshotMetadata

if TYPE_CHECKING:
    from restorable.engines.postgres.engine import PostgresEngine

log = logging.getLogger(__name__)


class PgDumpProcess(RunningDump):
    """A running ``pg_dump``; ``stdout`` is the custom-format archive."""

    def __init__(self, proc: subprocess.Popen, database: str) -> None:
        self.proc = proc
        self.database = database
        assert proc.stdout is not None and proc.stderr is not None
        self.stdout = proc.stdout
        self.stderr_tail = StreamTail(proc.stderr, "pg_dump")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def finish(self) -> None:
        returncode = self.proc.wait()
        self.stderr_tail.join()
        if returncode != 0:
            raise tool_failure(
                "pg_dump",
                returncode,
                self.stderr_tail,
                database=self.database,
                hint="The dump is incomplete and must not be stored; fix the cause and run the backup again",
            )

    def kill(self) -> None:
        stop_process(self.proc)

    def close(self) -> None:
        """Stop pg_dump if it still runs and close its output (leaving the capture)."""
        if self.proc.poll() is None:
            log.warning("capture ended with pg_dump still running: stopping pid=%s", self.pid)
        self.kill()
        self.stderr_tail.join(5)
        if self.stdout and not self.stdout.closed:
            self.stdout.close()


class PgDumpBackup(LogicalBackup):
    """Logical dumps of one database: ``pg_dump`` custom format, restored by ``pg_restore``."""

    dump_format = "pg_dump-custom"
    data_suffix = "pgdump"

    def __init__(self, engine: PostgresEngine) -> None:
        self._engine = engine

    # -------------------------------------------------------------------------------- capture
    @contextmanager
    def capture_streaming(self, conn: ConnectionInfo) -> Iterator[tuple[PendingMetadata, RunningDump]]:
        """pg_dump in the snapshot this session exports; metadata read in it beside the stream."""
        database = self._engine.database_of(conn)
        with ExitStack() as stack:
            pg = stack.enter_context(pg_tools.connect(conn, database))
            facts = self._engine.server_facts(pg)
            pg_dump, pg_dump_version = self._engine.client_tool("pg_dump", facts)

            prepare_session(pg)
            pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            stack.callback(pg_tools.rollback_quietly, pg)
            row = pg.execute(load_sql("postgres", "snapshot_position")).fetchone()
            assert row is not None
            snapshot_id, wal_lsn, txid_snapshot, snapshot_time = row
            position = {
                "snapshot_id": snapshot_id,
                "wal_lsn": wal_lsn,
                "txid_snapshot": txid_snapshot,
                "snapshot_time": snapshot_time.isoformat(),
                "in_recovery": facts["in_recovery"],
            }

            # Sequences are not transactional: read before pg_dump starts, so that the values it
            # dumps are at or beyond these (the comparison accepts a restored sequence ahead).
            sequences = read_sequences(pg)
            passfile = stack.enter_context(pg_tools.password_file(conn))
            args = [
                pg_dump,
                "--format=custom",
                "--compress=0",
                f"--snapshot={snapshot_id}",
                "--no-password",
                *pg_tools.connection_args(conn, database),
            ]
            started = time.monotonic()
            with held():  # a stop signal waits until the dump is under the stack's guard
                proc = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=pg_tools.child_env(passfile),
                    pass_fds=pg_tools.pass_fds(passfile),
                )
                dump = PgDumpProcess(proc, database)
                stack.callback(dump.close)
            log.info(
                "capture started database=%s server=%s snapshot=%s wal_lsn=%s pg_dump=%s pid=%s",
                database,
                address(conn, database),
                snapshot_id,
                wal_lsn,
                pg_dump_version,
                proc.pid,
            )

            def read_metadata() -> SnapshotMetadata:
                # In the exporting transaction, which stays open (and its snapshot with it) until
                # the context ends; pg_dump imported the same snapshot when it started.
                try:
                    row_counts, schema = read_description(pg, sequences=sequences)
                    roles = read_roles(pg)
                except psycopg.Error as exc:
                    raise self._metadata_error(exc, conn, database) from None
                log.info(
                    "capture metadata database=%s tables=%d rows=%d seconds=%.2f",
                    database,
                    len(row_counts),
                    sum(row_counts.values()),
                    time.monotonic() - started,
                )
                settings = seal_settings(schema.get("database_properties"))
                return SnapshotMetadata(
                    server_version=facts["server_version"],
                    row_counts=row_counts,
                    schema=schema,
                    position=position,
                    roles=roles,
                    tools={"pg_dump": pg_dump_version},
                    sealed={"database_properties": settings} if any(settings.values()) else {},
                )

            pending = PendingMetadata(read_metadata, cancel=pg.cancel_safe, name="pg-metadata")
            # Runs first on the way out: the reading must be over before the transaction ends.
            stack.callback(pending.stop)
            yield pending, dump

    @staticmethod
    def _metadata_error(exc: psycopg.Error, conn: ConnectionInfo, database: str) -> RestorableError:
        where = address(conn, database)
        text = str(exc).strip()
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return ConfigError(
                f"user {conn.login!r} may not read every table of {where} to count its rows: {text}",
                database=database,
                hint="GRANT pg_read_all_data (PostgreSQL 14+) or SELECT on every table to the backup user",
            )
        return SourceUnreachable(
            f"reading row counts and schema of {where} in the backup's snapshot failed: {text}",
            database=database,
            hint="Nothing was committed; the backup can be retried",
        )

    # -------------------------------------------------------------------------------- restore
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
        """Prepare the target (roles, database), then pg_restore what the caller writes."""
        server = address(conn, "")
        pg_restore = self._prepare_target(conn, database, metadata, overwrite=overwrite, jobs=jobs)
        base_args = [pg_restore, "--no-password", "--exit-on-error", *pg_tools.connection_args(conn, database)]
        with pg_tools.password_file(conn) as passfile:
            env = pg_tools.child_env(passfile)
            fds = pg_tools.pass_fds(passfile)
            if jobs <= 1:
                yield from self._restore_streaming(base_args, env, fds, database)
            else:
                yield from self._restore_spooled(base_args, env, fds, database, jobs)
        with pg_tools.connect(conn, pg_tools.maintenance_database(conn)) as admin:
            not_applied = apply_database_properties(
                admin,
                database,
                metadata.schema.get("database_properties"),
                metadata.sealed.get("database_properties"),
            )
        log.info("restore finished database=%s server=%s properties_not_applied=%d", database, server, len(not_applied))

    def _prepare_target(
        self, conn: ConnectionInfo, database: str, metadata: SnapshotMetadata, *, overwrite: bool, jobs: int
    ) -> str:
        """Refuse a non-empty target without ``overwrite``; find a pg_restore that can read the
        archive; (re)create the database and the missing roles. Returns pg_restore's path."""
        server = address(conn, "")
        objects = self._engine.objects_in(conn, database)
        if objects and not overwrite:
            held = ", ".join(f"{n} {kind}" for kind, n in objects.items())
            raise RestoreRefused.not_empty(database, server, held=held)
        with pg_tools.connect(conn, pg_tools.maintenance_database(conn)) as admin:
            target_version = admin.info.server_version
            target_server_version = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            pg_restore = pg_tools.find_pg_binary("pg_restore", pg_tools.server_major_number(target_version))
            pg_restore_version = pg_tools.tool_version(pg_restore)
            made_by = metadata.tools.get("pg_dump")
            if made_by:
                pg_tools.check_tool_for(
                    "pg_restore", pg_restore, pg_restore_version, made_by, "pg_dump that made the backup"
                )
            if objects is not None and objects:
                log.info("overwrite database=%s server=%s dropping", database, server)
                self._engine.terminate_and_drop(admin, database)
                create_database(admin, database, metadata)
            elif objects is None:
                create_database(admin, database, metadata)
            created = ensure_roles(admin, metadata.roles, database)
        log.info(
            "restore started database=%s server=%s target_version=%s pg_restore=%s jobs=%d roles_created=%d",
            database,
            server,
            target_server_version,
            pg_restore_version,
            jobs,
            len(created),
        )
        return pg_restore

    def _restore_streaming(
        self, args: list[str], env: dict[str, str], fds: tuple[int, ...], database: str
    ) -> Iterator[IO[bytes]]:
        popen = {"stdin": subprocess.PIPE, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
        with running(args, **popen, env=env, pass_fds=fds) as proc:
            assert proc.stdin is not None and proc.stderr is not None
            tail = StreamTail(proc.stderr, "pg_restore")
            try:
                yield proc.stdin
            except BaseException as exc:
                stop_process(proc)
                tail.join(5)
                if isinstance(exc, BrokenPipeError) and proc.returncode and proc.returncode > 0:
                    # pg_restore gave up first: its stderr says why, the broken pipe does not.
                    raise self._restore_failure(proc.returncode, tail, database) from exc
                raise
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            returncode = proc.wait()
            tail.join()
        if returncode != 0:
            raise self._restore_failure(returncode, tail, database)

    def _restore_spooled(
        self, args: list[str], env: dict[str, str], fds: tuple[int, ...], database: str, jobs: int
    ) -> Iterator[IO[bytes]]:
        spool_dir = os.environ.get("RESTORABLE_SPOOL_DIR") or tempfile.gettempdir()
        fd, path = tempfile.mkstemp(prefix=f"restorable-{database}-", suffix=".pgdump", dir=spool_dir)
        try:
            with os.fdopen(fd, "wb") as spool:
                yield spool
            size = Path(path).stat().st_size
            log.info("restore spooled database=%s path=%s bytes=%d jobs=%d", database, path, size, jobs)
            popen = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
            with running([*args, f"--jobs={jobs}", path], **popen, env=env, pass_fds=fds) as proc:
                assert proc.stderr is not None
                tail = StreamTail(proc.stderr, "pg_restore")
                returncode = proc.wait()
                tail.join()
            if returncode != 0:
                raise self._restore_failure(returncode, tail, database)
        finally:
            os.unlink(path)

    @staticmethod
    def _restore_failure(returncode: int, tail: StreamTail, database: str) -> ToolError:
        return tool_failure(
            "pg_restore",
            returncode,
            tail,
            database=database,
            hint="The target database is partly restored: fix the cause and restore again with --overwrite",
        )

    # ------------------------------------------------------------------------------ list_dump
    def list_dump(self) -> AbstractContextManager[DumpListing]:
        """Deep verify of a decoded dump: its table of contents and every data block parse
        (``postgres/listing.py``); the yielded listing's ``entries`` counts the TOC entries."""
        return list_archive()
