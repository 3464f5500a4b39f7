"""PostgreSQL client plumbing: connections, client binaries, password files, child environments.

Passwords reach ``pg_dump``/``pg_restore`` through ``PGPASSFILE=/dev/fd/N``, an in-memory pgpass
file inherited by the child (``engines.process.secret_file``): never a file with a name on disk,
so none can outlive the process. The child's environment holds the path, never the password, and
``PGPASSWORD`` is removed from it in case the parent had one.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from restorable.connections import ConnectionInfo
from restorable.engines import process
from restorable.exceptions import AuthenticationFailed, NotFound, SourceUnreachable, ToolError

log = logging.getLogger(__name__)

#: Where Debian/Ubuntu install each major version's client binaries.
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
#: Connection extras passed on to libpq (psycopg and the client tools alike).
LIBPQ_EXTRAS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "target_session_attrs")
APPLICATION_NAME = "restorable"
CONNECT_TIMEOUT = 15

_AUTH_SQLSTATES = {"28P01", "28000"}
_AUTH_TEXT = re.compile(r"password authentication failed|no password supplied|authentication failed", re.I)


# ---------------------------------------------------------------------------------------- versions
def version_major(version: str) -> tuple[int, ...]:
    """The major version of a PostgreSQL version string: ``"15.20"`` -> (15,), ``"9.6.24"`` -> (9, 6).

    Accepts what ``server_version`` and ``--version`` print (``"16beta1"``, ``"15.4 (Debian ...)"``).
    """
    numbers = [int(n) for n in re.findall(r"\d+", version.split()[0])[:2]] if version.strip() else []
    if not numbers:
        raise ValueError(f"not a PostgreSQL version: {version!r}")
    return tuple(numbers[:2]) if numbers[0] < 10 else (numbers[0],)


def major_label(version: str) -> str:
    return ".".join(str(n) for n in version_major(version))


def dump_tool_too_old(tool_version: str, server_version: str) -> bool:
    """Whether a client tool of ``tool_version`` is older (by major) than ``server_version``.

    pg_dump refuses servers of a newer major version, and pg_restore cannot read archives made by
    a newer pg_dump; a newer tool handles older servers and archives.
    """
    return version_major(tool_version) < version_major(server_version)


def parse_tool_version(output: str) -> str:
    """``"pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"`` -> ``"15.20"``."""
    match = re.search(r"\)\s+(\d+(?:\.\d+)*\w*)", output) or re.search(r"(\d+(?:\.\d+)+)", output)
    if not match:
        raise ToolError(f"cannot read a version from {output.strip()!r}")
    return match.group(1)


@functools.cache
def tool_version(path: str) -> str:
    """The version a client binary reports."""
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=True, env=child_env(None)
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolError(f"cannot run {path} --version: {exc}") from exc
    return parse_tool_version(out.stdout)


def _installed_majors() -> list[int]:
    if not DEBIAN_PG_ROOT.is_dir():
        return []
    return sorted((int(p.name) for p in DEBIAN_PG_ROOT.iterdir() if p.name.isdigit()), reverse=True)


def find_pg_binary(name: str, server_major: int | None = None) -> str:
    """Path of client binary ``name``, preferring the one of the server's major version.

    Order: ``$RESTORABLE_PG_BINDIR``; ``/usr/lib/postgresql/<server major>/bin``; the newest
    installed major above the server's; ``PATH``; then any older installed major (which the version
    check will refuse with an explicit message). Without ``server_major``, the newest installed.
    """
    env_dir = os.environ.get("RESTORABLE_PG_BINDIR")
    if env_dir:
        candidate = Path(env_dir) / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
        raise ToolError(f"{name} not found in RESTORABLE_PG_BINDIR={env_dir}")
    majors = _installed_majors()

    def in_major(major: int) -> str | None:
        candidate = DEBIAN_PG_ROOT / str(major) / "bin" / name
        return str(candidate) if os.access(candidate, os.X_OK) else None

    if server_major is not None and (found := in_major(server_major)):
        return found
    for major in majors:
        if server_major is None or major > server_major:
            if found := in_major(major):
                return found
    if found := shutil.which(name):
        return found
    for major in majors:
        if found := in_major(major):
            return found
    package = f"postgresql-client-{server_major}" if server_major else "postgresql-client"
    raise ToolError(f"{name} is not installed", hint=f"Install {package} (or set RESTORABLE_PG_BINDIR)")


def server_major_number(version_num: int) -> int:
    """``server_version_num`` -> the number Debian uses for the directory: 150020 -> 15, 90624 -> 9."""
    return version_num // 10000


def check_tool_for(tool: str, path: str, version: str, server_version: str, what: str) -> None:
    """Raise ``ToolError`` when ``tool`` at ``path`` is older than ``server_version`` (of ``what``)."""
    if dump_tool_too_old(version, server_version):
        major = major_label(server_version)
        raise ToolError(
            f"local {tool} {version} ({path}) is older than the {what} {server_version}",
            hint=f"install postgresql-client-{major} (or set RESTORABLE_PG_BINDIR to its bin directory)",
        )


# ------------------------------------------------------------------------------------- connections
def address(conn: ConnectionInfo, database: str | None = None) -> str:
    """``host:port/db`` for messages: never the password."""
    host = conn.host or "local socket"
    port = conn.port or 5432
    db = database if database is not None else conn.schema
    return f"{host}:{port}/{db}" if db else f"{host}:{port}"


def connect(conn: ConnectionInfo, database: str, *, autocommit: bool = True) -> psycopg.Connection:
    """Open a psycopg connection to ``database`` with errors mapped to Restorable's."""
    kwargs: dict[str, object] = {
        "host": conn.host,
        "port": conn.port,
        "user": conn.login,
        "password": conn.password,
        "dbname": database,
        "connect_timeout": int(conn.extra.get("connect_timeout", CONNECT_TIMEOUT)),
        "application_name": APPLICATION_NAME,
    }
    kwargs.update({k: conn.extra[k] for k in LIBPQ_EXTRAS if conn.extra.get(k)})
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        return psycopg.connect(autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        text = process.scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc), conn)
        where = address(conn, database)
        if exc.sqlstate in _AUTH_SQLSTATES or _AUTH_TEXT.search(str(exc)):
            raise AuthenticationFailed(
                f"PostgreSQL at {where} refused the credentials of user {conn.login!r}: {text}",
                database=database,
                hint="Check the login and password of the connection",
            ) from None
        if exc.sqlstate == "3D000" or "does not exist" in text and "database" in text:
            raise NotFound(f"database {database!r} does not exist on {address(conn, '')}: {text}") from None
        raise SourceUnreachable(
            f"cannot connect to PostgreSQL at {where}: {text}",
            database=database,
            hint="Check that the server is running and reachable from this machine (host, port, firewall)",
        ) from None


