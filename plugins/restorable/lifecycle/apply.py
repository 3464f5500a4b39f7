"""Carry out a retention plan on the bucket: delete, transition, clean orphans; or say what would happen.

Deleting a backup is ordered so that no reader ever finds a manifest pointing at missing data:

1. every object of the backup is checked for Object Lock retention and legal hold first. On a
   versioned bucket a plain DELETE is *never* refused by a lock (S3 and SeaweedFS both just add a
   delete marker over the locked version), so without this check a locked backup would vanish
   from the catalog while its bytes stay, unremovable, until the lock ends;
2. ``manifest.json`` is deleted first: it is the commit, so from here on the backup does not
   exist for readers (catalog, restore, drills);
3. then the verification records, then the data.

A crash between steps leaves objects without a manifest: an orphan, which the next run removes
once it is older than ``orphan_min_age``.

Versioned buckets: by default only the current versions are deleted (S3 adds delete markers), and
the bytes go when the bucket's ``NoncurrentVersionExpiration`` rule expires them (the bucket audit
checks that the rule exists). Until then a mistaken delete can be undone by removing the delete
markers. ``purge_versions=True`` deletes every version at once instead (needs
``s3:DeleteObjectVersion``): use it where the store has no lifecycle rules.

The listing comes from ``scan_bucket`` (manifests, verification records, lock state, orphans).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from restorable.exceptions import NotFound, RestorableError
from restorable.lifecycle.plan import BackupSummary, Decision, plan
from restorable.lifecycle.policy import RetentionPolicy

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
VERIFICATIONS = "verifications"
#: Verification kinds that count toward "verified" (as in restorable.repository.catalog.CatalogEntry).
VERIFICATION_KINDS = ("checksum", "deep", "drill")


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_time(text: Any) -> datetime | None:
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class OrphanBackup:
    """Objects under ``<db>/<backup_id>/`` with no manifest: a crashed upload or a half-done delete."""

    database: str
    backup_id: str
    key_prefix: str
    keys: tuple[str, ...]
    size: int
    last_modified: datetime


@dataclass
class BucketScan:
    prefix: str
    backups: dict[str, list[BackupSummary]] = field(default_factory=dict)
    orphans: list[OrphanBackup] = field(default_factory=list)
    #: Manifests that could not be read or understood: (key, error). Their backups are left alone.
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def backup_prefix(prefix: str, database: str, backup_id: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{database}/{backup_id}/" if prefix else f"{database}/{backup_id}/"


def is_verified(records: Iterable[Mapping[str, Any]]) -> bool:
    """Read back (or restored) successfully at least once, and the latest check did not fail.

    ``records`` in time order; the same rule as ``restorable.repository.catalog.CatalogEntry.verified``.
    """
    checks = [r for r in records if r.get("kind") in VERIFICATION_KINDS]
    return bool(checks) and bool(checks[-1].get("ok")) and any(r.get("ok") for r in checks)


def _lock_state(head: Mapping[str, Any] | None) -> tuple[datetime | None, bool]:
    """(retain_until, legal_hold) from a HeadObject response."""
    if not head:
        return None, False
    until = _parse_time(head.get("ObjectLockRetainUntilDate")) if head.get("ObjectLockMode") else None
    return until, head.get("ObjectLockLegalHoldStatus") == "ON"


def scan_bucket(store: Any, prefix: str, *, read_lock_state: bool = True) -> BucketScan:
    """List ``<prefix>/`` and build a ``BackupSummary`` per committed backup, plus the orphans.

    Reads each manifest (``backup_id``, ``database_id``, ``created_at`` or ``finished_at``,
    ``data.key``, ``data.stored_bytes`` or ``data.size_stored``, optional ``object_lock.retain_until``)
    and each verification record (``kind``, ``ok``). With ``read_lock_state`` the manifest's current
    retention and legal hold are read from the store (one HEAD per backup): a legal hold set after
    the backup is recorded nowhere else.
    """
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    groups: dict[tuple[str, str], list[Any]] = {}
    for obj in store.list_objects(base):
        parts = obj.key[len(base) :].split("/")
        if len(parts) < 3 or not parts[0] or not parts[1]:
            continue  # not ours: <prefix>/<db>/<backup_id>/<name...>
        groups.setdefault((parts[0], parts[1]), []).append(obj)

    scan = BucketScan(prefix=prefix.strip("/"))
    for (database, backup_id), objects in sorted(groups.items()):
        key_prefix = backup_prefix(prefix, database, backup_id)
        by_name = {o.key[len(key_prefix) :]: o for o in objects}
        if MANIFEST not in by_name:
            scan.orphans.append(
                OrphanBackup(
                    database,
                    backup_id,
                    key_prefix,
                    tuple(sorted(o.key for o in objects)),
                    sum(o.size for o in objects),
                    max(_parse_time(o.last_modified) or datetime.now(UTC) for o in objects),
                )
            )
            continue
        manifest_key = key_prefix + MANIFEST
        try:
            summary = _summarise(store, database, backup_id, key_prefix, by_name, read_lock_state)
        except (RestorableError, ValueError, KeyError, TypeError) as exc:
            log.warning("lifecycle unreadable manifest key=%s error=%s", manifest_key, exc)
            scan.unreadable.append((manifest_key, str(exc)))
            continue
        scan.backups.setdefault(database, []).append(summary)
    return scan


def _summarise(
    store: Any, database: str, backup_id: str, key_prefix: str, by_name: dict[str, Any], read_lock_state: bool
) -> BackupSummary:
    manifest = store.get_json(key_prefix + MANIFEST)
    if not isinstance(manifest, Mapping):
        raise ValueError("manifest is not a JSON object")
    if manifest.get("backup_id", backup_id) != backup_id:
        raise ValueError(f"manifest names backup {manifest.get('backup_id')!r}, its key says {backup_id!r}")
    created = _parse_time(manifest.get("created_at")) or _parse_time(manifest.get("finished_at"))
    if created is None:
        raise ValueError("manifest has neither created_at nor finished_at as an ISO time")
    data = manifest.get("data") or {}
    data_name = str(data.get("key", "")).rsplit("/", 1)[-1] or None
    if data_name not in by_name:
        data_name = next((n for n in sorted(by_name) if n.startswith("data.")), None)
    data_obj = by_name.get(data_name) if data_name else None
    size = data_obj.size if data_obj is not None else int(data.get("stored_bytes") or data.get("size_stored") or 0)

    records = []
    for name in sorted(n for n in by_name if n.startswith(f"{VERIFICATIONS}/")):
        try:
            record = store.get_json(key_prefix + name)
        except RestorableError as exc:
            log.warning("lifecycle unreadable verification key=%s error=%s", key_prefix + name, exc)
            continue
        if isinstance(record, Mapping):
            record = dict(record)
            # Older records may lack "kind"; the file name ends in -<kind>.json.
            record.setdefault("kind", name.rsplit("-", 1)[-1].removesuffix(".json"))
            records.append(record)

    lock = manifest.get("object_lock") or {}
    retain_until = _parse_time(lock.get("retain_until")) if isinstance(lock, Mapping) else None
    legal_hold = False
    if read_lock_state:
        head_until, legal_hold = _lock_state(store.head(key_prefix + MANIFEST, checksum=False))
        if head_until is not None and (retain_until is None or head_until > retain_until):
            retain_until = head_until
    return BackupSummary(
        backup_id=backup_id,
        database=database,
        created_at=created,
        verified=is_verified(records),
        size=size,
        storage_class=data_obj.storage_class if data_obj is not None else None,
        retain_until=retain_until,
        legal_hold=legal_hold,
        complete=data_obj is not None,
        key_prefix=key_prefix,
    )


# --------------------------------------------------------------------------- the report


@dataclass
class Outcome:
    database: str
    backup_id: str | None
    reason: str
    key_prefix: str | None = None
    bytes: int = 0
    storage_class: str | None = None
    keys: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LifecycleReport:
    now: datetime
    dry_run: bool
    kept: list[Outcome] = field(default_factory=list)
    transitioned: list[Outcome] = field(default_factory=list)
    deleted: list[Outcome] = field(default_factory=list)
    retained_by_lock: list[Outcome] = field(default_factory=list)
    orphans_removed: list[Outcome] = field(default_factory=list)
    uploads_aborted: list[Outcome] = field(default_factory=list)
    errors: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        return {
            name: len(getattr(self, name))
            for name in (
                "kept",
                "transitioned",
                "deleted",
                "retained_by_lock",
                "orphans_removed",
                "uploads_aborted",
                "errors",
            )
        }

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"now": _iso(self.now), "dry_run": self.dry_run, "counts": self.counts()}
        out["bytes_deleted"] = sum(o.bytes for o in self.deleted) + sum(o.bytes for o in self.orphans_removed)
        for name in self.counts():
            out[name] = [o.to_dict() for o in getattr(self, name)]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# --------------------------------------------------------------------------- enforcing


def enforce(
    store: Any,
    catalog_listing: BucketScan,
    policies_by_db: Mapping[str, RetentionPolicy],
    now: datetime,
    *,
    dry_run: bool,
    orphan_min_age: timedelta,
    purge_versions: bool = False,
    clean_orphans: bool = True,
) -> LifecycleReport:
    """Plan every database with its policy and apply the plan (or only report it, ``dry_run``).

    Databases in the bucket without a policy keep everything. Failures are collected in
    ``report.errors`` and do not stop the other backups; the caller decides whether that fails
    the run (``report.ok``).
    """
    if now.tzinfo is None:
        raise ValueError("enforce(): now must be timezone-aware")
    report = LifecycleReport(now=now, dry_run=dry_run)
    for key, error in catalog_listing.unreadable:
        database = key.rsplit("/", 3)[-3] if key.count("/") >= 2 else ""
        report.errors.append(
            Outcome(database, key.rsplit("/", 2)[-2], f"manifest unreadable, backup left alone: {error}", key)
        )
    for database in sorted(catalog_listing.backups):
        backups = catalog_listing.backups[database]
        by_id = {b.backup_id: b for b in backups}
        policy = policies_by_db.get(database)
        if policy is None:
            for backup in backups:
                report.kept.append(
                    _outcome(backup, "kept: no retention policy is configured for this database", catalog_listing)
                )
            continue
        for decision in plan(backups, policy, now):
            _apply_decision(
                store, by_id[decision.backup_id], decision, report, catalog_listing, dry_run, purge_versions
            )
    if clean_orphans:
        _clean_orphans(store, catalog_listing, now, orphan_min_age, report, dry_run, purge_versions)
    log.info(
        "lifecycle done dry_run=%s %s",
        dry_run,
        " ".join(f"{k}={v}" for k, v in report.counts().items()),
    )
    return report


def _outcome(backup: BackupSummary, reason: str, scan: BucketScan, **kw: Any) -> Outcome:
    kw.setdefault("storage_class", backup.storage_class)
    return Outcome(
        backup.database,
        backup.backup_id,
        reason,
        backup.key_prefix or backup_prefix(scan.prefix, backup.database, backup.backup_id),
        backup.size,
        **kw,
    )


def _apply_decision(
    store: Any,
    backup: BackupSummary,
    decision: Decision,
    report: LifecycleReport,
    scan: BucketScan,
    dry_run: bool,
    purge_versions: bool,
) -> None:
    if decision.action == "keep":
        target = report.retained_by_lock if decision.retained_by else report.kept
        target.append(_outcome(backup, decision.reason, scan))
        return
    if decision.action == "transition":
        outcome = _outcome(backup, decision.reason, scan, storage_class=decision.target_storage_class)
        if not dry_run:
            try:
                outcome.keys = _transition_backup(
                    store, outcome.key_prefix, decision.target_storage_class, purge_versions
                )
            except RestorableError as exc:
                outcome.reason = f"transition to {decision.target_storage_class} failed: {exc}"
                report.errors.append(outcome)
                return
        report.transitioned.append(outcome)
        return
    outcome = _outcome(backup, decision.reason, scan)
    try:
        refusal = _delete_backup(store, outcome, dry_run=dry_run, purge_versions=purge_versions)
    except RestorableError as exc:
        outcome.reason = f"delete failed: {exc}"
        report.errors.append(outcome)
        log.error("lifecycle delete failed database=%s backup=%s error=%s", backup.database, backup.backup_id, exc)
        return
    if refusal is not None:
        outcome.reason = refusal
        report.retained_by_lock.append(outcome)
        return
    report.deleted.append(outcome)


def _delete_order(keys: Iterable[str], key_prefix: str) -> list[str]:
    """manifest.json first (the commit), verification records next, the data and anything else last."""

    def rank(key: str) -> tuple[int, str]:
        name = key[len(key_prefix) :]
        if name == MANIFEST:
            return 0, name
        if name.startswith(f"{VERIFICATIONS}/"):
            return 1, name
        return 2, name

    return sorted(keys, key=rank)


def lock_refusal(store: Any, keys: Iterable[str], *, at: datetime | None = None) -> str | None:
    """Why Object Lock would keep these objects (retention or legal hold), or None.

    Uses the wall clock unless ``at`` is given: the store enforces locks by its own clock.
    """
    at = at or datetime.now(UTC)
    latest: datetime | None = None
    held = []
    for key in keys:
        until, hold = _lock_state(store.head(key, checksum=False))
        if hold:
            held.append(key)
        if until is not None and until > at and (latest is None or until > latest):
            latest = until
    if latest is not None:
        return f"retained until {_iso(latest)} by Object Lock"
    if held:
        return f"retained by a legal hold on {len(held)} object(s)"
    return None


def _delete_backup(store: Any, outcome: Outcome, *, dry_run: bool, purge_versions: bool) -> str | None:
    """Delete one backup as a unit; return the reason it was kept instead (a lock), or None."""
    from restorable.storage.s3 import ObjectLocked

    key_prefix = outcome.key_prefix
    keys = _delete_order((o.key for o in store.list_objects(key_prefix)), key_prefix)
    outcome.keys = keys
    if not keys:
        raise NotFound(f"{key_prefix} holds no objects any more", database=outcome.database)
    refusal = lock_refusal(store, keys)
    if refusal is not None:
        log.info("lifecycle retained database=%s backup=%s reason=%s", outcome.database, outcome.backup_id, refusal)
        return refusal
    if dry_run:
        return None
    for index, key in enumerate(keys):
        try:
            if purge_versions:
                store.delete_all_versions(key)
            else:
                store.delete_object(key)
        except ObjectLocked as exc:
            if index == 0:
                return (
                    f"retained until {_iso(exc.retain_until)} by Object Lock"
                    if exc.retain_until
                    else "retained by a legal hold"
                )
            raise _partial(outcome, keys, index, exc) from exc
        except RestorableError as exc:
            if index == 0:
                raise
            raise _partial(outcome, keys, index, exc) from exc
    log.info(
        "lifecycle deleted database=%s backup=%s objects=%d bytes=%d purge_versions=%s",
        outcome.database,
        outcome.backup_id,
        len(keys),
        outcome.bytes,
        purge_versions,
    )
    return None


def _partial(outcome: Outcome, keys: list[str], index: int, exc: RestorableError) -> RestorableError:
    return type(exc)(
        f"manifest deleted but {len(keys) - index} object(s) remain ({', '.join(keys[index:])}): {exc.message}",
        database=outcome.database,
        backup_id=outcome.backup_id,
        hint="The backup no longer exists for readers; the next run removes the rest as an orphan",
    )


def _transition_backup(store: Any, key_prefix: str, storage_class: str, purge_versions: bool) -> list[str]:
    """Copy the data object(s) onto themselves in ``storage_class``; manifest and records stay put."""
    moved = []
    for obj in store.list_objects(key_prefix):
        name = obj.key[len(key_prefix) :]
        if not name.startswith("data.") or obj.storage_class == storage_class:
            continue
        before = store.head(obj.key, checksum=False) or {}
        new_version = store.copy_storage_class(obj.key, storage_class)
        old_version = before.get("VersionId")
        if purge_versions and old_version and old_version not in ("null", new_version):
            store.delete_object(obj.key, version_id=old_version)
        moved.append(obj.key)
    return moved


def _clean_orphans(
    store: Any,
    scan: BucketScan,
    now: datetime,
    min_age: timedelta,
    report: LifecycleReport,
    dry_run: bool,
    purge_versions: bool,
) -> None:
    for orphan in scan.orphans:
        age = now - orphan.last_modified
        if age < min_age:
            continue
        outcome = Outcome(
            orphan.database,
            orphan.backup_id,
            f"orphan: {len(orphan.keys)} object(s) without a manifest, last written {_iso(orphan.last_modified)}",
            orphan.key_prefix,
            orphan.size,
            keys=list(orphan.keys),
        )
        try:
            refusal = lock_refusal(store, orphan.keys)
            if refusal is not None:
                outcome.reason = f"{outcome.reason}; {refusal}"
                report.retained_by_lock.append(outcome)
                continue
            if not dry_run:
                for key in orphan.keys:
                    if purge_versions:
                        store.delete_all_versions(key)
                    else:
                        store.delete_object(key)
        except RestorableError as exc:
            outcome.reason = f"orphan cleanup failed: {exc}"
            report.errors.append(outcome)
            continue
        report.orphans_removed.append(outcome)

    base = f"{scan.prefix}/" if scan.prefix else ""
    try:
        uploads = store.list_multipart_uploads(base)
    except RestorableError as exc:
        report.errors.append(Outcome("", None, f"could not list multipart uploads: {exc}", base))
        return
    for upload in uploads:
        initiated = _parse_time(upload.initiated)
        if initiated is None or now - initiated < min_age:
            continue
        parts = upload.key[len(base) :].split("/")
        outcome = Outcome(
            parts[0] if len(parts) > 1 else "",
            parts[1] if len(parts) > 2 else None,
            f"incomplete multipart upload {upload.upload_id} started {_iso(initiated)}: aborted",
            upload.key,
            keys=[upload.key],
        )
        if not dry_run:
            try:
                store.abort_multipart_upload(upload.key, upload.upload_id)
            except RestorableError as exc:
                outcome.reason = f"could not abort multipart upload {upload.upload_id}: {exc}"
                report.errors.append(outcome)
                continue
        report.uploads_aborted.append(outcome)


# --------------------------------------------------------------------------- legal hold


def set_legal_hold(store: Any, prefix: str, db: str, backup_id: str, on: bool) -> list[str]:
    """Put (``on``) or lift a legal hold on every object of one backup; return the keys.

    The data is held first and the manifest last, so a hold that fails half-way has already
    protected the bytes. A held backup is never deleted by lifecycle enforcement, whatever its age.
    """
    key_prefix = backup_prefix(prefix, db, backup_id)
    keys = [o.key for o in store.list_objects(key_prefix)]
    if not keys:
        raise NotFound(
            f"no objects under {key_prefix}",
            database=db,
            backup_id=backup_id,
            hint=f"List the backups with: restorable list {db}",
        )
    ordered = list(reversed(_delete_order(keys, key_prefix)))
    for key in ordered:
        store.set_legal_hold(key, on)
    log.info("lifecycle legal hold database=%s backup=%s on=%s objects=%d", db, backup_id, on, len(ordered))
    return ordered
