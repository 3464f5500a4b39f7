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
Keys are classified by ``restorable.repository.layout`` and nothing else: only objects the
layout says belong to a backup can become orphans, so archives under ``<db>/wal/`` and
``<db>/binlog/``, key objects under ``_keys/`` and keys it does not know are never deleted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from restorable.exceptions import NotFound, RestorableError
from restorable.lifecycle.binlog_plan import binlog_start_of
from restorable.lifecycle.plan import BackupSummary, Decision, plan
from restorable.lifecycle.policy import RetentionPolicy
from restorable.repository.catalog import is_verified
from restorable.repository.layout import KeyKind, Layout, backup_object_kind
from restorable.repository.lease import lease_expiry
from restorable.repository.manifest import stored_objects_of

if TYPE_CHECKING:
    from restorable.storage.protocol import Store

log = logging.getLogger(__name__)


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


def _lock_state(head: Mapping[str, Any] | None) -> tuple[datetime | None, bool]:
    """(retain_until, legal_hold) from a HeadObject response."""
    if not head:
        return None, False
    until = _parse_time(head.get("ObjectLockRetainUntilDate")) if head.get("ObjectLockMode") else None
    return until, head.get("ObjectLockLegalHoldStatus") == "ON"


def scan_bucket(store: Store, prefix: str, *, read_lock_state: bool = True) -> BucketScan:
    """List ``<prefix>/`` and build a ``BackupSummary`` per committed backup, plus the orphans.

    Reads each manifest (``backup_id``, ``database_id``, ``created_at`` or ``finished_at``,
    ``data.key``, ``data.stored_bytes`` or ``data.size_stored``, optional ``object_lock.retain_until``)
    and each verification record (``kind``, ``ok``). With ``read_lock_state`` the manifest's current
    retention and legal hold are read from the store (one HEAD per backup): a legal hold set after
    the backup is recorded nowhere else.
    """
    layout = Layout(prefix)
    groups: dict[tuple[str, str], list[Any]] = {}
    for obj in store.list_objects(layout.root):
        parsed = layout.parse(obj.key)
        if parsed.is_backup_object:  # archives, key objects and unknown keys are not ours to judge
            groups.setdefault((parsed.database, parsed.backup_id), []).append(obj)

    scan = BucketScan(prefix=layout.prefix)
    for (database, backup_id), objects in sorted(groups.items()):
        key_prefix = layout.backup_prefix(database, backup_id)
        by_name = {o.key[len(key_prefix) :]: o for o in objects}
        manifest_key = layout.manifest_key(database, backup_id)
        if manifest_key not in {o.key for o in objects}:
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
        try:
            summary = _summarise(store, layout, database, backup_id, by_name, read_lock_state)
        except (RestorableError, ValueError, KeyError, TypeError) as exc:
            log.warning("lifecycle unreadable manifest key=%s error=%s", manifest_key, exc)
            scan.unreadable.append((manifest_key, str(exc)))
            continue
        scan.backups.setdefault(database, []).append(summary)
    return scan


def _summarise(
    store: Store, layout: Layout, database: str, backup_id: str, by_name: dict[str, Any], read_lock_state: bool
) -> BackupSummary:
    key_prefix = layout.backup_prefix(database, backup_id)
    manifest_key = layout.manifest_key(database, backup_id)
    manifest = store.get_json(manifest_key)
    if not isinstance(manifest, Mapping):
        raise ValueError("manifest is not a JSON object")
    if manifest.get("backup_id", backup_id) != backup_id:
        raise ValueError(f"manifest names backup {manifest.get('backup_id')!r}, its key says {backup_id!r}")
    created = _parse_time(manifest.get("created_at")) or _parse_time(manifest.get("finished_at"))
    if created is None:
        raise ValueError("manifest has neither created_at nor finished_at as an ISO time")
    # Every stored object the manifest lists must be in the listing for the backup to be complete.
    listed = stored_objects_of(manifest)
    found, size, missing = [], 0, 0
    for entry in listed:
        obj = by_name.get(str(entry.get("key", ""))[len(key_prefix) :])
        if obj is None:
            missing += 1
            size += int(entry.get("stored_bytes") or entry.get("size_stored") or 0)
        else:
            found.append(obj)
            size += obj.size
    if not listed:
        # A manifest without a usable object list: judge by the data objects that are there.
        found = [o for n, o in sorted(by_name.items()) if backup_object_kind(n) is KeyKind.DATA]
        size = sum(o.size for o in found)

    records = []
    for name in sorted(n for n in by_name if backup_object_kind(n) is KeyKind.VERIFICATION):
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
        head_until, legal_hold = _lock_state(store.head(manifest_key, checksum=False))
        if head_until is not None and (retain_until is None or head_until > retain_until):
            retain_until = head_until
    wal = manifest.get("wal") if isinstance(manifest.get("wal"), Mapping) else {}
    return BackupSummary(
        kind=str(manifest.get("kind") or "logical"),
        wal_start=wal.get("start_segment") if manifest.get("kind") == "physical" else None,
        binlog_start=binlog_start_of(manifest),
        backup_id=backup_id,
        database=database,
        created_at=created,
        verified=is_verified(records),
        size=size,
        storage_class=found[0].storage_class if found else None,
        retain_until=retain_until,
        legal_hold=legal_hold,
        complete=bool(found) and not missing,
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
    #: Archived WAL no kept base backup needs, and binlogs no kept dump needs: one outcome per database each.
    wal_deleted: list[Outcome] = field(default_factory=list)
    binlog_deleted: list[Outcome] = field(default_factory=list)
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
                "wal_deleted",
                "binlog_deleted",
                "errors",
            )
        }

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"now": _iso(self.now), "dry_run": self.dry_run, "counts": self.counts()}
        removed = [*self.deleted, *self.orphans_removed, *self.wal_deleted, *self.binlog_deleted]
        out["bytes_deleted"] = sum(o.bytes for o in removed)
        for name in self.counts():
            out[name] = [o.to_dict() for o in getattr(self, name)]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# --------------------------------------------------------------------------- enforcing


