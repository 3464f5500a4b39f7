"""``restorable copy DB [BACKUP]``: a verified copy of a backup in each destination of ``storage.copies``.

For each destination (``copies/__init__.py`` describes what a copy holds)::

    copy_objects      every stored object and the sealed settings, server-side or streamed,
                      with the destination's Object Lock and storage class (copies/transfer.py)
    read back         each copied object's sha256 and size against the primary manifest's;
                      any difference ends here: nothing is committed, the copy is not verified
    commit            the rebased manifest (keys under the destination's prefix, its version ids)
    record            the copy's own checksum record in the destination, a copy record in the primary

Only a verified backup is copied (the backup DAG runs this after ``verify_checksum``), and the
destinations are tried one after the other: one that fails does not stop the others, and the
command fails at the end naming each that did. A destination that already holds the backup is
re-read and recorded again, so a retried task converges instead of duplicating.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from restorable.copies.destinations import copy_services, destinations
from restorable.copies.transfer import read_back, transfer
from restorable.exceptions import ConfigError, IntegrityError, NotFound, RestorableError, StorageError
from restorable.logs import backup_log
from restorable.repository.catalog import Catalog, is_verified, stored_keys
from restorable.repository.manifest import BackupManifest, iso, utcnow
from restorable.services import Services

if TYPE_CHECKING:
    from restorable.config_copies import CopyDestination

#: The primary-side record of one copy attempt (``verifications/<ts>-copy.json``).
COPY_RECORD = "copy"


@dataclass
class Piece:
    """One object to copy: where it is in the primary and what the primary manifest says of it."""

    key: str
    version_id: str | None
    stored_bytes: int
    stored_sha256: str
    role: str


@dataclass
class CopyResult:
    """What one destination holds of one backup after ``copy_backup``."""

    destination: str
    bucket: str
    prefix: str
    backup_id: str
    ok: bool
    objects: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    already: bool = False
    #: Bytes read back differ from the manifest's (an integrity failure, not a storage one).
    mismatch: bool = False
    manifest_key: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def pieces(manifest: BackupManifest) -> list[Piece]:
    """Every object a restore of ``manifest`` reads: its stored objects, the sealed settings, and
    (envelope mode) the key object its KMS wrapped."""
    found = [Piece(o.key, o.version_id, o.stored_bytes, o.stored_sha256, o.role) for o in manifest.objects]
    if manifest.sealed and manifest.sealed.get("key"):
        sealed = manifest.sealed
        found.append(
            Piece(sealed["key"], sealed.get("version_id"), sealed.get("bytes", -1), sealed["sha256"], "sealed")
        )
    own = (manifest.encryption or {}).get("key_object") or {}
    if own.get("key"):
        found.append(Piece(own["key"], own.get("version_id"), own.get("bytes", -1), own["sha256"], "wrapped_key"))
    return found


def rotated_keys(primary: Catalog, manifest: BackupManifest) -> list[Piece]:
    """The key objects ``keys rotate`` wrote beside the backup (not in its manifest: a restore lists
    them). A copy needs them: once the KMS retires the old key version, the backup's own key object
    no longer unwraps. Their sha256 is taken from the primary, to hold the copy's read-back to."""
    found = []
    for obj in primary.store.list_objects(primary.layout.rewrapped_prefix(manifest.database_id, manifest.backup_id)):
        sha256, size = read_back(primary.store, obj.key, None)
        found.append(Piece(obj.key, None, size, sha256, "rewrapped_key"))
    return found


def rebased_manifest(
    manifest: BackupManifest, stored: dict[str, tuple[str, str | None]], lock: dict[str, Any] | None
) -> BackupManifest:
    """``manifest`` as the destination holds it: its keys and version ids (``stored``: key -> both)."""
    data = manifest.to_dict()
    for obj in data["objects"]:
        obj["key"], obj["version_id"] = stored[obj["key"]]
    if data.get("sealed") and data["sealed"].get("key"):
        data["sealed"]["key"], data["sealed"]["version_id"] = stored[data["sealed"]["key"]]
    own = (data.get("encryption") or {}).get("key_object")
    if own and own.get("key"):
        own["key"], own["version_id"] = stored[own["key"]]
    data["object_lock"] = lock
    return BackupManifest.from_dict(data)


