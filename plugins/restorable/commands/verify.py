"""Re-read what was stored instead of trusting the upload's exit code.

The checksum mode re-reads the stored object and compares its sha256 with the manifest; the
deep mode also decrypts and decompresses it, checks the plain sha256, and has the engine's
tool parse the dump (``pg_restore --list``). Every result, pass or fail, is recorded beside
the backup as an append-only verification record.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from restorable.engines import engine_for
from restorable.exceptions import DecryptionError, IntegrityError, RestorableError, StorageError
from restorable.logs import backup_log
from restorable.repository.manifest import BackupManifest
from restorable.repository.sealed import open_sealed, read_sealed
from restorable.services import Services

READ_SIZE = 1 << 20


def _checksum(store: Any, manifest: BackupManifest) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    body = store.open_read(manifest.data.key)
    try:
        while chunk := body.read(READ_SIZE):
            digest.update(chunk)
            size += len(chunk)
    finally:
        body.close()
    return digest.hexdigest(), size


def verify_backup(
    services: Services,
    database_id: str,
    backup_id: str = "latest",
    *,
    deep: bool = False,
    identity: str | None = None,
) -> dict[str, Any]:
    """Verify one backup; record and return the result; raise IntegrityError on a mismatch."""
    # Reading needs only the restore reader's rights; the record is written with the backup
    # writer's (put, no delete): verification is part of making a backup.
    catalog = services.catalog("restore")
    manifest = catalog.read_manifest(database_id, backup_id)
    backup_id = manifest.backup_id
    log = backup_log(__name__, database_id, backup_id)
    started = time.monotonic()
    kind = "deep" if deep else "checksum"
    record: dict[str, Any] = {"expected_stored_sha256": manifest.data.stored_sha256}
    problems: list[str] = []
    try:
        if deep:
            from restorable.stream.decode import decode_stream

            engine = engine_for(manifest.engine)
            body = catalog.store.open_read(manifest.data.key)
            try:
                with engine.logical.list_dump() as lister:
                    digests = decode_stream(body, lister, identity=identity or services.identity())
            finally:
                body.close()
            record.update(
                found_stored_sha256=digests.stored_sha256,
                stored_bytes=digests.stored_bytes,
                expected_plain_sha256=manifest.data.plain_sha256,
                found_plain_sha256=digests.plain_sha256,
                plain_bytes=digests.plain_bytes,
                dump_entries=getattr(lister, "entries", None),
            )
            if digests.plain_sha256 != manifest.data.plain_sha256:
                problems.append(
                    f"plain dump sha256 {digests.plain_sha256} differs from the manifest's {manifest.data.plain_sha256}"
                )
        else:
            found, size = _checksum(catalog.store, manifest)
            record.update(found_stored_sha256=found, stored_bytes=size)
        if record["found_stored_sha256"] != manifest.data.stored_sha256:
            problems.insert(
                0,
                f"stored object sha256 {record['found_stored_sha256']} differs from the manifest's "
                f"{manifest.data.stored_sha256}",
            )
        if record["stored_bytes"] != manifest.data.stored_bytes:
            problems.append(
                f"stored object is {record['stored_bytes']} bytes, the manifest says {manifest.data.stored_bytes}"
            )
        if manifest.sealed:
            # The sealed settings are part of what a restore needs: re-read them too (and, deep,
            # decrypt them: a wrong key raises DecryptionError like the data's).
            if deep:
                open_sealed(catalog.store, manifest, identity or services.identity())
            elif read_sealed(catalog.store, manifest)[1] != manifest.sealed["sha256"]:
                problems.append(f"{manifest.sealed['key']} differs from the sha256 in the manifest")
            record["sealed_sha256"] = manifest.sealed["sha256"]
    except DecryptionError:
        raise  # a wrong key says nothing about the backup
    except IntegrityError as exc:
        problems.append(exc.message)
    except RestorableError as exc:
        # Storage or tool trouble is not a verdict on the backup: re-raise without recording "bad".
        exc.database, exc.backup_id = exc.database or database_id, exc.backup_id or backup_id
        raise
    record.update(ok=not problems, problems=problems, seconds=round(time.monotonic() - started, 3))
    try:
        record["record_key"] = services.catalog("backup").record(database_id, backup_id, kind, record)
    except StorageError as exc:
        # During an incident an operator may hold read-only credentials: the verdict still counts.
        record["record_key"] = None
        log.warning("verification result not recorded in the bucket", error=exc.message)
    if problems:
        log.error("verification failed", kind=kind, problems=len(problems))
        raise IntegrityError(
            f"backup {backup_id} of {database_id} failed {kind} verification: " + "; ".join(problems),
            database=database_id,
            backup_id=backup_id,
            hint="Do not rely on this backup; take a new one and investigate the storage",
        )
    log.info("verification passed", kind=kind, stored_sha256=manifest.data.stored_sha256)
    return {"backup_id": backup_id, "database_id": database_id, "kind": kind, **record}
