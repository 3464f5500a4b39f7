"""Re-read what was stored instead of trusting the upload's exit code.

The checksum mode re-reads every stored object the manifest lists and compares its sha256 and
size with the manifest; the deep mode also decrypts and decompresses a logical backup's dump,
checks the plain sha256, and has the engine's tool parse it (``pg_restore --list``). Every
result, pass or fail, is recorded beside the backup as an append-only verification record.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import TYPE_CHECKING, Any

from restorable.engines import engine_for
from restorable.exceptions import DecryptionError, IntegrityError, NotFound, RestorableError, StorageError
from restorable.logs import backup_log
from restorable.repository.manifest import DUMP, BackupManifest, StoredObject
from restorable.repository.sealed import open_sealed, read_sealed
from restorable.services import Services

if TYPE_CHECKING:
    from restorable.storage.protocol import Store

READ_SIZE = 1 << 20


def _checksum(store: Store, key: str, version_id: str | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    body = store.open_read(key, version_id=version_id)
    try:
        while chunk := body.read(READ_SIZE):
            digest.update(chunk)
            size += len(chunk)
    finally:
        body.close()
    return digest.hexdigest(), size


def _encryption_problems(
    store: Store, manifest: BackupManifest, key: str, version_id: str | None
) -> tuple[list[str], dict[str, Any]]:
    """Is the object at ``key`` age ciphertext to as many X25519 recipients as the manifest recorded?

    Read from its first bytes, without a key: an "encrypted" backup whose bytes are plaintext (or a data
    object replaced by a plain dump) fails here even in a checksum-only verify. Returns the problems and
    what the header showed (for the verification record).
    """
    from restorable.stream.header import HEADER_READ, header_problems, read_header

    body = store.open_read(key, version_id=version_id)
    try:
        head = body.read(HEADER_READ)
    finally:
        body.close()
    recipients = (manifest.encryption or {}).get("recipients")
    problems = header_problems(key, head, len(recipients) if isinstance(recipients, list) else None)
    return problems, read_header(head).to_dict()


def _key_object_problems(store: Store, manifest: BackupManifest) -> list[str]:
    """The wrapped key (envelope mode; KMS ciphertext, not age) is there as the manifest recorded it."""
    wrapped = (manifest.encryption or {}).get("key_object")
    if not wrapped:
        return []
    try:
        found = hashlib.sha256(store.get_bytes(wrapped["key"], version_id=wrapped.get("version_id"))).hexdigest()
    except NotFound:
        return [f"key object {wrapped['key']} is missing"]
    return [] if found == wrapped.get("sha256") else [f"key object {wrapped['key']} differs from its manifest's sha256"]


def _compare(obj: StoredObject, found_sha256: str, found_bytes: int) -> list[str]:
    problems = []
    if found_sha256 != obj.stored_sha256:
        problems.append(f"stored object {obj.key} has sha256 {found_sha256}, the manifest's is {obj.stored_sha256}")
    if found_bytes != obj.stored_bytes:
        problems.append(f"stored object {obj.key} is {found_bytes} bytes, the manifest says {obj.stored_bytes}")
    return problems


def _version_problems(store: Store, key: str, version_id: str | None) -> list[str]:
    """A newer version or a delete marker over the version the manifest recorded: tampering."""
    if version_id in (None, "null"):
        return []  # an unversioned bucket records no version to hold on to
    current = store.head(key, checksum=False)
    if current is None:
        return [f"stored object {key} is hidden by a delete marker over the recorded version {version_id}"]
    if current.get("VersionId") != version_id:
        return [
            f"stored object {key} has a newer version {current.get('VersionId')} over the recorded "
            f"version {version_id} (tampering, or a rewrite: restores keep reading the recorded one)"
        ]
    return []


def _read_manifest(services: Services, database_id: str, backup_id: str, kind: str) -> BackupManifest:
    """The manifest to verify; a damaged one of a named backup is recorded as a failed verification."""
    catalog = services.catalog("restore")
    try:
        return catalog.read_manifest(database_id, backup_id)
    except IntegrityError as exc:
        if backup_id != "latest":
            _record(services, database_id, backup_id, kind, {"ok": False, "problems": [exc.message]})
        raise


def _record(services: Services, database_id: str, backup_id: str, kind: str, record: dict[str, Any]) -> str | None:
    try:
        return services.catalog("backup").record(database_id, backup_id, kind, record)
    except StorageError as exc:
        # During an incident an operator may hold read-only credentials: the verdict still counts.
        backup_log(__name__, database_id, backup_id).warning("verification result not recorded", error=exc.message)
        return None


def _deep_read_dump(
    store: Store, engine_name: str, obj: StoredObject, identity: str, record: dict[str, Any]
) -> tuple[str, int]:
    """Decrypt, decompress and parse a logical dump with the engine's own tool; (stored sha256, bytes)."""
    from restorable.stream.decode import decode_stream

    engine = engine_for(engine_name)
    body = store.open_read(obj.key, version_id=obj.version_id)
    try:
        with engine.logical.list_dump() as lister:
            digests = decode_stream(body, lister, identity=identity)
    finally:
        body.close()
    record.update(
        expected_plain_sha256=obj.plain_sha256,
        found_plain_sha256=digests.plain_sha256,
        plain_bytes=digests.plain_bytes,
        dump_entries=getattr(lister, "entries", None),
    )
    return digests.stored_sha256, digests.stored_bytes


