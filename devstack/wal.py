"""A throwaway PostgreSQL server that archives WAL into a spool, and a config whose database has a
``physical.wal`` block: what the WAL archiver's tests (and benchmarks) run against."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from devstack.chain import connection_uri
from devstack.postgres import PostgresServer
from restorable.config import load_config
from restorable.connections import ConnectionInfo
from restorable.services import Services
from restorable.stream.keys import generate_identity
from restorable.wal.spool import ARCHIVE_SCRIPT


def reach_for_postgres(*paths: Path) -> None:
    """Let the ``postgres`` user reach ``paths`` (the archive script, this checkout, the venv): add the
    search bit to every ancestor directory that lacks it. A checkout under a 0700 directory (a
    ``mktemp -d`` clone) is otherwise out of reach of the archive_command and restore_command, which
    then fail on every segment while the server waits for them."""
    if os.geteuid() != 0:
        return
    for path in paths:
        for directory in [*reversed(Path(path).resolve().parents), Path(path).resolve()]:
            if not directory.is_dir():
                continue
            mode = directory.stat().st_mode
            if not mode & 0o001:
                os.chmod(directory, mode | 0o001)


def enable_archiving(
    server: PostgresServer, spool_dir: Path, spool_max_bytes: int, *, archive_timeout: int = 0
) -> None:
    """Create ``spool_dir`` (owned by postgres) and restart ``server`` with ``spool-archive.sh`` as its
    archive_command (archive_mode needs a restart)."""
    reach_for_postgres(ARCHIVE_SCRIPT.parent)
    spool_dir.mkdir(mode=0o750, exist_ok=True)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(spool_dir, user.pw_uid, user.pw_gid)

    def configure() -> None:
        with open(server.data_dir / "postgresql.conf", "a") as fh:
            fh.write(
                "\n# restorable WAL archiving into the spool\n"
                "archive_mode = on\n"
                f"archive_command = '{ARCHIVE_SCRIPT} %p %f {spool_dir} {spool_max_bytes}'\n"
                f"archive_timeout = {archive_timeout}\n"
            )

    server.restart_with(configure)


def switch_segment(server: PostgresServer, database: str = "postgres") -> str:
    """Write a little, close the current segment (``pg_switch_wal``) and return its name."""
    with server.connect(database) as pg:
        pg.execute("CREATE TABLE IF NOT EXISTS wal_marks (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
        pg.execute("INSERT INTO wal_marks DEFAULT VALUES")
        return pg.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]


@dataclass
class WalChain:
    services: Services
    config_path: Path
    env: dict[str, str]
    identity: str
    database_id: str
    spool_dir: Path

    def cli_argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "restorable.cli", "--config", str(self.config_path), *args]

    def run_cli(self, *args: str, env_extra: dict[str, str] | None = None, timeout: float = 120):
        return subprocess.run(
            self.cli_argv(*args),
            capture_output=True,
            text=True,
            env={**os.environ, **self.env, **(env_extra or {})},
            timeout=timeout,
        )

    def start_archiver(self, log_path: Path, *extra: str, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
        """``restorable wal-archiver DB`` as a service runs it, its log in ``log_path``."""
        log = open(log_path, "ab")
        try:
            return subprocess.Popen(
                self.cli_argv("wal-archiver", self.database_id, *extra),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env, **(env_extra or {})},
            )
        finally:
            log.close()


def stop_archiver(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def make_wal_chain(
    tmp_path: Path,
    *,
    source: ConnectionInfo,
    s3: ConnectionInfo,
    bucket: str,
    spool_dir: Path,
    database_id: str = "shop",
    spool_max: str = "1GiB",
    spool_alarm: str = "512MiB",
    heartbeat_interval: int = 1,
    upload_concurrency: int = 4,
    max_attempts: int = 2,
    mode: str = "archive",
    partial_interval: int = 1,
) -> WalChain:
    identity, recipient = generate_identity()
    connections = {
        "src": source,
        "tgt": ConnectionInfo("tgt", "postgres", host=source.host, port=source.port, login="x", schema="postgres"),
        "restorable_s3": s3,
        "restorable_age": ConnectionInfo("restorable_age", "generic", password=identity),
    }
    data = {
        "storage": {"conn_id": "restorable_s3", "bucket": bucket, "prefix": "restorable", "max_attempts": max_attempts},
        "encryption": {"recipients": [recipient], "identity_conn_id": "restorable_age"},
        "databases": [
            {
                "id": database_id,
                "engine": "postgres",
                "conn_id": "src",
                "schedule": "0 2 * * *",
                "restore_target_conn_id": "tgt",
                "physical": {
                    "wal": {
                        "mode": mode,
                        "partial_interval": partial_interval,
                        "spool_dir": str(spool_dir),
                        "spool_max": spool_max,
                        "spool_alarm": spool_alarm,
                        "heartbeat_interval": heartbeat_interval,
                        "upload_concurrency": upload_concurrency,
                    }
                },
            }
        ],
    }
    path = tmp_path / "restorable.yaml"
    path.write_text(yaml.safe_dump(data))
    env = {f"AIRFLOW_CONN_{k.upper()}": connection_uri(v) for k, v in connections.items()}
    services = Services(load_config(path, env), resolve=lambda conn_id: connections[conn_id])
    return WalChain(services, path, env, identity, database_id, spool_dir)


def read_state(chain: WalChain) -> dict:
    try:
        return json.loads((chain.spool_dir / ".restorable-wal-state.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def python_for_postgres() -> tuple[str, dict[str, str]]:
    """An interpreter the ``postgres`` user can run for a restore_command, and the environment that
    finds Restorable and its dependencies (this venv's site-packages; its interpreter may sit under a
    home directory postgres cannot enter, e.g. pyenv's in /root)."""
    import sysconfig

    import restorable

    plugins = str(Path(restorable.__file__).resolve().parents[1])
    paths = [plugins, sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    reach_for_postgres(*paths)
    env = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
    if os.geteuid() != 0:
        return sys.executable, env
    probe = [sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"]
    for candidate in probe:
        check = subprocess.run(
            ["runuser", "-u", "postgres", "--", candidate, "-c", "import restorable.cli, boto3, pyrage"],
            env={**os.environ, **env},
            capture_output=True,
        )
        if check.returncode == 0:
            return candidate, env
    raise RuntimeError(f"no Python the postgres user can run with Restorable importable (tried {probe})")