def maintenance_database(conn: ConnectionInfo) -> str:
    """The database to connect to for CREATE/DROP DATABASE (``extra.maintenance_database``)."""
    return str(conn.extra.get("maintenance_database") or "postgres")


# ------------------------------------------------------------------------------- password file, env
def _pgpass_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextmanager
def password_file(conn: ConnectionInfo) -> Iterator[process.SecretFile | None]:
    """An in-memory pgpass file holding the connection's password (None if there is none); start
    the child with ``pass_fds=pass_fds(passfile)``."""
    if not conn.password:
        yield None
        return
    # Host, port and database are wildcards: the file serves this block's children only.
    line = f"*:*:*:{_pgpass_escape(conn.login or '*')}:{_pgpass_escape(conn.password)}\n"
    with process.secret_file(line, "pgpass") as passfile:
        yield passfile


def pass_fds(passfile: process.SecretFile | None) -> tuple[int, ...]:
    """What ``subprocess.Popen(pass_fds=...)`` needs for the child to open ``passfile``."""
    return passfile.pass_fds if passfile else ()


def child_env(passfile: process.SecretFile | None) -> dict[str, str]:
    """Environment for a client tool: libpq's own variables without the password ones, the pgpass
    path if any (see ``engines.process.child_env`` for what else passes)."""
    env = process.child_env(tool_prefixes=("PG", "KRB5"), remove=("PGPASSWORD", "PGPASSFILE"))
    if passfile:
        env["PGPASSFILE"] = passfile.path
    env["PGAPPNAME"] = APPLICATION_NAME
    env.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT))
    return env


def connection_args(conn: ConnectionInfo, database: str) -> list[str]:
    """``-h -p -U -d`` for a client tool; SSL extras go into a conninfo string for ``-d``."""
    args: list[str] = []
    if conn.host:
        args += ["-h", conn.host]
    if conn.port:
        args += ["-p", str(conn.port)]
    if conn.login:
        args += ["-U", conn.login]
    extras = {k: str(conn.extra[k]) for k in LIBPQ_EXTRAS if conn.extra.get(k)}
    if extras:
        from psycopg.conninfo import make_conninfo

        args += ["-d", make_conninfo(dbname=database, **extras)]
    else:
        args += ["-d", database]
    return args


def rollback_quietly(pg: psycopg.Connection) -> None:
    """End a read-only transaction; a connection already broken has nothing left to end."""
    try:
        pg.execute("ROLLBACK")
    except psycopg.Error:
        pass