def copy_backup(
    services: Services, database_id: str, backup_id: str = "latest", *, names: list[str] | None = None
) -> list[CopyResult]:
    """Copy one verified backup to each destination (``names``: only those); raise when any failed."""
    chosen = destinations(services.config, names)
    if not chosen:
        raise NotFound(
            f"{services.config.path}: storage.copies is empty: there is nowhere to copy {database_id} to",
            database=database_id,
            hint="Add a destination under storage.copies (another bucket, region or provider)",
        )
    primary = services.catalog("restore")
    for copy in chosen:  # a config mistake, before anything is read or written
        _refuse_itself(primary, copy_services(services, copy.name).catalog("backup"), copy)
    manifest = _verified_manifest(primary, database_id, backup_id)
    results = [_copy_to(services, primary, manifest, copy) for copy in chosen]
    failed = [r for r in results if not r.ok]
    if failed:
        error_type = IntegrityError if any(r.mismatch for r in failed) else StorageError
        raise error_type(
            f"backup {manifest.backup_id} of {database_id} was not copied to "
            + "; ".join(f"{r.destination}: {'; '.join(r.problems)}" for r in failed),
            database=database_id,
            backup_id=manifest.backup_id,
            hint="Copies that failed their read-back are not committed; retry (restorable copy), "
            "and check the primary (restorable verify) and the destination",
        )
    return results


def _verified_manifest(primary: Catalog, database_id: str, backup_id: str) -> BackupManifest:
    if backup_id == "latest":
        return primary.pick(database_id, verified_only=True).manifest
    manifest = primary.read_manifest(database_id, backup_id)
    if not is_verified(primary.verifications(database_id, manifest.backup_id)):
        raise IntegrityError(
            f"backup {manifest.backup_id} of {database_id} is not verified: only a verified backup is copied",
            database=database_id,
            backup_id=manifest.backup_id,
            hint=f"Verify it first: restorable verify {database_id} {manifest.backup_id}",
        )
    return manifest


def _copy_to(services: Services, primary: Catalog, manifest: BackupManifest, copy: CopyDestination) -> CopyResult:
    """One destination: copy, read back, commit, record; a result (a storage error is one of its problems)."""
    log = backup_log(__name__, manifest.database_id, manifest.backup_id)
    started = time.monotonic()
    result = CopyResult(copy.name, copy.bucket, copy.prefix, manifest.backup_id, ok=False)
    try:
        dest = copy_services(services, copy.name).catalog("backup")
        if dest.has_manifest(manifest.database_id, manifest.backup_id):
            result.already = True
            _reread_committed(services, manifest, copy, dest, result)  # verify records its own verdict
        else:
            _copy_and_commit(primary, manifest, dest, copy, result)
        result.seconds = round(time.monotonic() - started, 3)
        if not result.problems and not result.already:
            # The destination's verdict, by the rule its own catalog applies (catalog.is_verified).
            dest.record(
                manifest.database_id, manifest.backup_id, "checksum", _checksum_record(primary, manifest, result)
            )
        result.ok = not result.problems
    except RestorableError as exc:
        result.problems.append(exc.message)
    result.seconds = round(time.monotonic() - started, 3)
    _record_in_primary(services, manifest, result)
    (log.info if result.ok else log.error)(
        "copy " + ("verified" if result.ok else "FAILED"),
        destination=copy.name,
        objects=len(result.objects),
        already=result.already,
        problems=len(result.problems),
    )
    return result


def _refuse_itself(primary: Catalog, dest: Catalog, copy: CopyDestination) -> None:
    """A destination that is the primary's own bucket and prefix would "verify" the primary against itself."""
    same_endpoint = getattr(dest.store, "same_endpoint", None)
    same_bucket = dest.store is primary.store or (
        dest.store.bucket == primary.store.bucket and (same_endpoint is None or same_endpoint(primary.store))
    )
    if same_bucket and dest.prefix == primary.prefix:
        raise ConfigError(
            f"copy {copy.name} is the primary storage itself (s3://{copy.bucket}/{copy.prefix} on the same endpoint)",
            hint="Point storage.copies at another bucket (another region or provider), or at least another prefix",
        )


def _copy_and_commit(
    primary: Catalog, manifest: BackupManifest, dest: Catalog, copy: CopyDestination, result: CopyResult
) -> None:
    now = utcnow()
    retain_until = now + timedelta(days=copy.lock_days) if copy.lock_mode and copy.lock_days else None
    lock_mode = copy.lock_mode if retain_until else None
    stored: dict[str, tuple[str, str | None]] = {}
    unknown = sorted(set(stored_keys(manifest)) - {p.key for p in pieces(manifest)})
    if unknown:
        # A restore would read these too, and the copy would not hold them: refuse rather than
        # commit a copy that looks complete (a newer manifest field this version does not rebase).
        result.problems.append("this version cannot copy " + ", ".join(unknown) + " (not a stored object it knows)")
        return
    source_prefix = primary.layout.backup_prefix(manifest.database_id, manifest.backup_id)
    for piece in pieces(manifest) + rotated_keys(primary, manifest):
        # The same path inside the backup's directory (key objects of rotations sit in keys/).
        dest_key = dest.layout.backup_prefix(manifest.database_id, manifest.backup_id) + piece.key[len(source_prefix) :]
        moved = transfer(
            primary.store,
            piece.key,
            piece.version_id,
            dest.store,
            dest_key,
            size=piece.stored_bytes,
            lock_mode=lock_mode,
            retain_until=retain_until,
            storage_class=copy.storage_class,
        )
        _check_piece(dest, piece, dest_key, moved.version_id, moved.how, result)
        stored[piece.key] = (dest_key, moved.version_id)
    if result.problems:
        return  # never commit a copy whose bytes differ: it must not look restorable
    lock = {"mode": lock_mode, "retain_until": iso(retain_until)} if retain_until else None
    rebased = rebased_manifest(manifest, stored, lock)
    result.manifest_key = dest.write_manifest(rebased, lock_mode=lock_mode, retain_until=retain_until)


