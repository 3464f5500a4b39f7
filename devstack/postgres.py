"""A throwaway PostgreSQL server: initdb into a fresh directory, start on a free port, remove on stop.

The server requires scram-sha-256 passwords on every connection (TCP and socket), so the
password-file handling of the engines is exercised for real. It runs as the ``postgres``
system user because initdb and pg_ctl refuse to run as root.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devstack import HOST, file_tail, run_command, stderr_tail
from devstack.ports import free_port
from restorable.connections import ConnectionInfo
from restorable.exceptions import SourceUnreachable, ToolError

log = logging.getLogger(__name__)

PACKAGE_HINT = "apt-get install postgresql-15 (Debian: it provides initdb and pg_ctl under /usr/lib/postgresql/15/bin)"
_SYSTEM_USER = "postgres"
_START_ATTEMPTS = 5


def postgres_bindir() -> Path:
    """The directory holding initdb/pg_ctl/postgres (``RESTORABLE_PG_BINDIR``, pg_config, Debian's path)."""
    candidates: list[Path] = []
    if os.environ.get("RESTORABLE_PG_BINDIR"):
        candidates.append(Path(os.environ["RESTORABLE_PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.TimeoutExpired):
            pass
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    raise ToolError(
        f"PostgreSQL server programs (initdb, pg_ctl) not found in {', '.join(map(str, candidates))}",
        hint=f"Install them: {PACKAGE_HINT}, or set RESTORABLE_PG_BINDIR",
    )


def _reachable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """True when ``user`` can traverse every directory from / down to ``path``."""
    groups = {user.pw_gid} | {g for g in os.getgrouplist(user.pw_name, user.pw_gid)}
    for directory in [path, *path.parents]:
        try:
            st = directory.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


class PostgresServer:
    """A PostgreSQL server of its own, on 127.0.0.1 and a free port, superuser ``postgres``.

    Use as a context manager, or call ``start()`` and ``stop()``. ``stop()`` removes every file.
    """

    def __init__(self, state_dir: Path, *, name: str = "pg", port: int | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.name = name
        self.host = HOST
        self.port: int | None = port
        self._fixed_port = port is not None
        self.password = secrets.token_urlsafe(24)
        self.base_dir: Path | None = None
        self._owns_tmp_base = False
        self.pid: int | None = None

    # -- paths --------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir

    @property
    def log_file(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "server.log"

    @property
    def bindir(self) -> Path:
        return postgres_bindir()

    def _as_postgres(self, argv: Sequence[str]) -> list[str]:
        if os.geteuid() != 0:
            return list(argv)
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        return [runuser, "-u", _SYSTEM_USER, "--", *argv]

    def _prepare_base_dir(self) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            base = self.state_dir / self.name
            if base.exists():
                shutil.rmtree(base)
            base.mkdir(mode=0o700)
            return base
        try:
            user = pwd.getpwnam(_SYSTEM_USER)
        except KeyError:
            raise ToolError(f"system user {_SYSTEM_USER!r} does not exist", hint=f"Install {PACKAGE_HINT}") from None
        if _reachable_by(self.state_dir.resolve(), user):
            base = self.state_dir / self.name
            if base.exists():
                shutil.rmtree(base)
            base.mkdir(mode=0o700)
        else:
            # pytest's tmp dirs are 0700 root: the postgres user could not reach a cluster there.
            base = Path(tempfile.mkdtemp(prefix=f"restorable-{self.name}-"))
            self._owns_tmp_base = True
            (self.state_dir / f"{self.name}.location").write_text(str(base) + "\n")
        os.chown(base, user.pw_uid, user.pw_gid)
        os.chmod(base, 0o700)
        return base

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> PostgresServer:
        """initdb and start; returns self once the server accepts connections."""
        if self.pid is not None:
            return self
        started = time.monotonic()
        bindir = postgres_bindir()
        self.base_dir = self._prepare_base_dir()
        try:
            self._initdb(bindir)
            self._start_with_retries(bindir)
        except BaseException:
            self._cleanup_files()
            raise
        log.info(
            "postgres started name=%s port=%s pid=%s seconds=%.2f",
            self.name,
            self.port,
            self.pid,
            time.monotonic() - started,
        )
        return self

    def _initdb(self, bindir: Path) -> None:
        pwfile = self.base_dir / "initdb.pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.password + "\n")
        if os.geteuid() == 0:
            user = pwd.getpwnam(_SYSTEM_USER)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        try:
            run_command(
                self._as_postgres(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        "postgres",
                        f"--pwfile={pwfile}",
                        "--auth-host=scram-sha-256",
                        "--auth-local=scram-sha-256",
                        "--encoding=UTF8",
                        "--locale=C.UTF-8",
                        "--no-sync",
                        "--no-instructions",
                    ]
                ),
                what=f"initdb for throwaway PostgreSQL {self.name!r}",
                timeout=180,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "password_encryption": "'scram-sha-256'",
            # Throwaway servers: durability is not wanted, speed is.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_wal_size": "'4GB'",
            "checkpoint_timeout": "'30min'",
            "shared_buffers": "'128MB'",
            "max_connections": "60",
            "wal_level": "replica",
            "max_wal_senders": "4",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
            "include_if_exists": "'port.conf'",
        }
        with open(self.data_dir / "postgresql.conf", "a") as fh:
            fh.write("\n# restorable localstack\n")
            for key, value in settings.items():
                fh.write(f"{key} = {value}\n")
        (self.data_dir / "pg_hba.conf").write_text(
            "# restorable localstack: passwords everywhere\n"
            "local   all          all                 scram-sha-256\n"
            "host    all          all   127.0.0.1/32  scram-sha-256\n"
            "host    replication  all   127.0.0.1/32  scram-sha-256\n"
        )

    def _start_with_retries(self, bindir: Path) -> None:
        last_error = ""
        for _attempt in range(_START_ATTEMPTS):
            if not self._fixed_port:
                self.port = free_port()
            port_conf = self.data_dir / "port.conf"
            port_conf.write_text(f"port = {self.port}\n")
            if os.geteuid() == 0:
                user = pwd.getpwnam(_SYSTEM_USER)
                os.chown(port_conf, user.pw_uid, user.pw_gid)
            proc = subprocess.run(
                self._as_postgres(
                    [
                        str(bindir / "pg_ctl"),
                        "start",
                        "-D",
                        str(self.data_dir),
                        "-l",
                        str(self.log_file),
                        "-w",
                        "-t",
                        "90",
                    ]
                ),
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=120,
            )
            if proc.returncode == 0:
                self.pid = self._read_postmaster_pid()
                return
            last_error = file_tail(self.log_file) or stderr_tail(proc.stderr)
            if self._fixed_port or "Address already in use" not in last_error:
                break
            log.info("postgres port taken, retrying name=%s port=%s", self.name, self.port)
        raise ToolError(
            f"throwaway PostgreSQL {self.name!r} did not start on port {self.port}: {last_error}",
            hint=f"Look at {self.log_file}",
        )

    def _read_postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def is_running(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def restart_with(self, while_stopped: Callable[[], None]) -> None:
        """Stop the server cleanly, keeping its files, run ``while_stopped`` (e.g. damage a file
        on disk as a storage fault would), and start it again on the same port."""
        assert self.pid is not None, "server not started"
        run_command(
            self._as_postgres(
                [str(postgres_bindir() / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"]
            ),
            what=f"pg_ctl stop for throwaway PostgreSQL {self.name!r}",
            timeout=90,
        )
        self.pid = None
        while_stopped()
        fixed, self._fixed_port = self._fixed_port, True
        try:
            self._start_with_retries(postgres_bindir())
        finally:
            self._fixed_port = fixed

    def stop(self) -> None:
        """Stop (fast shutdown) and remove the cluster. Safe to call twice."""
        if self.base_dir is None:
            return
        if self.data_dir.exists() and self.is_running():
            try:
                run_command(
                    self._as_postgres(
                        [
                            str(postgres_bindir() / "pg_ctl"),
                            "stop",
                            "-D",
                            str(self.data_dir),
                            "-m",
                            "fast",
                            "-w",
                            "-t",
                            "60",
                        ]
                    ),
                    what=f"pg_ctl stop for throwaway PostgreSQL {self.name!r}",
                    timeout=90,
                )
            except ToolError as exc:
                log.warning("postgres stop failed, killing name=%s error=%s", self.name, exc)
        if self.pid is not None and self.is_running():
            # Immediate shutdown, then the hard way.
            _signal(self.pid, signal.SIGQUIT)
            _wait_gone(self.pid, 10) or _signal(self.pid, signal.SIGKILL)
            _wait_gone(self.pid, 10)
        self.pid = None
        self._cleanup_files()
        log.info("postgres stopped name=%s port=%s", self.name, self.port)

    def _cleanup_files(self) -> None:
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            if self._owns_tmp_base:
                (self.state_dir / f"{self.name}.location").unlink(missing_ok=True)
        self.base_dir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- a record for processes that outlive us (the demo stack) -------------------------
    def to_record(self) -> dict[str, Any]:
        return {
            "kind": "postgres",
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "password": self.password,
            "pid": self.pid,
            "base_dir": str(self.base_dir) if self.base_dir else None,
            "owns_tmp_base": self._owns_tmp_base,
            "state_dir": str(self.state_dir),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PostgresServer:
        server = cls(Path(record["state_dir"]), name=record["name"], port=record["port"])
        server.password = record["password"]
        server.pid = record.get("pid")
        server.base_dir = Path(record["base_dir"]) if record.get("base_dir") else None
        server._owns_tmp_base = bool(record.get("owns_tmp_base"))
        return server

    # -- talking to it -------------------------------------------------------------------
    def connection(
        self, database: str = "postgres", login: str = "postgres", *, password: str | None = None
    ) -> ConnectionInfo:
        """Connection details for ``database`` (the superuser's password unless another is given)."""
        if password is None and login == "postgres":
            password = self.password
        return ConnectionInfo(
            conn_id=self.name,
            conn_type="postgres",
            host=self.host,
            port=self.port,
            login=login,
            password=password,
            schema=database,
        )

    def connect(self, database: str = "postgres", *, autocommit: bool = True):
        """A psycopg 3 connection as the superuser (caller closes it)."""
        import psycopg

        try:
            return psycopg.connect(
                host=self.host,
                port=self.port,
                user="postgres",
                password=self.password,
                dbname=database,
                autocommit=autocommit,
                connect_timeout=10,
            )
        except psycopg.OperationalError as exc:
            raise SourceUnreachable(
                f"cannot connect to throwaway PostgreSQL {self.name!r} on port {self.port}: {exc}",
                database=database,
            ) from None

    def execute(self, sql: str, params: Sequence[Any] | None = None, *, database: str = "postgres") -> None:
        """Run one statement (or several, without params) in autocommit mode."""
        with self.connect(database) as conn:
            conn.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] | None = None, *, database: str = "postgres") -> list[tuple]:
        """Rows of one query."""
        with self.connect(database) as conn:
            return conn.execute(sql, params).fetchall()

    def create_database(self, name: str, *, template: str | None = None) -> ConnectionInfo:
        from psycopg import sql

        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt = sql.SQL("{} TEMPLATE {}").format(stmt, sql.Identifier(template))
        with self.connect() as conn:
            conn.execute(stmt)
        return self.connection(name)

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def __repr__(self) -> str:
        return f"PostgresServer(name={self.name!r}, port={self.port}, pid={self.pid})"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False
