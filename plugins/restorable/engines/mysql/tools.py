"""MariaDB/MySQL client plumbing: connections, client programs, option files, child processes.

Passwords reach ``mariadb-dump``/``mysqldump`` and ``mariadb``/``mysql`` through a 0600 option
file given as ``--defaults-extra-file`` (the first argument), which lives only as long as the
child needs it; never ``-p...`` on the command line and never ``MYSQL_PWD`` (removed from the
child's environment in case the parent had it).
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import pymysql

from restorable.connections import ConnectionInfo
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


def scrub(text: str, conn: ConnectionInfo) -> str:
    """``text`` with the password removed, whatever produced it."""
    return text.replace(conn.password, "********") if conn.password else text


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
        password=conn.password or "",
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
    text = scrub(str(exc.args[1] if len(exc.args) > 1 else exc), conn)
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
def defaults_file(conn: ConnectionInfo) -> Iterator[str]:
    """A 0600 option file with the connection's user, password, host and port ([client] group)."""
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
    fd, path = tempfile.mkstemp(prefix="restorable-my-", suffix=".cnf")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        yield path
    finally:
        remove_quietly(path)


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_SECRETS}
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
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20, check=False)
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


# -- child processes -----------------------------------------------------------------------
class StreamTail:
    """Drains a child's stderr in a thread, keeping the last lines for error messages."""

    def __init__(self, stream: IO[bytes], tool: str, *, lines: int = 40) -> None:
        self._stream = stream
        self._tool = tool
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._thread = threading.Thread(target=self._run, name=f"{tool}-stderr", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for raw in iter(self._stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    self._lines.append(line)
                    log.info("tool_stderr tool=%s line=%s", self._tool, line)
        except (OSError, ValueError):
            pass

    def join(self, timeout: float | None = 30) -> None:
        self._thread.join(timeout)

    def text(self) -> str:
        return "\n".join(self._lines)


def exit_description(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Kill ``proc`` if still running and reap it."""
    if proc.poll() is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("process did not exit after SIGKILL pid=%s", proc.pid)
