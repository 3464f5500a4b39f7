"""MariaDB/MySQL client plumbing: connections, client programs, option files, child environments.

Passwords reach ``mariadb-dump``/``mysqldump`` and ``mariadb``/``mysql`` through an option file
given as ``--defaults-extra-file=/dev/fd/N`` (the first argument): an in-memory file the child
inherits (``engines.process.secret_file``), with no name on disk that could outlive the process;
never ``-p...`` on the command line and never ``MYSQL_PWD`` (removed from the child's environment
in case the parent had it).
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pymysql

from restorable.connections import ConnectionInfo
from restorable.engines import process
from restorable.exceptions import AuthenticationFailed, NotFound, SourceUnreachable, ToolError

log = logging.getLogger(__name__)

DEFAULT_PORT = 3306
CONNECT_TIMEOUT = 15
TOOL_HINT = "Install the MariaDB client (apt-get install mariadb-client) or MySQL's mysql-client"

# Server error codes (mysqld_error.h) and client codes (errmsg.h) that decide the exception.
_AUTH_ERRORS = {1045, 1698, 1862, 1251}
_DB_DENIED = 1044
_UNKNOWN_DB = 1049
_ENV_SECRETS = ("MYSQL_PWD", "MYSQL_HOST", "MYSQL_TCP_PORT", "MYSQL_UNIX_PORT")


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def address(conn: ConnectionInfo, database: str | None = None) -> str:
    """``host:port[/db]`` for messages (no user, no password)."""
    where = conn.extra.get("unix_socket") or f"{conn.host or 'localhost'}:{conn.port or DEFAULT_PORT}"
    return f"{where}/{database}" if database else str(where)


def _ssl_options(conn: ConnectionInfo) -> dict[str, str]:
    """Airflow's MySQL connections keep TLS settings as ``extra.ssl = {"ca":..., "cert":..., "key":...}``."""
    ssl = conn.extra.get("ssl")
    if isinstance(ssl, str):
        import json

        ssl = json.loads(ssl) if ssl.strip().startswith("{") else {}
    return {k: str(v) for k, v in (ssl or {}).items() if k in ("ca", "cert", "key") and v}


def connect(conn: ConnectionInfo, database: str | None = None, *, autocommit: bool = True) -> Any:
    """A PyMySQL connection (utf8mb4); errors become AuthenticationFailed/NotFound/SourceUnreachable."""
    kwargs: dict[str, Any] = dict(
        user=conn.login,
        # As bytes: PyMySQL encodes a str password as latin-1, which fails on "€" and sends other
        # bytes than the server hashed for "ä"; the server and the client programs use UTF-8.
        password=(conn.password or "").encode("utf-8"),
        database=database,
        charset="utf8mb4",
        autocommit=autocommit,
        connect_timeout=int(conn.extra.get("connect_timeout", CONNECT_TIMEOUT)),
    )
    if conn.extra.get("unix_socket"):
        kwargs["unix_socket"] = conn.extra["unix_socket"]
    else:
        kwargs["host"] = conn.host or "localhost"
        kwargs["port"] = int(conn.port or DEFAULT_PORT)
    ssl = _ssl_options(conn)
    if ssl:
        kwargs["ssl"] = ssl
    try:
        return pymysql.connect(**kwargs)
    except pymysql.err.MySQLError as exc:
        raise connection_error(exc, conn, database) from None


def connection_error(exc: Exception, conn: ConnectionInfo, database: str | None) -> Exception:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = process.scrub(str(exc.args[1] if len(exc.args) > 1 else exc), conn)
    where = address(conn, database)
    if code in _AUTH_ERRORS:
        return AuthenticationFailed(
            f"MySQL server {where} refused the credentials of user {conn.login!r}: {text}",
            database=database,
            hint=f"Check login and password of connection {conn.conn_id!r}",
        )
    if code == _UNKNOWN_DB:
        return NotFound(f"database {database!r} does not exist on {where}", database=database)
    if code == _DB_DENIED:
        return AuthenticationFailed(
            f"user {conn.login!r} may not use database {database!r} on {where}: {text}",
            database=database,
            hint="GRANT the backup user access to the database",
        )
    return SourceUnreachable(
        f"cannot reach MySQL server {where}: {text}",
        database=database,
        hint=f"Check host, port and network path of connection {conn.conn_id!r}",
    )


