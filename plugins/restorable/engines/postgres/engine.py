"""PostgreSQL: what is true of a server whatever the kind of backup.

Server facts (version, recovery), the client binaries that fit a server and the check that they
are new enough, the preflight, the description of a database (exact row counts and schema, for
drills), what a target database holds, and dropping one. Logical dumps with ``pg_dump`` and
``pg_restore`` are the capability in ``postgres/logical.py`` (``PostgresEngine().logical``).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from restorable.connections import ConnectionInfo
from restorable.engines.base import Engine, LogicalBackup
from restorable.engines.integrity import IntegrityReport
from restorable.engines.postgres import tools as pg_tools
from restorable.engines.postgres.describe import prepare_session, read_description
from restorable.engines.postgres.logical import PgDumpBackup
from restorable.engines.postgres.tools import address
from restorable.engines.sql_files import load_sql
from restorable.metadata import Description, TargetState

log = logging.getLogger(__name__)


class PostgresEngine(Engine):
    """A PostgreSQL server; ``logical`` is its pg_dump/pg_restore capability."""

    name = "postgres"
    #: NAMEDATALEN - 1: a longer name is truncated silently, so two long names can be one database.
    max_database_name = 63
    database_name_unit = "bytes"

    def __init__(self) -> None:
        self._logical = PgDumpBackup(self)

    @property
    def logical(self) -> LogicalBackup:
        return self._logical

    # ---------------------------------------------------------------------------------- facts
    @staticmethod
    def server_facts(pg: psycopg.Connection) -> dict[str, Any]:
        """``server_version`` (text), ``server_version_num`` and ``in_recovery`` of ``pg``'s server."""
        row = pg.execute(load_sql("postgres", "server_info")).fetchone()
        assert row is not None
        return {"server_version": row[0], "server_version_num": int(row[1]), "in_recovery": bool(row[3])}

    @staticmethod
    def client_tool(name: str, facts: dict[str, Any]) -> tuple[str, str]:
        """Path and version of client binary ``name`` for the server of ``facts``; ``ToolError``
        when it is older than the server."""
        path = pg_tools.find_pg_binary(name, pg_tools.server_major_number(facts["server_version_num"]))
        version = pg_tools.tool_version(path)
        pg_tools.check_tool_for(name, path, version, facts["server_version"], "server")
        return path, version

    def preflight(self, conn: ConnectionInfo) -> dict[str, str]:
        """Connect, read the server version, check the local pg_dump/pg_restore are new enough."""
        database = self.database_of(conn)
        with pg_tools.connect(conn, database) as pg:
            facts = self.server_facts(pg)
        result = {"server_version": facts["server_version"]}
        for name in ("pg_dump", "pg_restore"):
            path, version = self.client_tool(name, facts)
            result[name] = version
            result[f"{name}_path"] = path
        log.info(
            "preflight database=%s server=%s server_version=%s pg_dump=%s",
            database,
            address(conn, database),
            facts["server_version"],
            result["pg_dump"],
        )
        return result

    # ------------------------------------------------------------------------------- describe
    def describe(self, conn: ConnectionInfo) -> Description:
        """Exact row counts and schema of ``conn.schema``, read in one snapshot."""
        database = self.database_of(conn)
        with pg_tools.connect(conn, database) as pg:
            prepare_session(pg)
            pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                row_counts, schema = read_description(pg)
            finally:
                pg_tools.rollback_quietly(pg)
        return Description(row_counts=row_counts, schema=schema)

    # -------------------------------------------------------------------------------- targets
    def objects_in(self, conn: ConnectionInfo, database: str) -> dict[str, int] | None:
        """Objects by kind in ``database``; None when it does not exist."""
        with pg_tools.connect(conn, pg_tools.maintenance_database(conn)) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            return None
        with pg_tools.connect(conn, database) as pg:
            return {kind: int(n) for kind, n in pg.execute(load_sql("postgres", "target_state")).fetchall()}

    def target_state(self, conn: ConnectionInfo, database: str) -> TargetState:
        """Whether ``database`` is absent, empty or holds objects."""
        objects = self.objects_in(conn, database)
        if objects is None:
            return "absent"
        return "non_empty" if objects else "empty"

    def drop_database(self, conn: ConnectionInfo, database: str) -> None:
        """Drop ``database`` if it exists, ending its sessions first."""
        with pg_tools.connect(conn, pg_tools.maintenance_database(conn)) as admin:
            self.terminate_and_drop(admin, database)
        log.info("dropped database=%s server=%s", database, address(conn, ""))

    @staticmethod
    def terminate_and_drop(admin: psycopg.Connection, database: str) -> None:
        """End the sessions on ``database`` and drop it (``WITH (FORCE)`` from PostgreSQL 13)."""
        admin.execute(load_sql("postgres", "terminate_connections"), {"database": database})
        force = sql.SQL(" WITH (FORCE)") if admin.info.server_version >= 130000 else sql.SQL("")
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(database)) + force)

    def open_session(self, conn: ConnectionInfo) -> psycopg.Connection:
        return pg_tools.connect(conn, self.database_of(conn), autocommit=False)

    def check_integrity(self, conn: ConnectionInfo) -> IntegrityReport:
        """See ``engines/postgres/integrity.py``."""
        from restorable.engines.postgres.integrity import check_integrity

        return check_integrity(conn, self.database_of(conn))

    def server_identity(self, conn: ConnectionInfo) -> str:
        """``system_identifier`` of the cluster (drawn by initdb; any role may read it)."""
        with pg_tools.connect(conn, pg_tools.maintenance_database(conn)) as admin:
            row = admin.execute(load_sql("postgres", "server_identity")).fetchone()
        assert row is not None
        return f"postgres:{row[0]}"

    def reserved_databases(self, conn: ConnectionInfo) -> frozenset[str]:
        """The templates and the maintenance database (``postgres``, or the connection's own)."""
        return frozenset({"template0", "template1", "postgres", pg_tools.maintenance_database(conn).lower()})

    def database_name_length(self, name: str) -> int:
        return len(name.encode("utf-8"))
