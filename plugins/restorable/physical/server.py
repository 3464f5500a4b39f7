"""Start a restored server as the postgres user, wait for recovery to reach its target, stop it.

``pg_ctl start -w`` returns 0 even when recovery fails later: the server log is read for FATAL
and PANIC while waiting, and the replay state (paused at the target, or out of recovery) is
read over a TCP connection on 127.0.0.1.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from restorable.connections import ConnectionInfo
from restorable.engines.postgres.tools import find_pg_binary
from restorable.engines.process import child_env
from restorable.exceptions import IntegrityError, ToolError
from restorable.physical.extract import as_postgres, server_major
from restorable.repository.manifest import BackupManifest

RECOVERY_LOG = "restorable-recovery.log"


def start_and_wait(
    request: Any, base: BackupManifest, port: int, env: dict[str, str], login: ConnectionInfo
) -> dict[str, Any]:
    """Start the restored server and wait until recovery reached its target (paused) or ended."""
    if not (request.target_dir / "recovery.signal").exists():
        # Without it PostgreSQL does crash recovery only: restore_command and every recovery_target
        # setting are ignored, and a copy with WAL in pg_wal comes up read-write wherever that ends.
        raise IntegrityError(
            f"recovery.signal is missing from {request.target_dir}: PostgreSQL would ignore the archive "
            f"and the target {request.target.describe()}; the copy was not started",
            database=request.database_id,
            hint="Restore again into an empty directory; never start this copy without recovery.signal",
        )
    pg_ctl = find_pg_binary("pg_ctl", server_major(base))
    log_path = request.target_dir / RECOVERY_LOG
    started = time.monotonic()
    done = subprocess.run(
        [*as_postgres(), pg_ctl, "start", "-D", str(request.target_dir), "-l", str(log_path), "-w", "-t", "300"],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ToolError(
            "the restored server did not start: " + _fatal_lines(log_path, default=done.stderr.strip()),
            database=request.database_id,
            hint=f"Read {log_path}",
        )
    deadline = started + request.timeout
    state: dict[str, Any] = {}
    while True:
        fatal = _fatal_lines(log_path)
        if fatal:
            stop_server(request.target_dir, base)
            raise IntegrityError(f"recovery failed: {fatal}", database=request.database_id, hint=f"Read {log_path}")
        state = _replay_state(port, login)
        if state.get("done"):
            break
        if time.monotonic() > deadline:
            stop_server(request.target_dir, base)
            raise ToolError(
                f"recovery did not reach {request.target.describe()} within {request.timeout:.0f} s "
                f"(replayed to {state.get('replay_lsn')})",
                database=request.database_id,
            )
        time.sleep(0.3)
    if request.target.kind != "end" and not state.get("paused"):
        # Out of recovery without pausing at the target: no recovery.signal was read, or the WAL ended
        # first. Either way these are not the rows asked for.
        stop_server(request.target_dir, base)
        raise IntegrityError(
            f"the restored server left recovery without pausing at {request.target.describe()} "
            f"(replayed to {state.get('replay_lsn')})",
            database=request.database_id,
            hint=f"Read {log_path}; do not use this copy",
        )
    if request.promote and state.get("paused"):
        with _connect(port, login) as pg:
            pg.execute("SELECT pg_wal_replay_resume()")
        while _replay_state(port, login).get("in_recovery"):
            if fatal := _fatal_lines(log_path):
                raise IntegrityError(f"promotion failed: {fatal}", database=request.database_id)
            time.sleep(0.2)
        state["promoted"] = True
    text = log_path.read_text(errors="replace")
    stopping = [ln.split("LOG:", 1)[-1].strip() for ln in text.splitlines() if "recovery stopping" in ln]
    state.update(
        recovery_seconds=round(time.monotonic() - started, 3),
        recovery_stop=stopping[-1] if stopping else None,
        restored_files=text.count("restored log file"),
        log=str(log_path),
    )
    return state


def _connect(port: int, login: ConnectionInfo) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=port,
        user=login.login,
        password=login.password,
        dbname=login.schema or "postgres",
        connect_timeout=5,
        autocommit=True,
    )


def _replay_state(port: int, login: ConnectionInfo) -> dict[str, Any]:
    try:
        with _connect(port, login) as pg:
            in_recovery, pause, replay_lsn, replay_time = pg.execute(
                "SELECT pg_is_in_recovery(), pg_get_wal_replay_pause_state(), pg_last_wal_replay_lsn()::text, "
                "pg_last_xact_replay_timestamp()"
            ).fetchone()
    except psycopg.OperationalError:
        return {}  # starting, or not consistent yet
    paused = in_recovery and pause == "paused"
    return {
        "in_recovery": in_recovery,
        "paused": paused,
        "done": paused or not in_recovery,
        "replay_lsn": replay_lsn,
        "last_replayed_commit": replay_time.isoformat() if replay_time else None,
    }


def _fatal_lines(log_path: Path, default: str = "") -> str:
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return default
    lines = [ln for ln in text.splitlines() if " FATAL: " in ln or " PANIC: " in ln]
    return "; ".join(ln.split(":  ", 1)[-1] if ":  " in ln else ln for ln in lines[-3:]) or default


def stop_server(target_dir: Path, base: BackupManifest) -> None:
    pg_ctl = find_pg_binary("pg_ctl", server_major(base))
    subprocess.run(
        [*as_postgres(), pg_ctl, "stop", "-D", str(target_dir), "-m", "fast", "-w", "-t", "30"],
        capture_output=True,
        env=child_env(),
    )


def remove_restored(directory: Path) -> None:
    """Remove a restored copy (stopped already): its WAL prefetcher first, which may still be writing."""
    import shutil

    from restorable.wal.fetch import stop_prefetchers

    stop_prefetchers(directory)
    shutil.rmtree(directory, ignore_errors=True)
    if directory.exists():  # a file appeared while it was removed: once more
        time.sleep(0.2)
        shutil.rmtree(directory, ignore_errors=True)