# -- option file ---------------------------------------------------------------------------
def _option_value(value: str) -> str:
    """A value for a MySQL option file: double-quoted, with backslash escapes."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@contextmanager
def defaults_file(conn: ConnectionInfo) -> Iterator[process.SecretFile]:
    """An in-memory option file with the connection's user, password, host and port ([client]
    group); start the child with ``pass_fds=cnf.pass_fds`` and ``--defaults-extra-file=cnf.path``."""
    lines = ["[client]"]
    if conn.login:
        lines.append(f"user={_option_value(conn.login)}")
    if conn.password:
        lines.append(f"password={_option_value(conn.password)}")
    if conn.extra.get("unix_socket"):
        lines += [f"socket={_option_value(str(conn.extra['unix_socket']))}", "protocol=SOCKET"]
    else:
        # host=localhost would silently mean "the local socket" to the client tools.
        lines += [
            f"host={_option_value(conn.host or 'localhost')}",
            f"port={int(conn.port or DEFAULT_PORT)}",
            "protocol=TCP",
        ]
    for key, value in _ssl_options(conn).items():
        lines.append(f"ssl-{key}={_option_value(value)}")
    with process.secret_file("\n".join(lines) + "\n", "my.cnf") as cnf:
        yield cnf


def child_env() -> dict[str, str]:
    """Environment for a client program: the client's own ``MYSQL_*`` variables without the
    password and the address ones (the option file says where to connect), UTF-8 messages
    (see ``engines.process.child_env`` for what else passes)."""
    env = process.child_env(tool_prefixes=("MYSQL_",), remove=_ENV_SECRETS)
    env.setdefault("LC_ALL", "C.UTF-8")
    return env


# -- client programs -----------------------------------------------------------------------
@dataclass(frozen=True)
class ClientTool:
    path: str
    name: str
    version: str
    #: "mariadb" or "mysql": whose client this is (options differ).
    flavour: str


@functools.cache
def _probe(name: str) -> ClientTool | None:
    path = shutil.which(name)
    if not path:
        return None
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=20, check=False, env=child_env()
        )
    except OSError:
        return None
    text = (out.stdout or out.stderr).strip()
    match = re.search(r"Distrib\s+([0-9][\w.\-]*)", text) or re.search(r"Ver\s+([0-9][\w.\-]*)", text)
    flavour = "mariadb" if "mariadb" in text.lower() else "mysql"
    version = match.group(1).rstrip(",") if match else text
    return ClientTool(path=path, name=name, version=version, flavour=flavour)


def find_tool(kind: str, server_flavour: str) -> ClientTool:
    """The dump (``kind="dump"``) or client (``kind="client"``) program that fits the server.

    MariaDB servers get MariaDB's programs first, MySQL servers MySQL's; the other flavour's
    is accepted (with a warning) when it is all that is installed.
    """
    names = ("mariadb-dump", "mysqldump") if kind == "dump" else ("mariadb", "mysql")
    found = [tool for tool in (_probe(n) for n in names) if tool is not None]
    if not found:
        raise ToolError(f"no {' or '.join(names)} program found on PATH", hint=TOOL_HINT)
    same = [t for t in found if t.flavour == server_flavour]
    if same:
        return same[0]
    log.warning(
        "mysql tool flavour differs from server tool=%s tool_flavour=%s server_flavour=%s",
        found[0].name,
        found[0].flavour,
        server_flavour,
    )
    return found[0]


def server_flavour(version: str) -> str:
    return "mariadb" if "mariadb" in version.lower() else "mysql"


def version_tuple(version: str) -> tuple[int, ...]:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return tuple(int(p) for p in match.groups() if p is not None) if match else (0,)


def kill_query(conn: ConnectionInfo, database: str | None, session: Any) -> None:
    """Interrupt what ``session`` is running (a long count) from a connection of its own."""
    killer = connect(conn, database)
    try:
        with killer.cursor() as cur:
            cur.execute(f"KILL QUERY {int(session.thread_id())}")
    finally:
        killer.close()
