"""amcheck on a restored PostgreSQL database: every B-tree index against its table, every heap.

``bt_index_check(index, heapallindexed => true)`` proves the index is ordered and that every
heap tuple is in it; ``verify_heapam`` reads each table's pages and TOAST for corrupt tuples.
Both take only AccessShareLock, so the check runs beside other readers. amcheck ships with
PostgreSQL; the extension is created in the checked database if missing (which needs a role
allowed to create it, such as the drill server's owner) and dropped again afterwards.
"""

from __future__ import annotations

import logging
import time

import psycopg
from psycopg import sql

from restorable.connections import ConnectionInfo
from restorable.engines.integrity import IntegrityReport
from restorable.engines.postgres import tools as pg_tools
from restorable.exceptions import ToolError

log = logging.getLogger(__name__)

METHOD = "amcheck (bt_index_check heapallindexed, verify_heapam)"

# Valid, ready B-tree indexes with storage (not a partitioned parent), of permanent relations
# (temporary ones belong to other sessions).
_INDEXES = """
SELECT c.oid, format('%I.%I', n.nspname, c.relname)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am ON am.oid = c.relam
WHERE am.amname = 'btree' AND c.relkind = 'i' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 2
"""

# Tables and materialized views with storage (their TOAST is checked with them).
_TABLES = """
SELECT c.oid, format('%I.%I', n.nspname, c.relname)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
ORDER BY 2
"""


def check_integrity(conn: ConnectionInfo, database: str) -> IntegrityReport:
    """Run amcheck over ``database``; every problem names its index or table."""
    started = time.monotonic()
    report = IntegrityReport(METHOD)
    pg = pg_tools.connect(conn, database)
    created = False
    try:
        created = _ensure_amcheck(pg, conn, database)
        indexes = pg.execute(_INDEXES).fetchall()
        for oid, name in indexes:
            try:
                pg.execute("SELECT bt_index_check(%s::oid::regclass, true)", (oid,))
            except psycopg.Error as exc:
                report.add(f"index {name}: {_first_line(exc)}")
        tables = pg.execute(_TABLES).fetchall()
        for oid, name in tables:
            try:
                rows = pg.execute(
                    "SELECT blkno, offnum, attnum, msg FROM verify_heapam(%s::oid::regclass, "
                    "on_error_stop => false, check_toast => true) LIMIT 20",
                    (oid,),
                ).fetchall()
            except psycopg.Error as exc:
                report.add(f"table {name}: {_first_line(exc)}")
                continue
            for blkno, offnum, attnum, msg in rows:
                where = f"block {blkno}" + (f", item {offnum}" if offnum is not None else "")
                where += f", column {attnum}" if attnum is not None else ""
                report.add(f"table {name} {where}: {msg}")
        report.checked = {"indexes": len(indexes), "tables": len(tables)}
    finally:
        if created:
            try:
                pg.execute("DROP EXTENSION IF EXISTS amcheck")
            except psycopg.Error as exc:
                log.warning("amcheck extension left in database=%s error=%s", database, _first_line(exc))
        pg.close()
    report.seconds = round(time.monotonic() - started, 3)
    log.info(
        "integrity checked database=%s indexes=%d tables=%d problems=%d seconds=%s",
        database,
        report.checked.get("indexes", 0),
        report.checked.get("tables", 0),
        len(report.problems) + report.more_problems,
        report.seconds,
    )
    return report


def _ensure_amcheck(pg: psycopg.Connection, conn: ConnectionInfo, database: str) -> bool:
    """Create the amcheck extension if it is missing; True when this call created it."""
    if pg.execute("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'").fetchone():
        return False
    try:
        pg.execute(sql.SQL("CREATE EXTENSION amcheck"))
    except psycopg.Error as exc:
        raise ToolError(
            f"cannot create the amcheck extension in {pg_tools.address(conn, database)}: {_first_line(exc)}",
            hint="The drill target's login must be allowed to CREATE EXTENSION amcheck (it ships with "
            "PostgreSQL; on Debian in postgresql-contrib before 10), e.g. the owner of the drill server",
        ) from None
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
