"""The application's own view of a restored copy: log in as its role, run the queries it needs.

Counts and schema can match while the application still cannot work: its role is missing on
the restore server, lost its grants, or cannot log in. The drill proves the opposite by logging
in as that role (password from a connection) to the restored copy and running a few smoke
queries the database's config names. Each query runs in one transaction that is rolled back,
so a query that writes changes nothing (the copy is a scratch database anyway).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from restorable.config import SmokeQuery
from restorable.connections import ConnectionInfo
from restorable.engines.base import Engine
from restorable.exceptions import RestorableError

#: How much of a query a message shows.
SHOWN_SQL = 80


def run_smoke_queries(engine: Engine, conn: ConnectionInfo, queries: Sequence[SmokeQuery]) -> dict[str, Any]:
    """Log in as ``conn.login`` to ``conn.schema`` and run ``queries``; never raises for a failure:
    the result's ``ok`` and ``problems`` say it (each problem names the role and the query)."""
    started = time.monotonic()
    role, database = conn.login, conn.schema
    problems: list[str] = []
    results: list[dict[str, Any]] = []
    try:
        session = engine.open_session(conn)
    except RestorableError as exc:
        problems.append(f"the application role {role!r} cannot log in to {database!r}: {exc.message}")
        return _result(role, problems, results, started)
    try:
        for query in queries:
            shown = _short(query.sql)
            t0 = time.monotonic()
            cursor = session.cursor()
            try:
                cursor.execute(query.sql)
                found = bool(cursor.fetchmany(1)) if cursor.description else False
            except Exception as exc:  # the application's SQL: any driver error is the finding
                problems.append(f"query {shown!r} failed as {role!r}: {_first_line(exc)}")
                session.rollback()
                continue
            finally:
                cursor.close()
            if query.expect_rows and not found:
                problems.append(f"query {shown!r} returned no rows as {role!r}, rows were expected")
            results.append({"sql": shown, "rows": found, "seconds": round(time.monotonic() - t0, 3)})
            session.rollback()
    finally:
        session.close()
    return _result(role, problems, results, started)


def _result(role: str | None, problems: list[str], results: list[dict[str, Any]], started: float) -> dict[str, Any]:
    return {
        "ok": not problems,
        "role": role,
        "queries": results,
        "problems": problems,
        "seconds": round(time.monotonic() - started, 3),
    }


def _short(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= SHOWN_SQL else text[: SHOWN_SQL - 1] + "…"


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[-1] if exc.args and isinstance(exc.args[-1], str) else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
