"""``CHECK TABLE ... EXTENDED`` on a restored MariaDB/MySQL database: every table and its indexes.

EXTENDED makes InnoDB and MyISAM read every row and compare it with every index entry. A table
whose check says anything but OK at status level (an error, a "corrupt" or "crashed" warning)
is a problem named with the checker's own words. Views have no storage and are skipped.
"""

from __future__ import annotations

import logging
import time

import pymysql

from restorable.connections import ConnectionInfo
from restorable.engines.integrity import IntegrityReport
from restorable.engines.mysql.tools import connect, quote_ident

log = logging.getLogger(__name__)

METHOD = "CHECK TABLE ... EXTENDED"

_TABLES = (
    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' "
    "ORDER BY TABLE_NAME"
)


def check_integrity(conn: ConnectionInfo, database: str) -> IntegrityReport:
    """Run CHECK TABLE ... EXTENDED over every base table of ``database``."""
    started = time.monotonic()
    report = IntegrityReport(METHOD)
    db = connect(conn, database)
    try:
        with db.cursor() as cur:
            cur.execute(_TABLES, (database,))
            tables = [_text(row[0]) for row in cur.fetchall()]
            for table in tables:
                try:
                    # The name is quoted as an identifier: never substituted into other SQL text.
                    cur.execute(f"CHECK TABLE {quote_ident(database)}.{quote_ident(table)} EXTENDED")
                    rows = cur.fetchall()
                except pymysql.err.MySQLError as exc:
                    report.add(f"table {table}: {exc.args[-1] if exc.args else exc}")
                    continue
                for problem in _problems(rows):
                    report.add(f"table {table}: {problem}")
        report.checked = {"tables": len(tables)}
    finally:
        db.close()
    report.seconds = round(time.monotonic() - started, 3)
    log.info(
        "integrity checked database=%s tables=%d problems=%d seconds=%s",
        database,
        report.checked.get("tables", 0),
        len(report.problems) + report.more_problems,
        report.seconds,
    )
    return report


def _problems(rows: list[tuple]) -> list[str]:
    """The lines of a CHECK TABLE answer that are not a clean bill of health."""
    found = []
    for _table, _op, msg_type, msg_text in rows:
        kind, text = _text(msg_type).lower(), _text(msg_text)
        if kind == "status" and text.lower() == "ok":
            continue
        if kind in ("error", "status") or "corrupt" in text.lower() or "crashed" in text.lower():
            found.append(f"{kind}: {text}")
    return found


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
