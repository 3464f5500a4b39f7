"""PostgreSQL engine: pg_dump in an exported snapshot, pg_restore from a stream.

Capture opens a REPEATABLE READ READ ONLY transaction, exports its snapshot, starts
``pg_dump -Fc -Z0 --snapshot=<id>`` and, while pg_dump starts up, reads row counts, the schema
description and the roles in that same snapshot. The transaction stays open until the context
exits, so the snapshot outlives pg_dump's import of it.

Restore recreates the roles the dump needs (as NOLOGIN, without superuser or other risky
attributes), prepares the database, then feeds ``pg_restore --exit-on-error`` on stdin (``jobs``
== 1) or from a spool file (``jobs`` > 1, in ``$RESTORABLE_SPOOL_DIR`` or the system temp dir,
since pg_restore -j needs a seekable file). Owners and grants come back (no ``--no-owner``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql

from restorable.connections import ConnectionInfo
from restorable.engines.base import (
    Description,
    Engine,
    LogicalBackup,
    PendingMetadata,
    RunningDump,
    SnapshotMetadata,
    TargetState,
)
from restorable.engines.postgres import tools as pg_tools
from restorable.engines.postgres.describe import prepare_session, read_description, read_roles, read_sequences
from restorable.engines.postgres.properties import apply_database_properties, seal_settings
from restorable.engines.postgres.tools import StreamTail, address
from restorable.engines.sql_files import load_sql
from restorable.exceptions import (
    ConfigError,
    IntegrityError,
    RestorableError,
    RestoreRefused,
    SourceUnreachable,
    ToolError,
)

log = logging.getLogger(__name__)

#: Role attributes a restore keeps when it creates a missing role; everything else (LOGIN,
#: SUPERUSER, CREATEROLE, REPLICATION, BYPASSRLS) is dropped and logged.
SAFE_ROLE_ATTRIBUTES = {"rolinherit": ("INHERIT", "NOINHERIT"), "rolcreatedb": ("CREATEDB", "NOCREATEDB")}
DROPPED_ROLE_ATTRIBUTES = ("rolsuper", "rolcreaterole", "rolreplication", "rolbypassrls", "rolcanlogin")


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
            raise pg_tools.tool_failure(
                "pg_dump",
                returncode,
                self.stderr_tail,
                database=self.database,
                hint="The dump is incomplete and must not be stored; fix the cause and run the backup again",
            )

    def kill(self) -> None:
        pg_tools.stop_process(self.proc)


class DumpListing:
    """What ``list_dump`` yields: write the decoded dump into it; ``entries`` is set on exit."""

    def __init__(self, lister: subprocess.Popen, parser: subprocess.Popen) -> None:
        self._lister = lister
        self._parser = parser
        self._lister_open = True
        self.entries: int | None = None
        self.bytes_written = 0

    def write(self, data: bytes) -> int:
        # pg_restore --list stops reading once it has the table of contents; the full parse
        # (pg_restore -f /dev/null) reads every data block to the end.
        if self._lister_open:
            try:
                self._lister.stdin.write(data)  # type: ignore[union-attr]
            except (BrokenPipeError, ValueError):
                self._lister_open = False
        try:
            self._parser.stdin.write(data)  # type: ignore[union-attr]
        except BrokenPipeError:
            raise IntegrityError("pg_restore stopped reading the dump: it cannot parse it") from None
        self.bytes_written += len(data)
        return len(data)

    def writable(self) -> bool:
        return True


class PostgresEngine(Engine, LogicalBackup):
    name = "postgres"
    dump_format = "pg_dump-custom"
    data_suffix = "pgdump"

    # ------------------------------------------------------------------------------ preflight

    @property
    def logical(self) -> LogicalBackup:
        return self

    def _server_facts(self, pg: psycopg.Connection) -> dict[str, Any]:
        row = pg.execute(load_sql("postgres", "server_info")).fetchone()
        assert row is not None
        return {"server_version": row[0], "server_version_num": int(row[1]), "in_recovery": bool(row[3])}

    def _tools(self, facts: dict[str, Any], names: tuple[str, ...] = ("pg_dump", "pg_restore")) -> dict[str, str]:
        major = pg_tools.server_major_number(facts["server_version_num"])
        tools: dict[str, str] = {}
        for name in names:
            path = pg_tools.find_pg_binary(name, major)
            version = pg_tools.tool_version(path)
            pg_tools.check_tool_for(name, path, version, facts["server_version"], "server")
            tools[name] = version
            tools[f"{name}_path"] = path
        return tools

    def preflight(self, conn: ConnectionInfo) -> dict[str, str]:
        """Connect, read the server version, check the local pg_dump/pg_restore are new enough."""
        database = self._database(conn)
        with pg_tools.connect(conn, database) as pg:
            facts = self._server_facts(pg)
        tools = self._tools(facts)
        result = {"server_version": facts["server_version"], **tools}
        log.info(
            "preflight database=%s server=%s server_version=%s pg_dump=%s",
            database,
            address(conn, database),
            facts["server_version"],
            tools["pg_dump"],
        )
        return result

    @staticmethod
    def _database(conn: ConnectionInfo) -> str:
        if not conn.schema:
            raise ConfigError(
                f"connection {conn.conn_id!r} names no database",
                hint="Set the connection's schema (Airflow) or the URI path to the database to back up",
            )
        return conn.schema

    # -------------------------------------------------------------------------------- capture
    @contextmanager
    def capture_streaming(self, conn: ConnectionInfo) -> Iterator[tuple[PendingMetadata, RunningDump]]:
        database = self._database(conn)
        with ExitStack() as stack:
            pg = stack.enter_context(pg_tools.connect(conn, database))
            facts = self._server_facts(pg)
            major = pg_tools.server_major_number(facts["server_version_num"])
            pg_dump = pg_tools.find_pg_binary("pg_dump", major)
            pg_dump_version = pg_tools.tool_version(pg_dump)
            pg_tools.check_tool_for("pg_dump", pg_dump, pg_dump_version, facts["server_version"], "server")

            prepare_session(pg)
            pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            stack.callback(self._end_transaction, pg)
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
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=pg_tools.child_env(passfile),
            )
            dump = PgDumpProcess(proc, database)
            stack.callback(self._close_dump, dump)
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

    @staticmethod
    def _close_dump(dump: PgDumpProcess) -> None:
        if dump.proc.poll() is None:
            log.warning("capture ended with pg_dump still running: killing pid=%s", dump.pid)
        dump.kill()
        dump.stderr_tail.join(5)
        if dump.stdout and not dump.stdout.closed:
            dump.stdout.close()

    @staticmethod
    def _end_transaction(pg: psycopg.Connection) -> None:
        try:
            pg.execute("ROLLBACK")
        except psycopg.Error:
            pass

    # ------------------------------------------------------------------------------- describe
    def describe(self, conn: ConnectionInfo) -> Description:
        database = self._database(conn)
        with pg_tools.connect(conn, database) as pg:
            prepare_session(pg)
            pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                row_counts, schema = read_description(pg)
            finally:
                self._end_transaction(pg)
        return Description(row_counts=row_counts, schema=schema)

    # ---------------------------------------------------------------------------- target state
    def _objects_in(self, conn: ConnectionInfo, database: str) -> dict[str, int] | None:
        """Objects by kind in ``database``; None when it does not exist."""
        with pg_tools.connect(conn, pg_tools.maintenance_database(conn)) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            return None
        with pg_tools.connect(conn, database) as pg:
            return {kind: int(n) for kind, n in pg.execute(load_sql("postgres", "target_state")).fetchall()}

    def target_state(self, conn: ConnectionInfo, database: str) -> TargetState:
        objects = self._objects_in(conn, database)
        if objects is None:
            return "absent"
        return "non_empty" if objects else "empty"

    # -------------------------------------------------------------------------------- dropping
    def drop_database(self, conn: ConnectionInfo, database: str) -> None:
        with pg_tools.connect(conn, pg_tools.maintenance_database(conn)) as admin:
            self._drop(admin, database)
        log.info("dropped database=%s server=%s", database, address(conn, ""))

    @staticmethod
    def _drop(admin: psycopg.Connection, database: str) -> None:
        admin.execute(load_sql("postgres", "terminate_connections"), {"database": database})
        force = sql.SQL(" WITH (FORCE)") if admin.info.server_version >= 130000 else sql.SQL("")
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(database)) + force)

    @staticmethod
    def _create(admin: psycopg.Connection, database: str, metadata: SnapshotMetadata) -> None:
        props = metadata.schema.get("database") or {}
        query = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(database))
        if props.get("encoding"):
            query += sql.SQL(" ENCODING {}").format(sql.Literal(props["encoding"]))
        if props.get("collate"):
            query += sql.SQL(" LC_COLLATE {}").format(sql.Literal(props["collate"]))
        if props.get("ctype"):
            query += sql.SQL(" LC_CTYPE {}").format(sql.Literal(props["ctype"]))
        try:
            admin.execute(query)
        except psycopg.Error as exc:
            raise ToolError(
                f"cannot create database {database!r}: {str(exc).strip()}",
                database=database,
                hint=(
                    "The target server must support the source's encoding and locale "
                    f"({props}); install the locale or create the database by hand"
                ),
            ) from None

    # ----------------------------------------------------------------------------------- roles
    def _ensure_roles(self, admin: psycopg.Connection, roles: list[dict[str, Any]], database: str) -> list[str]:
        """Create the roles the dump refers to that the target server lacks; return their names."""
        existing = {name for (name,) in admin.execute("SELECT rolname FROM pg_roles").fetchall()}
        created: list[str] = []
        for role in roles:
            name = role["name"]
            if name in existing or name.startswith("pg_"):
                continue
            options = [sql.SQL("NOLOGIN"), sql.SQL("NOSUPERUSER")]
            for attr, (yes, no) in SAFE_ROLE_ATTRIBUTES.items():
                if attr in role:
                    options.append(sql.SQL(yes if role[attr] else no))
            dropped = [attr for attr in DROPPED_ROLE_ATTRIBUTES if role.get(attr)]
            try:
                admin.execute(sql.SQL("CREATE ROLE {} ").format(sql.Identifier(name)) + sql.SQL(" ").join(options))
            except psycopg.Error as exc:
                raise ToolError(
                    f"cannot create role {name!r} that the dump's objects belong to: {str(exc).strip()}",
                    database=database,
                    hint="Restore as a role with CREATEROLE, or create the role on the target first",
                ) from None
            created.append(name)
            log.info("created role=%s for database=%s dropped_attributes=%s", name, database, ",".join(dropped))
        # Memberships only for roles created here: existing roles on the target are its own business.
        for role in roles:
            if role["name"] not in created:
                continue
            for membership in role.get("member_of", []):
                parent = membership["role"]
                grant = sql.SQL("GRANT {} TO {}").format(sql.Identifier(parent), sql.Identifier(role["name"]))
                if membership.get("admin_option"):
                    grant += sql.SQL(" WITH ADMIN OPTION")
                try:
                    admin.execute(grant)
                except psycopg.Error as exc:
                    log.warning(
                        "membership not restored role=%s member_of=%s error=%r",
                        role["name"],
                        parent,
                        str(exc).strip(),
                    )
        return created

    # --------------------------------------------------------------------------------- restore
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
        server = address(conn, "")
        objects = self._objects_in(conn, database)
        if objects and not overwrite:
            held = ", ".join(f"{n} {kind}" for kind, n in objects.items())
            raise RestoreRefused.not_empty(database, server, held=held)
        with pg_tools.connect(conn, pg_tools.maintenance_database(conn)) as admin:
            target_version = admin.info.server_version
            target_facts = {
                "server_version": admin.execute("SHOW server_version").fetchone()[0],  # type: ignore[index]
                "server_version_num": target_version,
            }
            pg_restore = pg_tools.find_pg_binary("pg_restore", pg_tools.server_major_number(target_version))
            pg_restore_version = pg_tools.tool_version(pg_restore)
            made_by = metadata.tools.get("pg_dump")
            if made_by:
                pg_tools.check_tool_for(
                    "pg_restore", pg_restore, pg_restore_version, made_by, "pg_dump that made the backup"
                )
            if objects is not None and objects:
                log.info("overwrite database=%s server=%s dropping", database, server)
                self._drop(admin, database)
                self._create(admin, database, metadata)
            elif objects is None:
                self._create(admin, database, metadata)
            created = self._ensure_roles(admin, metadata.roles, database)
        log.info(
            "restore started database=%s server=%s target_version=%s pg_restore=%s jobs=%d roles_created=%d",
            database,
            server,
            target_facts["server_version"],
            pg_restore_version,
            jobs,
            len(created),
        )
        base_args = [pg_restore, "--no-password", "--exit-on-error", *pg_tools.connection_args(conn, database)]
        with pg_tools.password_file(conn) as passfile:
            env = pg_tools.child_env(passfile)
            if jobs <= 1:
                yield from self._restore_streaming(base_args, env, database)
            else:
                yield from self._restore_spooled(base_args, env, database, jobs)
        with pg_tools.connect(conn, pg_tools.maintenance_database(conn)) as admin:
            not_applied = apply_database_properties(
                admin,
                database,
                metadata.schema.get("database_properties"),
                metadata.sealed.get("database_properties"),
            )
        log.info("restore finished database=%s server=%s properties_not_applied=%d", database, server, len(not_applied))

    def _restore_streaming(self, args: list[str], env: dict[str, str], database: str) -> Iterator[IO[bytes]]:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        assert proc.stdin is not None and proc.stderr is not None
        tail = StreamTail(proc.stderr, "pg_restore")
        try:
            yield proc.stdin
        except BaseException as exc:
            pg_tools.stop_process(proc)
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

    def _restore_spooled(self, args: list[str], env: dict[str, str], database: str, jobs: int) -> Iterator[IO[bytes]]:
        spool_dir = os.environ.get("RESTORABLE_SPOOL_DIR") or tempfile.gettempdir()
        fd, path = tempfile.mkstemp(prefix=f"restorable-{database}-", suffix=".pgdump", dir=spool_dir)
        try:
            with os.fdopen(fd, "wb") as spool:
                yield spool
            size = Path(path).stat().st_size
            log.info("restore spooled database=%s path=%s bytes=%d jobs=%d", database, path, size, jobs)
            proc = subprocess.Popen(
                [*args, f"--jobs={jobs}", path],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )
            assert proc.stderr is not None
            tail = StreamTail(proc.stderr, "pg_restore")
            try:
                returncode = proc.wait()
            except BaseException:
                pg_tools.stop_process(proc)
                raise
            tail.join()
            if returncode != 0:
                raise self._restore_failure(returncode, tail, database)
        finally:
            os.unlink(path)

    @staticmethod
    def _restore_failure(returncode: int, tail: StreamTail, database: str) -> ToolError:
        return pg_tools.tool_failure(
            "pg_restore",
            returncode,
            tail,
            database=database,
            hint="The target database is partly restored: fix the cause and restore again with --overwrite",
        )

    # ------------------------------------------------------------------------------- list_dump
    @contextmanager
    def list_dump(self) -> Iterator[DumpListing]:
        """Deep verify of a decoded dump: table of contents and every data block parse.

        ``pg_restore --list`` reads only the archive's table of contents, so the stream also goes
        through ``pg_restore -f /dev/null``, which reads every block to the end (a truncated or
        corrupt stream fails there). The listing's ``entries`` is the number of TOC entries.
        """
        pg_restore = pg_tools.find_pg_binary("pg_restore")
        lister = subprocess.Popen(
            [pg_restore, "--list"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        parser = subprocess.Popen(
            [pg_restore, "--file", os.devnull],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert lister.stdout and lister.stderr and parser.stderr
        entries = _LineCounter(lister.stdout)
        lister_tail = StreamTail(lister.stderr, "pg_restore --list")
        parser_tail = StreamTail(parser.stderr, "pg_restore --file")
        listing = DumpListing(lister, parser)
        try:
            yield listing
        except BaseException:
            pg_tools.stop_process(lister)
            pg_tools.stop_process(parser)
            raise
        for proc in (lister, parser):
            try:
                proc.stdin.close()  # type: ignore[union-attr]
            except BrokenPipeError:
                pass
        lister_rc, parser_rc = lister.wait(), parser.wait()
        entries.join()
        lister_tail.join()
        parser_tail.join()
        for rc, tail, tool in ((lister_rc, lister_tail, "pg_restore --list"), (parser_rc, parser_tail, "pg_restore")):
            if rc != 0:
                detail = tail.text()
                raise IntegrityError(
                    f"{pg_tools.exit_description(tool, rc)} reading the dump"
                    + (f"; stderr tail:\n{detail}" if detail else ""),
                    hint="The stored dump is damaged or not a pg_dump custom-format archive",
                )
        listing.entries = entries.count
        if not entries.count:
            raise IntegrityError(
                "pg_restore --list found no entries in the dump",
                hint="The stored dump is empty or not a pg_dump custom-format archive",
            )
        log.info("dump listed entries=%d bytes=%d", entries.count, listing.bytes_written)


class _LineCounter:
    """Counts TOC entry lines (not ';' comments) of ``pg_restore --list`` output on a thread."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.count = 0
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name="pg_restore-list", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for line in self._stream:
            if line.strip() and not line.startswith(b";"):
                self.count += 1
        self._stream.close()

    def join(self) -> None:
        self._thread.join(30)