def _deep_extract_base(services: Services, manifest: BackupManifest, identity: str) -> dict[str, Any]:
    """Extract a base backup into a private scratch directory, run ``pg_verifybackup``, remove it."""
    import shutil
    import tempfile
    from pathlib import Path

    from restorable.physical.extract import extract_base, prepare_directory, verify_extracted

    scratch = Path(tempfile.mkdtemp(prefix="restorable-verify-"))
    try:
        os.chmod(scratch, 0o711)  # the postgres user runs pg_verifybackup inside
        directory = scratch / "pgdata"
        prepare_directory(directory)
        figures = extract_base(services, manifest, directory, identity)
        return {**figures, **verify_extracted(manifest, directory)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
    kind = "deep" if deep else "checksum"
    manifest = _read_manifest(services, database_id, backup_id, kind)
    backup_id = manifest.backup_id
    log = backup_log(__name__, database_id, backup_id)
    started = time.monotonic()
    record: dict[str, Any] = {"kind_of_backup": manifest.kind, "objects": []}
    problems: list[str] = []

    def key() -> str:
        # Unwrapped (envelope mode) only when a deep verify needs it, and once.
        nonlocal identity
        from restorable.keys import identity_for

        identity = identity_for(services, catalog.store, manifest, identity)
        return identity

    try:
        if deep and manifest.kind == "physical":
            # Deep, for a base backup: extract it and let pg_verifybackup check every file.
            record["extracted"] = _deep_extract_base(services, manifest, key())
        for obj in manifest.objects:
            read_plain = deep and obj.role == DUMP
            tampered = _version_problems(catalog.store, obj.key, obj.version_id)
            try:
                not_age, header = _encryption_problems(catalog.store, manifest, obj.key, obj.version_id)
                tampered += not_age
                if read_plain:
                    found, size = _deep_read_dump(catalog.store, manifest.engine, obj, key(), record)
                else:
                    found, size = _checksum(catalog.store, obj.key, obj.version_id)
            except NotFound:
                problems.extend(tampered or [f"stored object {obj.key} is missing (version {obj.version_id})"])
                record["objects"].append({"key": obj.key, "role": obj.role, "ok": False, "missing": True})
                continue
            # The stored bytes first: a plain mismatch follows from a stored one, not the reverse.
            checked = tampered + _compare(obj, found, size)
            if read_plain and record["found_plain_sha256"] != obj.plain_sha256:
                checked.append(
                    f"plain dump sha256 {record['found_plain_sha256']} differs from the manifest's {obj.plain_sha256}"
                )
            problems.extend(checked)
            record["objects"].append(
                {
                    "key": obj.key,
                    "role": obj.role,
                    "found_stored_sha256": found,
                    "stored_bytes": size,
                    "age_header": header,
                    "ok": not checked,
                }
            )
            if obj.role == DUMP:
                # The dump's figures stay at the top of the record, as evidence readers expect them.
                record.update(expected_stored_sha256=obj.stored_sha256, found_stored_sha256=found, stored_bytes=size)
        if manifest.sealed:
            # The sealed settings are part of what a restore needs: re-read them too (and, deep,
            # decrypt them: a wrong key raises DecryptionError like the data's).
            problems.extend(_version_problems(catalog.store, manifest.sealed["key"], manifest.sealed.get("version_id")))
            try:
                sealed_key, sealed_version = manifest.sealed["key"], manifest.sealed.get("version_id")
                not_age, record["sealed_age_header"] = _encryption_problems(
                    catalog.store, manifest, sealed_key, sealed_version
                )
                problems.extend(not_age)
                if deep:
                    open_sealed(catalog.store, manifest, key())
                elif read_sealed(catalog.store, manifest)[1] != manifest.sealed["sha256"]:
                    problems.append(f"{manifest.sealed['key']} differs from the sha256 in the manifest")
            except NotFound:
                problems.append(f"sealed object {manifest.sealed['key']} is missing")
            record["sealed_sha256"] = manifest.sealed["sha256"]
        problems.extend(_key_object_problems(catalog.store, manifest))
    except DecryptionError:
        raise  # a wrong key says nothing about the backup
    except IntegrityError as exc:
        problems.append(exc.message)
    except RestorableError as exc:
        # Storage or tool trouble is not a verdict on the backup: re-raise without recording "bad".
        exc.database, exc.backup_id = exc.database or database_id, exc.backup_id or backup_id
        raise
    record.update(ok=not problems, problems=problems, seconds=round(time.monotonic() - started, 3))
    record["record_key"] = _record(services, database_id, backup_id, kind, record)
    if problems:
        log.error("verification failed", kind=kind, problems=len(problems))
        raise IntegrityError(
            f"backup {backup_id} of {database_id} failed {kind} verification: " + "; ".join(problems),
            database=database_id,
            backup_id=backup_id,
            hint="Do not rely on this backup; take a new one and investigate the storage",
        )
    log.info("verification passed", kind=kind, objects=len(manifest.objects))
    return {"backup_id": backup_id, "database_id": database_id, "kind": kind, **record}