def enforce(
    store: Store,
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
    layout = Layout(catalog_listing.prefix)
    for key, error in catalog_listing.unreadable:
        parsed = layout.parse(key)
        report.errors.append(
            Outcome(parsed.database or "", parsed.backup_id, f"manifest unreadable, backup left alone: {error}", key)
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
        decisions = plan(backups, policy, now)
        for decision in decisions:
            _apply_decision(
                store, by_id[decision.backup_id], decision, report, catalog_listing, dry_run, purge_versions
            )
        from restorable.lifecycle.archives import prune_archives

        prune_archives(store, layout, database, decisions, by_id, catalog_listing, report, dry_run, purge_versions)
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
        backup.key_prefix or Layout(scan.prefix).backup_prefix(backup.database, backup.backup_id),
        backup.size,
        **kw,
    )


def _apply_decision(
    store: Store,
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


_DELETE_RANK = {KeyKind.MANIFEST: 0, KeyKind.VERIFICATION: 1}


def _delete_order(keys: Iterable[str], key_prefix: str) -> list[str]:
    """manifest.json first (the commit), verification records next, the data and anything else last."""

    def rank(key: str) -> tuple[int, str]:
        name = key[len(key_prefix) :]
        return _DELETE_RANK.get(backup_object_kind(name), 2), name

    return sorted(keys, key=rank)


def lock_refusal(store: Store, keys: Iterable[str], *, at: datetime | None = None) -> str | None:
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


def _delete_backup(store: Store, outcome: Outcome, *, dry_run: bool, purge_versions: bool) -> str | None:
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


def _transition_backup(store: Store, key_prefix: str, storage_class: str, purge_versions: bool) -> list[str]:
    """Copy the data object(s) onto themselves in ``storage_class``; manifest and records stay put."""
    moved = []
    for obj in store.list_objects(key_prefix):
        name = obj.key[len(key_prefix) :]
        if backup_object_kind(name) is not KeyKind.DATA or obj.storage_class == storage_class:
            continue
        before = store.head(obj.key, checksum=False) or {}
        new_version = store.copy_storage_class(obj.key, storage_class)
        old_version = before.get("VersionId")
        if purge_versions and old_version and old_version not in ("null", new_version):
            store.delete_object(obj.key, version_id=old_version)
        moved.append(obj.key)
    return moved


def _live_leases(store: Store, layout: Layout, scan: BucketScan, now: datetime) -> set[tuple[str, str]]:
    """(database, backup_id) of the uncommitted backups whose lease has not expired: still streaming."""
    live = set()
    for orphan in scan.orphans:
        key = layout.lease_key(orphan.database, orphan.backup_id)
        if key in orphan.keys:
            expires = lease_expiry(store, key)
            if expires is not None and expires > now:
                log.info("lifecycle spares a backup in flight key=%s lease_until=%s", key, _iso(expires))
                live.add((orphan.database, orphan.backup_id))
    return live


def _clean_orphans(
    store: Store,
    scan: BucketScan,
    now: datetime,
    min_age: timedelta,
    report: LifecycleReport,
    dry_run: bool,
    purge_versions: bool,
) -> None:
    layout = Layout(scan.prefix)
    # A lease is about wall-clock time (renewed while the dump streams), whatever the run's date.
    lease_now = max(now, datetime.now(UTC))
    in_flight = _live_leases(store, layout, scan, lease_now)
    for orphan in scan.orphans:
        age = now - orphan.last_modified
        if age < min_age or (orphan.database, orphan.backup_id) in in_flight:
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

    base = layout.root
    try:
        uploads = store.list_multipart_uploads(base)
    except RestorableError as exc:
        report.errors.append(Outcome("", None, f"could not list multipart uploads: {exc}", base))
        return
    for upload in uploads:
        initiated = _parse_time(upload.initiated)
        if initiated is None or now - initiated < min_age:
            continue
        parsed = layout.parse(upload.key)
        if not (parsed.is_backup_object or parsed.kind in (KeyKind.WAL, KeyKind.BINLOG)):
            continue  # another tool's upload under our prefix: not ours to abort
        if (parsed.database, parsed.backup_id) in in_flight:
            continue  # a live backup's upload: its lease has not expired
        outcome = Outcome(
            parsed.database or "",
            parsed.backup_id,
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


def set_legal_hold(store: Store, prefix: str, db: str, backup_id: str, on: bool) -> list[str]:
    """Put (``on``) or lift a legal hold on every object of one backup; return the keys.

    The data is held first and the manifest last, so a hold that fails half-way has already
    protected the bytes. A held backup is never deleted by lifecycle enforcement, whatever its age.
    """
    key_prefix = Layout(prefix).backup_prefix(db, backup_id)
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
