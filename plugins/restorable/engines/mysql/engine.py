"""MariaDB and MySQL 8: what is true of a server whatever the kind of backup.

Server facts (version, flavour, binary log and its position), the preflight, the description of a
database (exact row counts and schema, for drills), a target's state and dropping a database.
Logical dumps with ``mariadb-dump``/``mysqldump`` are the capability in ``mysql/logical.py``
(``MySQLEngine().logical``).
"""

from __future__ import annotations

import logging
from typing import Any

from restorable.connections import ConnectionInfo
from restorable.engines.base import Engine, LogicalBackup
from restorable.engines.integrity import IntegrityReport
from restorable.engines.mysql.describe import base_tables, count_rows, describe_schema, load_sql, table_kinds
from restorable.engines.mysql.logical import MySQLDumpBackup
from restorable.engines.mysql.tools import address, connect, find_tool, quote_ident, server_flavour, version_tuple
from restorable.metadata import Description, TargetState

log = logging.getLogger(__name__)


class MySQLEngine(Engine):
    """A MariaDB or MySQL server; ``logical`` is its mariadb-dump/mysqldump capability."""

    name = "mysql"
    max_database_name = 64
    database_name_unit = "characters"
    #: The server's own schemas: the grant tables, sys, and the two virtual ones.
    SYSTEM_DATABASES = frozenset({"mysql", "sys", "information_schema", "performance_schema"})

    def __init__(self) -> None:
        self._logical = MySQLDumpBackup(self)

    @property
    def logical(self) -> LogicalBackup:
        return self._logical

    # -- facts ---------------------------------------------------------------------------
    @staticmethod
    def server_info(cur: Any) -> dict[str, Any]:
        """Version, flavour ("mariadb"/"mysql"), binary logging, server id and net_write_timeout."""
        cur.execute(load_sql("server_info"))
        version, comment, log_bin, server_id, net_write_timeout = cur.fetchone()
        return {
            "version": version,
            "comment": comment,
            "flavour": server_flavour(f"{version} {comment}"),
            "log_bin": bool(int(log_bin)),
            "server_id": int(server_id),
            "net_write_timeout": int(net_write_timeout),
        }

    @staticmethod
    def position(cur: Any, info: dict[str, Any]) -> dict[str, Any]:
        """Binary log file/position and GTID; call with commits blocked."""
        if not info["log_bin"]:
            return {"log_bin": False}
        is_mysql = info["flavour"] == "mysql"
        status_sql = (
            "binlog_status_mysql84" if is_mysql and version_tuple(info["version"]) >= (8, 2) else "binlog_status"
        )
        position: dict[str, Any] = {"log_bin": True, "server_id": info["server_id"]}
        cur.execute(load_sql(status_sql))
        row = cur.fetchone()
        if row:
            position["binlog_file"] = row[0]
            position["binlog_position"] = int(row[1])
        cur.execute(load_sql("gtid_mysql" if is_mysql else "gtid_mariadb"))
        gtid = cur.fetchone()[0]
        position["gtid_executed" if is_mysql else "gtid_binlog_pos"] = gtid or ""
        return position

    def preflight(self, conn: ConnectionInfo) -> dict[str, str]:
        """Connect, read the server's facts and binlog position, find the dump and client programs."""
        database = self.database_of(conn)
        db = connect(conn, database)
        try:
            with db.cursor() as cur:
                info = self.server_info(cur)
                position = self.position(cur, info)
        finally:
            db.close()
        dump = find_tool("dump", info["flavour"])
        client = find_tool("client", info["flavour"])
        facts = {
            "server_version": info["version"],
            "server_flavour": info["flavour"],
            "dump_tool": dump.name,
            "dump_tool_version": dump.version,
            "client_tool": client.name,
            "client_tool_version": client.version,
            "log_bin": "ON" if info["log_bin"] else "OFF",
        }
        if info["log_bin"]:
            facts["binlog_file"] = str(position.get("binlog_file", ""))
            facts["binlog_position"] = str(position.get("binlog_position", ""))
        log.info("mysql preflight database=%s %s", database, " ".join(f"{k}={v}" for k, v in facts.items()))
        return facts

    # -- describe ------------------------------------------------------------------------
    def describe(self, conn: ConnectionInfo) -> Description:
        """Exact row counts and schema of ``conn.schema``, read in one consistent snapshot."""
        database = self.database_of(conn)
        db = connect(conn, database, autocommit=False)
        try:
            with db.cursor() as cur:
                info = self.server_info(cur)
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                kinds = table_kinds(cur, database)
                schema = describe_schema(cur, database, info["flavour"], kinds)
                counts = count_rows(cur, database, base_tables(kinds))
                db.commit()
            return Description(row_counts=counts, schema=schema)
        finally:
            db.close()

    # -- targets -------------------------------------------------------------------------
    def target_state(self, conn: ConnectionInfo, database: str) -> TargetState:
        """Whether ``database`` is absent, empty or holds objects."""
        db = connect(conn, None)
        try:
            with db.cursor() as cur:
                cur.execute(load_sql("target_state"), {"db": database})
                present, objects = cur.fetchone()
        finally:
            db.close()
        if not int(present):
            return "absent"
        return "non_empty" if int(objects) else "empty"

    def drop_database(self, conn: ConnectionInfo, database: str) -> None:
        """``DROP DATABASE IF EXISTS``."""
        db = connect(conn, None)
        try:
            with db.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(database)}")
            log.info("mysql database dropped database=%s server=%s", database, address(conn))
        finally:
            db.close()

    def open_session(self, conn: ConnectionInfo) -> Any:
        return connect(conn, self.database_of(conn), autocommit=False)

    def check_integrity(self, conn: ConnectionInfo) -> IntegrityReport:
        """See ``engines/mysql/integrity.py``."""
        from restorable.engines.mysql.integrity import check_integrity

        return check_integrity(conn, self.database_of(conn))

    def server_identity(self, conn: ConnectionInfo) -> str:
        """``@@server_uuid`` (MySQL), else ``@@server_id``, ``@@hostname`` and ``@@port`` (MariaDB)."""
        db = connect(conn, None)
        try:
            with db.cursor() as cur:
                cur.execute(load_sql("server_identity"))
                facts = {str(name).lower(): str(value) for name, value in cur.fetchall()}
        finally:
            db.close()
        if facts.get("server_uuid"):
            return f"mysql:{facts['server_uuid']}"
        return f"mysql:{facts.get('server_id')}@{facts.get('hostname')}:{facts.get('port')}"

    def reserved_databases(self, conn: ConnectionInfo) -> frozenset[str]:
        return self.SYSTEM_DATABASES

    def database_name_length(self, name: str) -> int:
        return len(name)