def _check_piece(
    dest: Catalog, piece: Piece, key: str, version_id: str | None, how: str | None, result: CopyResult
) -> None:
    found, size = read_back(dest.store, key, version_id)
    problems = []
    if found != piece.stored_sha256:
        problems.append(f"copied object {key} has sha256 {found}, the manifest's is {piece.stored_sha256}")
    if piece.stored_bytes >= 0 and size != piece.stored_bytes:
        problems.append(f"copied object {key} is {size} bytes, the manifest says {piece.stored_bytes}")
    result.problems.extend(problems)
    result.mismatch = result.mismatch or bool(problems)
    result.objects.append(
        {
            "key": key,
            "role": piece.role,
            "version_id": version_id,
            "how": how,
            "found_stored_sha256": found,
            "stored_bytes": size,
            "ok": not problems,
        }
    )


def _reread_committed(
    services: Services, manifest: BackupManifest, copy: CopyDestination, dest: Catalog, result: CopyResult
) -> None:
    """The destination already committed this backup (a retry): verify it there, as ``verify --from`` does
    (a newer version over a recorded one counts as tampering), and hold its sha256s to the primary's."""
    from restorable.commands.verify import verify_backup

    held = dest.read_manifest(manifest.database_id, manifest.backup_id)
    result.manifest_key = dest.layout.manifest_key(manifest.database_id, manifest.backup_id)
    theirs = sorted((p.role, p.stored_sha256) for p in pieces(held))
    if theirs != sorted((p.role, p.stored_sha256) for p in pieces(manifest)):
        result.mismatch = True
        result.problems.append("the destination's manifest lists other objects than the primary's")
        return
    try:
        checked = verify_backup(copy_services(services, copy.name), manifest.database_id, manifest.backup_id)
    except IntegrityError as exc:
        result.mismatch = True
        result.problems.append(exc.message)
        return
    result.objects = [{**o, "how": None} for o in checked["objects"]]


def _checksum_record(primary: Catalog, manifest: BackupManifest, result: CopyResult) -> dict[str, Any]:
    """The destination's own verification record: what its read-back found, and what it is a copy of."""
    return {
        "ok": True,
        "problems": [],
        "kind_of_backup": manifest.kind,
        "objects": result.objects,
        "seconds": result.seconds,
        "copy_of": {
            "bucket": primary.store.bucket,
            "prefix": primary.prefix,
            # Of the primary's manifest as stored (the copy's own is rebased, so it differs).
            "manifest_sha256": hashlib.sha256(
                primary.store.get_bytes(primary.layout.manifest_key(manifest.database_id, manifest.backup_id))
            ).hexdigest(),
        },
    }


def _record_in_primary(services: Services, manifest: BackupManifest, result: CopyResult) -> None:
    try:
        services.catalog("backup").record(manifest.database_id, manifest.backup_id, COPY_RECORD, result.to_dict())
    except StorageError as exc:
        # The destination's own records are what restores trust; this one is for reports.
        backup_log(__name__, manifest.database_id, manifest.backup_id).warning(
            "copy result not recorded in the primary", error=exc.message
        )


def copy_status(services: Services, database_id: str) -> list[dict[str, Any]]:
    """Per backup of the primary, each destination's newest copy record: which copies exist and verified."""
    primary = services.catalog("restore")
    rows = []
    for entry in primary.entries(database_id):
        keys = [k for k in entry.verification_keys if k.rsplit("/", 1)[-1].endswith(f"-{COPY_RECORD}.json")]
        latest: dict[str, dict[str, Any]] = {}
        for key in keys:  # oldest first: the newest per destination wins
            record = primary.store.get_json(key)
            latest[record.get("destination", "?")] = {
                "ok": bool(record.get("ok")),
                "checked_at": record.get("checked_at"),
            }
        rows.append({"backup_id": entry.backup_id, "created_at": entry.summary.get("created_at"), "copies": latest})
    return rows
