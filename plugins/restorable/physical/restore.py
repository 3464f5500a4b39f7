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
import pwd
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

import restorable
from restorable.connections import ConnectionInfo, env_var_name
from restorable.engines.postgres.tools import find_pg_binary
from restorable.engines.process import StreamTail, child_env, stop_process
from restorable.exceptions import ConfigError, IntegrityError, RestoreRefused, ToolError
from restorable.logs import backup_log
from restorable.physical.archive_end import read_archive_end
from restorable.physical.targets import RecoveryTarget, choose_base
from restorable.repository.manifest import BASE, PG_MANIFEST, BackupManifest, iso, utcnow
from restorable.services import Services
from restorable.wal.continuity import archived_names
from restorable.wal.names import format_lsn, kind_of, parse_segment

log = logging.getLogger(__name__)

WAL_FETCH_SCRIPT = Path(restorable.__file__).resolve().parent / "wal" / "wal-fetch.sh"
RECOVERY_CONFIG = "restorable-recovery.yaml"
RECOVERY_LOG = "restorable-recovery.log"


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
        reason = catalog._unusable(entry)
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
    end = read_archive_end(store, layout, identity, db, timeline, _major(base))
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


def _major(manifest: BackupManifest) -> int | None:
    num = (manifest.physical or {}).get("server_version_num")
    return int(num) // 10000 if num else None


# ---------------------------------------------------------------------------- extracting
def _as_postgres() -> list[str]:
    """PostgreSQL's programs refuse root: run them as the postgres user when this process is root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _chown_to_postgres(path: Path) -> None:
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam("postgres")
    for root, _dirs, files in os.walk(path):
        os.chown(root, user.pw_uid, user.pw_gid)
        for name in files:
            os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid, follow_symlinks=False)


def prepare_directory(target_dir: Path) -> bool:
    """Create ``target_dir`` (0700) or accept it empty; refuse anything else. True when created here."""
    if target_dir.exists():
        if not target_dir.is_dir():
            raise RestoreRefused(f"--target-dir {target_dir} exists and is not a directory")
        if any(target_dir.iterdir()):
            raise RestoreRefused(
                f"--target-dir {target_dir} is not empty: a restore never writes over files it did not create",
                hint="Give a new or empty directory",
            )
        os.chmod(target_dir, 0o700)
        created = False
    else:
        target_dir.mkdir(mode=0o700, parents=True)
        created = True
    if os.geteuid() == 0:
        _chown_to_postgres(target_dir)
        reachable = subprocess.run([*_as_postgres(), "test", "-w", str(target_dir)], capture_output=True)
        if reachable.returncode != 0:
            if created:
                target_dir.rmdir()
            raise ConfigError(
                f"the postgres user cannot reach --target-dir {target_dir}: a parent directory is not searchable",
                hint="Restore into a directory the postgres user can enter (e.g. under /var/lib/postgresql)",
            )
    return created


def extract_base(
    services: Services,
    base: BackupManifest,
    target_dir: Path,
    identity: str,
    on_progress: Callable | None = None,
    *,
    tablespace_map: dict[str, str] | None = None,
    created: list[Path] | None = None,
) -> dict[str, Any]:
    """Decrypt, decompress and untar the base backup into ``target_dir`` (each other tablespace into
    its mapped directory, default ``<target_dir>.tablespaces/<oid>``, re-pointing its ``pg_tblspc``
    link); check both sha256 of every object. Directories made here are appended to ``created``."""
    started = time.monotonic()
    plain = _extract_object(services, base, base.object(BASE), target_dir, identity, on_progress)
    mapping = tablespace_map or {}
    moved = {}
    for space in (base.physical or {}).get("tablespaces") or []:
        oid = str(space["oid"])
        where = Path(mapping.get(oid) or mapping.get(space.get("name", "")) or f"{target_dir}.tablespaces/{oid}")
        if prepare_directory(where) and created is not None:
            created.append(where)
        link = target_dir / "pg_tblspc" / oid
        link.unlink(missing_ok=True)
        link.symlink_to(where)
        obj = next((o for o in base.objects if o.key == space.get("key")), None)
        if obj is None:
            raise IntegrityError(
                f"the manifest lists tablespace {space.get('name')} (oid {oid}) without its object",
                database=base.database_id,
                backup_id=base.backup_id,
            )
        plain += _extract_object(services, base, obj, where, identity, on_progress)
        moved[oid] = str(where)
    if not (target_dir / "backup_manifest").exists():
        # A staged base backup (tablespaces) keeps PostgreSQL's manifest as its own object only.
        (target_dir / "backup_manifest").write_bytes(_read_small(services, base, base.object(PG_MANIFEST), identity))
    _chown_to_postgres(target_dir)  # the server (and pg_verifybackup) run as postgres
    figures: dict[str, Any] = {"plain_bytes": plain, "extract_seconds": round(time.monotonic() - started, 3)}
    if moved:
        figures["tablespaces"] = moved
    return figures


def rewrite_tablespace_map(target_dir: Path, moved: dict[str, str], base: BackupManifest) -> None:
    """Point ``tablespace_map`` at the restored directories.

    A tar-format base backup carries no ``pg_tblspc`` links but this file, and PostgreSQL recreates
    the links from it at startup: left as it is, the restored server would write into the source's
    own tablespace directories."""
    path = target_dir / "tablespace_map"
    if not path.exists():
        return
    lines = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        oid, _, _location = line.partition(" ")
        if oid not in moved:
            raise IntegrityError(
                f"tablespace_map names tablespace {oid}, which the manifest does not list",
                database=base.database_id,
                backup_id=base.backup_id,
                hint="The base backup does not match its manifest; do not start this copy",
            )
        lines.append(f"{oid} {moved[oid]}")
    path.write_text("".join(f"{ln}\n" for ln in lines))


def _read_small(services: Services, base: BackupManifest, obj: Any, identity: str) -> bytes:
    """A small stored object decrypted into memory, both sha256 checked."""
    import io

    from restorable.stream.decode import decode_stream

    out = io.BytesIO()
    body = services.store("restore").open_read(obj.key, version_id=obj.version_id)
    try:
        digests = decode_stream(body, out, identity=identity)
    finally:
        body.close()
    if (digests.stored_sha256, digests.plain_sha256) != (obj.stored_sha256, obj.plain_sha256):
        raise IntegrityError(
            f"{obj.key} differs from the sha256 its manifest records",
            database=base.database_id,
            backup_id=base.backup_id,
        )
    return out.getvalue()


def _extract_object(
    services: Services, base: BackupManifest, obj: Any, directory: Path, identity: str, on_progress: Callable | None
) -> int:
    """One stored tar into ``directory``; IntegrityError when either sha256 differs from the manifest."""
    from restorable.stream.decode import decode_stream

    store = services.store("restore")
    tar = subprocess.Popen(
        ["tar", "-x", "-f", "-", "-C", str(directory), "--no-same-owner"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    )
    assert tar.stdin is not None and tar.stderr is not None
    tail = StreamTail(tar.stderr, "tar")
    body = store.open_read(obj.key, version_id=obj.version_id)
    try:
        with ExitStack() as stack:
            stack.callback(body.close)
            digests = decode_stream(body, tar.stdin, identity=identity, on_progress=on_progress)
            tar.stdin.close()
            returncode = tar.wait()
            tail.join()
    finally:
        stop_process(tar)
    if returncode != 0:
        raise ToolError(f"tar could not extract {obj.key}: {tail.text()[-500:]}", database=base.database_id)
    _chown_to_postgres(directory)
    for what, found, expected in (
        ("stored object", digests.stored_sha256, obj.stored_sha256),
        ("plain tar", digests.plain_sha256, obj.plain_sha256),
    ):
        if found != expected:
            raise IntegrityError(
                f"{what} sha256 {found} of {obj.key} differs from the manifest's {expected}",
                database=base.database_id,
                backup_id=base.backup_id,
                hint="Do not use this base backup; choose another with --base",
            )
    return digests.plain_bytes


def verify_extracted(base: BackupManifest, target_dir: Path) -> dict[str, Any]:
    """``pg_verifybackup -n``: every file against PostgreSQL's ``backup_manifest`` (WAL comes later)."""
    tool = find_pg_binary("pg_verifybackup", _major(base))
    started = time.monotonic()
    done = subprocess.run(
        [*_as_postgres(), tool, "-n", str(target_dir)], capture_output=True, text=True, env=child_env()
    )
    if done.returncode != 0:
        raise IntegrityError(
            f"pg_verifybackup found the extracted base backup {base.backup_id} damaged: "
            + (done.stderr.strip() or done.stdout.strip())[-800:],
            database=base.database_id,
            backup_id=base.backup_id,
            hint="Do not use this copy; choose another base backup with --base",
        )
    return {"pg_verifybackup": "passed", "verify_seconds": round(time.monotonic() - started, 3)}


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
            [*_as_postgres(), candidate, "-c", "import restorable.cli, boto3, pyrage"],
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


# ------------------------------------------------------------------------------ starting
def start_and_wait(
    request: PhysicalRestore, base: BackupManifest, port: int, env: dict[str, str], login: ConnectionInfo
) -> dict[str, Any]:
    """Start the restored server and wait until recovery reached its target (paused) or ended."""
    pg_ctl = find_pg_binary("pg_ctl", _major(base))
    log_path = request.target_dir / RECOVERY_LOG
    started = time.monotonic()
    done = subprocess.run(
        [*_as_postgres(), pg_ctl, "start", "-D", str(request.target_dir), "-l", str(log_path), "-w", "-t", "300"],
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
    pg_ctl = find_pg_binary("pg_ctl", _major(base))
    subprocess.run(
        [*_as_postgres(), pg_ctl, "stop", "-D", str(target_dir), "-m", "fast", "-w", "-t", "30"],
        capture_output=True,
        env=child_env(),
    )


# -------------------------------------------------------------------------------- the whole
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
        _chown_to_postgres(request.target_dir)
        report["settings"] = {k: v for k, v in settings.items() if k != "restore_command"}
        env = fetch_environment(services, identity)
        if request.start:
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
            [*_as_postgres(), pg_ctl, "stop", "-D", str(target_dir), "-m", "immediate", "-w"],
            capture_output=True,
            env=child_env(),
        )
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
