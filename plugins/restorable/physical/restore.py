"""Restore a base backup into a directory and recover it to a chosen moment.

1. Choose the base backup that can reach the target (``targets.choose_base``) and check the
   archive reaches the target, with no gap on the way (``archive_end``): refused before a byte is read.
2. Extract it (decrypt, decompress, ``tar -x``), checking both sha256 of the stream against the
   manifest, then ``pg_verifybackup`` against PostgreSQL's own ``backup_manifest``.
3. Configure recovery, each setting against a known way to get the wrong rows silently:
   ``recovery.signal`` (without it PostgreSQL starts at the backup's end and ignores the target);
   ``restore_command`` = ``wal-fetch.sh`` (exit 1 only when a file is not archived: a transient
   error stops recovery loudly instead of ending it early); the target with an explicit UTC
   offset; ``recovery_target_timeline`` pinned to the backup's timeline (``latest`` would follow a
   timeline a drill promoted and pushed); ``recovery_target_action = pause``; ``archive_mode = off``
   (the copy must never archive into the source's spool); TCP on 127.0.0.1 only.
4. With ``start``: start it, wait until replay pauses at the target (or, for the end of the
   archive, until it promotes), and read its log for FATAL: ``pg_ctl start -w`` returns 0 even when
   recovery fails later.

A failure leaves no directory that looks restored: what this restore extracted is removed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import restorable
from restorable.connections import ConnectionInfo, env_var_name
from restorable.engines.postgres.tools import find_pg_binary
from restorable.engines.process import child_env
from restorable.exceptions import RestoreRefused, ToolError
from restorable.logs import backup_log
from restorable.physical.archive_end import read_archive_end
from restorable.physical.extract import (
    as_postgres,
    chown_to_postgres,
    extract_base,
    prepare_directory,
    rewrite_tablespace_map,
    server_major,
    verify_extracted,
)
from restorable.physical.server import start_and_wait
from restorable.physical.targets import RecoveryTarget, choose_base
from restorable.repository.manifest import BackupManifest, iso, utcnow
from restorable.services import Services
from restorable.wal.continuity import archived_names
from restorable.wal.fetch import stop_prefetchers
from restorable.wal.names import format_lsn, kind_of, parse_segment

log = logging.getLogger(__name__)

WAL_FETCH_SCRIPT = Path(restorable.__file__).resolve().parent / "wal" / "wal-fetch.sh"
RECOVERY_CONFIG = "restorable-recovery.yaml"


@dataclass
class PhysicalRestore:
    database_id: str
    target: RecoveryTarget
    target_dir: Path
    base_id: str | None = None
    #: A timeline number, or "latest"; None pins the base backup's own.
    timeline: str | None = None
    start: bool = False
    port: int | None = None
    promote: bool = False
    #: Seconds to wait for replay to reach the target once started.
    timeout: float = 3600.0
    #: Tablespace oid or name -> directory (default ``<target_dir>.tablespaces/<oid>``).
    tablespace_map: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- choosing
def physical_bases(services: Services, database_id: str) -> list[BackupManifest]:
    """Intact, committed base backups of ``database_id``, oldest first."""
    catalog = services.catalog("restore")
    found = []
    for entry in catalog.scan(database_id).entries:
        if entry.summary.get("kind") != "physical":
            continue
        reason = catalog.unusable_reason(entry)
        if reason is not None:
            backup_log(__name__, database_id, entry.backup_id).warning("base backup skipped", reason=reason)
            continue
        found.append(entry.manifest)
    return found


def check_archive_reaches(
    services: Services, base: BackupManifest, target: RecoveryTarget, timeline: int, identity: str
) -> dict[str, Any]:
    """Refuse a target the archive cannot reach: a gap after the backup's start, or past the newest commit."""
    store = services.store("restore")
    layout = services.catalog("restore").layout
    db = base.database_id
    size = int(base.wal.get("segment_size") or 16 * 1024 * 1024)
    start = parse_segment(base.wal["start_segment"], size)
    numbers = {
        parse_segment(n, size).number
        for n in archived_names(store, layout, db)
        if int(n[:8], 16) == timeline and kind_of(n) in ("segment", "partial")
    }
    newest = max(numbers, default=None)
    stop = parse_segment(base.wal["stop_segment"], size).number
    if newest is None or newest < stop:
        raise RestoreRefused(
            f"the WAL archive of {db} has no segment up to {base.wal['stop_segment']} on timeline {timeline}: "
            f"base backup {base.backup_id} cannot be made consistent",
            database=db,
            hint="restorable verify-wal shows the archive; is the archiver running?",
        )
    missing = [n for n in range(start.number, newest + 1) if n not in numbers]
    end = read_archive_end(store, layout, identity, db, timeline, server_major(base))
    facts: dict[str, Any] = {
        "newest_file": end.wal_file if end else None,
        "last_commit_time": iso(end.last_commit_time) if end and end.last_commit_time else None,
        "last_lsn": format_lsn(end.last_lsn) if end and end.last_lsn else None,
    }
    if missing:
        first = type(start)(timeline, missing[0]).name(size)
        if missing[0] <= stop:
            raise RestoreRefused(
                f"segment {first} is missing from the archive: base backup {base.backup_id} cannot be made consistent",
                database=db,
                hint="Choose another base backup (--base); restorable verify-wal names every gap",
            )
        # The archive is usable up to the gap: the last segment before it says how far.
        reach = type(start)(timeline, missing[0] - 1).name(size)
        if target.kind in ("end", "time", "xid", "name") or (target.lsn or 0) >= missing[0] * size:
            raise RestoreRefused(
                f"segment {first} is missing from the archive of {db}: replay from base backup "
                f"{base.backup_id} can go no further than {reach}, before {target.describe()}",
                database=db,
                hint="Restore to a target before the gap (--lsn), or recover the missing segment first",
            )
    if end is not None and target.kind == "time" and end.last_commit_time is not None:
        if target.time > end.last_commit_time:  # type: ignore[operator]
            raise RestoreRefused(
                f"{target.describe()} is past the newest archived commit of {db} "
                f"({iso(end.last_commit_time)} in {end.wal_file}): recovery could not reach it",
                database=db,
                hint="Pick an earlier time, or wait for the archiver to upload the newest WAL (wal-status)",
            )
    if end is not None and target.kind == "lsn" and end.last_lsn is not None and target.lsn > end.last_lsn:  # type: ignore[operator]
        raise RestoreRefused(
            f"{target.describe()} is past the newest archived record of {db} ({format_lsn(end.last_lsn)})",
            database=db,
            hint="Pick an earlier LSN, or wait for the archiver to upload the newest WAL",
        )
    return facts


# --------------------------------------------------------------------------- configuring
def python_for_postgres() -> tuple[str, str]:
    """An interpreter the ``postgres`` user can run with Restorable importable, and the PYTHONPATH
    that finds it (a virtualenv under /root is out of postgres's reach; its site-packages may not be)."""
    paths = [str(Path(restorable.__file__).resolve().parents[1]), sysconfig.get_paths()["purelib"]]
    pythonpath = os.pathsep.join(dict.fromkeys([*paths, sysconfig.get_paths()["platlib"]]))
    if os.geteuid() != 0:
        return sys.executable, pythonpath
    candidates = [sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"]
    for candidate in candidates:
        probe = subprocess.run(
            [*as_postgres(), candidate, "-c", "import restorable.cli, boto3, pyrage"],
            env={**child_env(), "PYTHONPATH": pythonpath},
            capture_output=True,
        )
        if probe.returncode == 0:
            return candidate, pythonpath
    raise ToolError(
        "no Python interpreter the postgres user can run finds Restorable and its dependencies",
        hint="Install Restorable where the postgres user can read it (e.g. a virtualenv under /opt)",
    )


def restore_command(config_path: Path, database_id: str) -> str:
    python, pythonpath = python_for_postgres()
    return (
        f"{WAL_FETCH_SCRIPT} %f %p env PYTHONPATH={pythonpath} {python} -m restorable.cli "
        f"--config {config_path} wal-fetch {database_id}"
    )


def start_prefetcher_early(target_dir: Path, config_path: Path, base: BackupManifest, env: dict[str, str]) -> None:
    """Start the WAL prefetcher before the server, from the base backup's first segment: otherwise it
    starts only with the first restore_command, and recovery waits on the bucket for its first files."""
    from restorable.wal.fetch import CACHE_DIR_NAME, note_wanted
    from restorable.wal.names import Segment

    size = int(base.wal.get("segment_size") or 16 * 1024 * 1024)
    first = parse_segment(base.wal["start_segment"], size)
    if first.number == 0:
        return
    cache = target_dir / "pg_wal" / CACHE_DIR_NAME
    cache.mkdir(mode=0o700, exist_ok=True)
    # "Recovery is at the segment before the first": the prefetcher fetches from the first on.
    note_wanted(cache, Segment(first.timeline, first.number - 1).name(size), size)
    chown_to_postgres(cache)
    python, pythonpath = python_for_postgres()
    subprocess.Popen(
        [*as_postgres(), "env", f"PYTHONPATH={pythonpath}", python, "-m", "restorable.wal.prefetch"]
        + ["--config", str(config_path), str(cache), base.database_id],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        close_fds=True,
    )


def recovery_settings(request: PhysicalRestore, base: BackupManifest, port: int, command: str) -> dict[str, str]:
    timeline = request.timeline or str(base.physical["timeline"])
    settings = {
        "restore_command": command,
        "recovery_target_timeline": timeline,
        "archive_mode": "off",
        "archive_command": "",
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": "",
        "hot_standby": "on",
        "primary_conninfo": "",
        **request.target.settings(),
    }
    if request.target.kind != "end":
        settings["recovery_target_action"] = "pause"
    return settings


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def write_recovery_config(target_dir: Path, settings: dict[str, str], config_source: Path) -> None:
    """The settings (postgresql.auto.conf is read last: these win), recovery.signal, and the config
    the restore_command reads (no secret in it: connections come from the environment)."""
    shutil.copyfile(config_source, target_dir / RECOVERY_CONFIG)
    os.chmod(target_dir / RECOVERY_CONFIG, 0o640)
    with open(target_dir / "postgresql.auto.conf", "a") as fh:
        fh.write("\n# written by restorable restore (point-in-time recovery)\n")
        for name, value in settings.items():
            fh.write(f"{name} = {_quote(value)}\n")
    (target_dir / "recovery.signal").write_text("")
    for stale in ("postmaster.pid", "postmaster.opts", "standby.signal"):
        (target_dir / stale).unlink(missing_ok=True)


def fetch_environment(services: Services, identity: str) -> dict[str, str]:
    """What the restored server's restore_command needs: the bucket's and the identity's connections.

    Passed in the server's environment (readable by postgres and root only), never in a file.
    """
    env = {k: v for k, v in child_env().items()}
    for conn_id in {services.storage_conn_id("restore"), services.storage_conn_id("backup")}:
        name = env_var_name(conn_id)
        if name in os.environ:
            env[name] = os.environ[name]
    identity_conn = services.config.encryption.identity_conn_id
    if identity_conn:
        env[env_var_name(identity_conn)] = json.dumps({"conn_type": "generic", "password": identity})
    for name, value in os.environ.items():
        if name.startswith(("RESTORABLE_", "AWS_CA_BUNDLE")):
            env[name] = value
    return env


# -------------------------------------------------------------------------------- the whole
def plan_restore_to_point(services: Services, request: PhysicalRestore, *, identity: str) -> dict[str, Any]:
    """Everything ``restore_to_point`` decides before it writes: the base backup, the archive's reach,
    the directory (new or empty). Refusals are raised here, for the UI's plan step."""
    db = request.database_id
    services.config.database(db)
    base = choose_base(physical_bases(services, db), request.target, db, request.base_id)
    timeline = int(request.timeline) if request.timeline and request.timeline.isdigit() else base.physical["timeline"]
    archive = check_archive_reaches(services, base, request.target, timeline, identity)
    if request.target_dir.exists() and (not request.target_dir.is_dir() or any(request.target_dir.iterdir())):
        raise RestoreRefused(
            f"--target-dir {request.target_dir} is not empty: a restore never writes over files it did not create",
            database=db,
            hint="Give a new or empty directory",
        )
    return {
        "database_id": db,
        "base_backup": base.backup_id,
        "base_stop_time": base.physical["stop_time"],
        "target": {"kind": request.target.kind, "value": request.target.value},
        "target_dir": str(request.target_dir),
        "timeline": timeline,
        "archive": archive,
        "promote": request.promote,
    }


def restore_to_point(
    services: Services,
    request: PhysicalRestore,
    *,
    identity: str,
    on_progress: Callable | None = None,
) -> dict[str, Any]:
    """Choose, check, extract, verify, configure and (with ``start``) recover; return the figures."""
    db = request.database_id
    services.config.database(db)
    bases = physical_bases(services, db)
    base = choose_base(bases, request.target, db, request.base_id)
    blog = backup_log(__name__, db, base.backup_id)
    timeline = int(request.timeline) if request.timeline and request.timeline.isdigit() else base.physical["timeline"]
    archive = check_archive_reaches(services, base, request.target, timeline, identity)
    created = prepare_directory(request.target_dir)
    port = request.port or _free_port()
    report: dict[str, Any] = {
        "database_id": db,
        "base_backup": base.backup_id,
        "base_stop_lsn": base.physical["stop_lsn"],
        "base_stop_time": base.physical["stop_time"],
        "target": {"kind": request.target.kind, "value": request.target.value},
        "timeline": request.timeline or str(base.physical["timeline"]),
        "target_dir": str(request.target_dir),
        "port": port,
        "archive": archive,
        "started_at": iso(utcnow()),
    }
    blog.info("physical restore starting", target=request.target.describe(), target_dir=str(request.target_dir))
    finished = False
    created_spaces: list[Path] = []
    try:
        report.update(
            extract_base(
                services,
                base,
                request.target_dir,
                identity,
                on_progress,
                tablespace_map=request.tablespace_map,
                created=created_spaces,
            )
        )
        report.update(verify_extracted(base, request.target_dir))
        # After pg_verifybackup (which checks the file as backed up), before anything can start.
        rewrite_tablespace_map(request.target_dir, report.get("tablespaces", {}), base)
        config_copy = request.target_dir / RECOVERY_CONFIG
        settings = recovery_settings(request, base, port, restore_command(config_copy, db))
        write_recovery_config(request.target_dir, settings, services.config.path)
        chown_to_postgres(request.target_dir)
        report["settings"] = {k: v for k, v in settings.items() if k != "restore_command"}
        env = fetch_environment(services, identity)
        if request.start:
            start_prefetcher_early(request.target_dir, config_copy, base, env)
            login = services.resolve(services.config.database(db).conn_id)
            report["recovery"] = start_and_wait(request, base, port, env, login)
            if request.target.kind == "immediate":
                report["comparison"] = compare_with_manifest(base, login, port)
        finished = True
    finally:
        if not finished:
            _remove_extracted(request.target_dir, created)
            for space in created_spaces:
                shutil.rmtree(space, ignore_errors=True)
    blog.info("physical restore done", target_dir=str(request.target_dir), started=request.start)
    return report


def compare_with_manifest(base: BackupManifest, login: ConnectionInfo, port: int) -> dict[str, Any]:
    """At the base backup's own end: the row counts and schema its manifest recorded (counted just
    after the backup stopped: exact on a quiet database, writes meanwhile show as differences)."""
    from restorable.engines.compare import compare_descriptions
    from restorable.engines.postgres.engine import PostgresEngine

    restored = ConnectionInfo(
        login.conn_id,
        "postgres",
        host="127.0.0.1",
        port=port,
        login=login.login,
        password=login.password,
        schema=base.source.get("database") or login.schema,
    )
    started = time.monotonic()
    expected, found = _without_heartbeats(base.metadata), _without_heartbeats(PostgresEngine().describe(restored))
    differences = compare_descriptions(expected, found)
    return {
        "ok": not differences,
        "differences": differences,
        "tables": len(base.metadata.row_counts),
        "rows": sum(base.metadata.row_counts.values()),
        "compare_seconds": round(time.monotonic() - started, 3),
    }


def _without_heartbeats(description: Any) -> Any:
    """The archiver's heartbeat table commits every few seconds, also while a base backup is counted:
    its row count and sequence are left out of the comparison (its schema stays in)."""
    from dataclasses import replace

    from restorable.wal.heartbeat import SCHEMA, TABLE

    table, sequence = f"{SCHEMA}.{TABLE}", f"{SCHEMA}.{TABLE}_id_seq"
    schema = dict(description.schema)
    if isinstance(schema.get("sequences"), dict):
        schema["sequences"] = {k: v for k, v in schema["sequences"].items() if k != sequence}
    counts = {k: v for k, v in description.row_counts.items() if k != table}
    return replace(description, row_counts=counts, schema=schema)


def _remove_extracted(target_dir: Path, created: bool) -> None:
    """Nothing that looks restored is left: the server (if it runs) stopped, the files removed."""
    pid = target_dir / "postmaster.pid"
    if pid.exists():
        pg_ctl = find_pg_binary("pg_ctl")
        subprocess.run(
            [*as_postgres(), pg_ctl, "stop", "-D", str(target_dir), "-m", "immediate", "-w"],
            capture_output=True,
            env=child_env(),
        )
    stop_prefetchers(target_dir)
    if created:
        shutil.rmtree(target_dir, ignore_errors=True)
    else:
        for child in list(target_dir.iterdir()):
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
