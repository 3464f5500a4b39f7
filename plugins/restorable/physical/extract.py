"""Extract a base backup into directories and check it: both sha256 of every object, then
``pg_verifybackup`` against PostgreSQL's own ``backup_manifest``.

The directories belong to the ``postgres`` user at the end (the server and ``pg_verifybackup`` run
as postgres when this process is root). A tar-format base backup of a cluster with tablespaces
carries a ``tablespace_map`` instead of ``pg_tblspc`` links: it is rewritten to the restored
directories, or the copy would write into the source's own tablespaces.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from restorable.engines.postgres.tools import find_pg_binary
from restorable.engines.process import StreamTail, child_env, running
from restorable.exceptions import ConfigError, IntegrityError, RestoreRefused, ToolError
from restorable.repository.manifest import BASE, PG_MANIFEST, BackupManifest
from restorable.services import Services


def server_major(manifest: BackupManifest) -> int | None:
    num = (manifest.physical or {}).get("server_version_num")
    return int(num) // 10000 if num else None


def as_postgres() -> list[str]:
    """PostgreSQL's programs refuse root: run them as the postgres user when this process is root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def chown_to_postgres(path: Path) -> None:
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
        chown_to_postgres(target_dir)
        reachable = subprocess.run([*as_postgres(), "test", "-w", str(target_dir)], capture_output=True)
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
    chown_to_postgres(target_dir)  # the server (and pg_verifybackup) run as postgres
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
    untar = ["tar", "-x", "-f", "-", "-C", str(directory), "--no-same-owner"]
    with running(untar, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env()) as tar:
        assert tar.stdin is not None and tar.stderr is not None
        tail = StreamTail(tar.stderr, "tar")
        body = store.open_read(obj.key, version_id=obj.version_id)
        with ExitStack() as stack:
            stack.callback(body.close)
            digests = decode_stream(body, tar.stdin, identity=identity, on_progress=on_progress)
            tar.stdin.close()
            returncode = tar.wait()
            tail.join()
    if returncode != 0:
        raise ToolError(f"tar could not extract {obj.key}: {tail.text()[-500:]}", database=base.database_id)
    chown_to_postgres(directory)
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
    tool = find_pg_binary("pg_verifybackup", server_major(base))
    started = time.monotonic()
    done = subprocess.run(
        [*as_postgres(), tool, "-n", str(target_dir)], capture_output=True, text=True, env=child_env()
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
