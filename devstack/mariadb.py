"""A throwaway MariaDB server: mariadb-install-db into a fresh directory, mariadbd on a free port.

``root`` gets a random password (TCP and socket alike), the binary log is on by default (ROW
format, for dumps that record their binlog position and for later point-in-time work), and the
event scheduler runs, so the sample database's event is a real one.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devstack import HOST, file_tail, find_program, is_zombie, run_command
from devstack.ports import free_port
from restorable.connections import ConnectionInfo
from restorable.exceptions import SourceUnreachable, ToolError

log = logging.getLogger(__name__)

PACKAGE_HINT = "apt-get install mariadb-server (10.11: mariadbd, mariadb-install-db)"
_START_ATTEMPTS = 5
_SOCKET_PATH_LIMIT = 100


def _quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class MariaDBServer:
    """A MariaDB server of its own on 127.0.0.1 and a free port; ``root`` with a random password."""

    def __init__(self, state_dir: Path, *, name: str = "mariadb", port: int | None = None, binlog: bool = True) -> None:
        self.state_dir = Path(state_dir)
        self.name = name
        self.host = HOST
        self.port: int | None = port
        self._fixed_port = port is not None
        self.binlog = binlog
        self.password = secrets.token_urlsafe(24)
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._socket_dir: Path | None = None

    # -- paths ---------------------------------------------------------------------------
    @property
    def base_dir(self) -> Path:
        return self.state_dir / self.name

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_path(self) -> Path:
        return (self._socket_dir or self.base_dir) / "mariadb.sock"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "error.log"

    @property
    def pid_file(self) -> Path:
        return self.base_dir / "mariadbd.pid"

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> MariaDBServer:
        """Install a fresh data directory, start mariadbd and set root's password."""
        if self.pid is not None:
            return self
        started = time.monotonic()
        mariadbd = find_program("mariadbd", package=PACKAGE_HINT, extra_dirs=["/usr/sbin"])
        install_db = find_program("mariadb-install-db", package=PACKAGE_HINT, extra_dirs=["/usr/bin"])
        if self.base_dir.exists():
            shutil.rmtree(self.base_dir)
        self.base_dir.mkdir(parents=True, mode=0o700)
        (self.base_dir / "tmp").mkdir()
        if len(str(self.base_dir / "mariadb.sock")) > _SOCKET_PATH_LIMIT:
            self._socket_dir = Path(tempfile.mkdtemp(prefix=f"restorable-{self.name}-"))
        try:
            argv = [
                install_db,
                "--no-defaults",
                f"--datadir={self.data_dir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                # Its own temporary directory, as the server has: two bootstraps running at once
                # (the demo stack starts source and drill servers together) failed on a temporary
                # table gone from the shared /tmp ("Could not remove temporary table").
                f"--tmpdir={self.base_dir / 'tmp'}",
            ]
            if os.geteuid() == 0:
                argv.append("--user=root")
            run_command(argv, what=f"mariadb-install-db for throwaway MariaDB {self.name!r}", timeout=180)
            self._start_with_retries(mariadbd)
            self._set_root_password()
        except BaseException:
            self._terminate()
            self._cleanup_files()
            raise
        log.info(
            "mariadb started name=%s port=%s pid=%s seconds=%.2f",
            self.name,
            self.port,
            self.pid,
            time.monotonic() - started,
        )
        return self

    def _server_argv(self, mariadbd: str) -> list[str]:
        argv = [
            mariadbd,
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--socket={self.socket_path}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.log_file}",
            f"--tmpdir={self.base_dir / 'tmp'}",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            "--event-scheduler=ON",
            "--innodb-buffer-pool-size=512M",
            "--innodb-log-file-size=512M",
            # Throwaway servers: durability is not wanted, speed is.
            "--innodb-flush-log-at-trx-commit=2",
            "--innodb-doublewrite=0",
            "--sync-binlog=0",
            "--max-allowed-packet=256M",
            "--max-connections=100",
        ]
        if os.geteuid() == 0:
            argv.insert(2, "--user=root")
        if self.binlog:
            argv += [f"--log-bin={self.data_dir / 'mariadb-bin'}", "--server-id=1", "--binlog-format=ROW"]
        return argv

    def _start_with_retries(self, mariadbd: str) -> None:
        last_error = ""
        for _attempt in range(_START_ATTEMPTS):
            if not self._fixed_port:
                self.port = free_port()
            log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            self._proc = subprocess.Popen(
                self._server_argv(mariadbd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.pid = self._proc.pid
            if self._wait_ready(timeout=90):
                return
            last_error = file_tail(self.log_file)
            self._terminate()
            new_log = self._log_since(log_offset)
            if self._fixed_port or not ("already in use" in new_log or "Do you already have" in new_log):
                break
            log.info("mariadb port taken, retrying name=%s port=%s", self.name, self.port)
        raise ToolError(
            f"throwaway MariaDB {self.name!r} did not start on port {self.port}: {last_error}",
            hint=f"Look at {self.log_file}",
        )

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _wait_ready(self, timeout: float) -> bool:
        import pymysql

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                return False
            if self.socket_path.exists():
                try:
                    pymysql.connect(
                        unix_socket=str(self.socket_path), user="root", password="", connect_timeout=2
                    ).close()
                    return True
                except pymysql.err.OperationalError:
                    pass
            time.sleep(0.1)
        return False

    def _set_root_password(self) -> None:
        import pymysql

        conn = pymysql.connect(unix_socket=str(self.socket_path), user="root", password="", autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT user, host FROM mysql.user WHERE user IN ('root', '')")
                accounts = list(cur.fetchall())
                for user, host in accounts:
                    if user == "root" and host in ("localhost", "127.0.0.1", "::1"):
                        cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, self.password))
                    else:
                        # Anonymous users, and root@<hostname> (which skip-name-resolve cannot
                        # even address with DROP USER): neither should be able to log in.
                        cur.execute("DELETE FROM mysql.global_priv WHERE user = %s AND host = %s", (user, host))
                if ("root", "127.0.0.1") not in accounts:
                    cur.execute("CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY %s", (self.password,))
                    cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
                cur.execute("FLUSH PRIVILEGES")
        finally:
            conn.close()

    def is_running(self) -> bool:
        if self.pid is None:
            return False
        if self._proc is not None:
            return self._proc.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _terminate(self, grace: float = 60) -> None:
        if self.pid is None:
            return
        # SIGTERM is mariadbd's clean shutdown. It leads a process group of its own
        # (start_new_session), so signal the group: nothing it started may stay behind.
        _signal_group(self.pid, signal.SIGTERM)
        if not self._wait_gone(grace):
            log.warning("mariadb did not stop in time, killing name=%s pid=%s", self.name, self.pid)
            _signal_group(self.pid, signal.SIGKILL)
            self._wait_gone(10)
        self.pid = None
        self._proc = None

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None:
                if self._proc.poll() is not None:
                    return True
            else:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    return True
                if is_zombie(self.pid):
                    return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM, SIGKILL after 60 s) and remove the data. Idempotent."""
        self._terminate()
        self._cleanup_files()
        log.info("mariadb stopped name=%s port=%s", self.name, self.port)

    def _cleanup_files(self) -> None:
        shutil.rmtree(self.base_dir, ignore_errors=True)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def __enter__(self) -> MariaDBServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- a record for processes that outlive us (the demo stack) -------------------------
    def to_record(self) -> dict[str, Any]:
        return {
            "kind": "mariadb",
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "password": self.password,
            "pid": self.pid,
            "state_dir": str(self.state_dir),
            "socket_dir": str(self._socket_dir) if self._socket_dir else None,
            "binlog": self.binlog,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> MariaDBServer:
        server = cls(
            Path(record["state_dir"]), name=record["name"], port=record["port"], binlog=record.get("binlog", True)
        )
        server.password = record["password"]
        server.pid = record.get("pid")
        server._socket_dir = Path(record["socket_dir"]) if record.get("socket_dir") else None
        return server

    # -- talking to it -------------------------------------------------------------------
    def connection(
        self, database: str = "mysql", login: str = "root", *, password: str | None = None
    ) -> ConnectionInfo:
        """Connection details for ``database`` (root's password unless another is given)."""
        if password is None and login == "root":
            password = self.password
        return ConnectionInfo(
            conn_id=self.name,
            conn_type="mysql",
            host=self.host,
            port=self.port,
            login=login,
            password=password,
            schema=database,
        )

    def connect(self, database: str | None = None):
        """A PyMySQL connection as root over TCP, autocommit (caller closes it)."""
        import pymysql

        try:
            return pymysql.connect(
                host=self.host,
                port=self.port,
                user="root",
                password=self.password,
                database=database,
                autocommit=True,
                charset="utf8mb4",
                connect_timeout=10,
            )
        except pymysql.err.OperationalError as exc:
            raise SourceUnreachable(
                f"cannot connect to throwaway MariaDB {self.name!r} on port {self.port}: {exc}",
                database=database,
            ) from None

    def execute(self, sql: str, params: Sequence[Any] | None = None, *, database: str | None = None) -> None:
        """Run one statement."""
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
        finally:
            conn.close()

    def query(self, sql: str, params: Sequence[Any] | None = None, *, database: str | None = None) -> list[tuple]:
        """Rows of one query."""
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def create_database(self, name: str) -> ConnectionInfo:
        self.execute(f"CREATE DATABASE {_quote_ident(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        return self.connection(name)

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)}")

    def __repr__(self) -> str:
        return f"MariaDBServer(name={self.name!r}, port={self.port}, pid={self.pid})"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group ``pid`` leads, or just ``pid`` if it leads none."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass
