"""The bucket is the catalog: manifests and verification records, found by listing.

Keys come from ``restorable.repository.layout`` (the bucket layout is described there). Nothing
else is needed to find and restore a backup: no Airflow metadata, no local state.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from restorable.exceptions import IntegrityError, NotFound, StorageError
from restorable.logs import backup_log
from restorable.repository.layout import KeyKind, Layout, ParsedKey
from restorable.repository.lease import LEASE_SECONDS, write_lease
from restorable.repository.manifest import BackupManifest, iso, parse_iso, utcnow
from restorable.storage.types import ObjectInfo

if TYPE_CHECKING:
    from restorable.storage.protocol import Store

#: Verification kinds that count toward "verified".
VERIFICATION_KINDS = ("checksum", "deep", "drill")


def is_verified(records: Iterable[Mapping[str, Any]]) -> bool:
    """Read back (or restored) successfully at least once, and the latest check did not fail.

    ``records`` in time order. The one rule for the catalog, the UI and the lifecycle.
    """
    checks = [r for r in records if r.get("kind") in VERIFICATION_KINDS]
    return bool(checks) and bool(checks[-1].get("ok")) and any(r.get("ok") for r in checks)


#: What a summary must hold, beyond what ``BackupManifest.summary`` gives, to stand in for its manifest.
SUMMARY_FORMAT = "restorable.summary/1"


def manifest_document(manifest: BackupManifest) -> bytes:
    """The manifest as stored: indented, key-sorted UTF-8 JSON (its size is recorded in the summary)."""
    return json.dumps(manifest.to_dict(), indent=2, sort_keys=True, default=str).encode() + b"\n"


def summary_document(manifest: BackupManifest, document: bytes) -> dict[str, Any]:
    """What listing and picking need of a backup, so they never download its manifest in full."""
    return {
        **manifest.summary(),
        "summary_format": SUMMARY_FORMAT,
        "manifest_format": manifest.format,
        "dump_format": manifest.dump_format,
        "finished_at": manifest.finished_at,
        "object_keys": stored_keys(manifest),
        "manifest_bytes": len(document),
        "manifest_sha256": hashlib.sha256(document).hexdigest(),
    }


def stored_keys(manifest: BackupManifest) -> list[str]:
    """Every object a restore of ``manifest`` reads: its stored objects, its sealed settings and (envelope
    mode) its wrapped key as the backup wrote it."""
    keys = [o.key for o in manifest.objects]
    if manifest.sealed and manifest.sealed.get("key"):
        keys.append(manifest.sealed["key"])
    wrapped = (manifest.encryption or {}).get("key_object") or {}
    return [*keys, wrapped["key"]] if wrapped.get("key") else keys


def _verification_kind(key: str) -> str:
    """``.../verifications/<stamp>-<kind>.json`` -> ``<kind>``."""
    return key.rsplit("/", 1)[-1].removesuffix(".json").partition("-")[2]


@dataclass
class DamagedBackup:
    """A committed backup whose manifest cannot be used: listed as DAMAGED, never picked."""

    database_id: str
    backup_id: str
    key: str
    reason: str

    @property
    def created_at(self) -> str:
        """When the backup started, as its id says (the manifest that records it is unreadable)."""
        return iso(datetime.strptime(self.backup_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))


@dataclass
class CatalogEntry:
    """A committed backup as listing sees it: its summary, and its manifest read only when asked for."""

    catalog: Catalog = field(repr=False)
    database_id: str
    backup_id: str
    summary: dict[str, Any]
    #: Verification record keys, oldest first (the records are read only when asked for).
    verification_keys: list[str] = field(default_factory=list)
    #: Current keys under the backup's prefix, from the listing.
    present: frozenset[str] = frozenset()
    _manifest: BackupManifest | None = field(default=None, repr=False)
    _verifications: list[dict[str, Any]] | None = field(default=None, repr=False)
    _last_check: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def manifest(self) -> BackupManifest:
        if self._manifest is None:
            self._manifest = self.catalog.read_manifest(self.database_id, self.backup_id)
        return self._manifest

    @property
    def created(self) -> datetime:
        return parse_iso(self.summary["created_at"])

    @property
    def verifications(self) -> list[dict[str, Any]]:
        if self._verifications is None:
            self._verifications = [self.catalog.store.get_json(k) for k in self.verification_keys]
        return self._verifications

    @property
    def last_check(self) -> dict[str, Any] | None:
        """Kind and verdict of the newest verification record (one small read), or None."""
        checks = [k for k in self.verification_keys if _verification_kind(k) in VERIFICATION_KINDS]
        if not checks:
            return None
        if self._last_check is None:
            record = self.catalog.store.get_json(checks[-1])
            self._last_check = {"kind": record.get("kind"), "ok": bool(record.get("ok"))}
        return self._last_check

    @property
    def verified(self) -> bool:
        # is_verified on the newest check alone: "latest ok" implies "one ok".
        last = self.last_check
        return last is not None and is_verified([last])

    @property
    def missing_objects(self) -> list[str]:
        return [k for k in self.summary.get("object_keys", []) if k not in self.present]


@dataclass
class CatalogScan:
    """One database's committed backups: the intact ones (oldest first) and the damaged ones."""

    entries: list[CatalogEntry]
    damaged: list[DamagedBackup]


class Catalog:
    def __init__(self, store: Store, prefix: str) -> None:
        self.store = store
        self.layout = Layout(prefix)
        self.prefix = self.layout.prefix

    # --- manifests ------------------------------------------------------------------------
    def write_manifest(
        self, manifest: BackupManifest, *, lock_mode: str | None = None, retain_until: datetime | None = None
    ) -> str:
        """Write the summary, then the manifest (the commit); return the manifest's key."""
        key = self.layout.manifest_key(manifest.database_id, manifest.backup_id)
        document = manifest_document(manifest)
        self.write_summary(manifest, document, lock_mode=lock_mode, retain_until=retain_until)
        self.store.put_bytes(
            key,
            document,
            if_none_match=True,
            lock_mode=lock_mode,
            retain_until=retain_until,
            content_type="application/json",
        )
        return key

    def write_summary(
        self,
        manifest: BackupManifest,
        document: bytes | None = None,
        *,
        lock_mode: str | None = None,
        retain_until: datetime | None = None,
    ) -> str:
        """The backup's summary (a retried run overwrites a stale one: it is checked against the manifest)."""
        key = self.layout.summary_key(manifest.database_id, manifest.backup_id)
        body = summary_document(manifest, document or manifest_document(manifest))
        self.store.put_json(key, body, lock_mode=lock_mode, retain_until=retain_until)
        return key

    def write_lease(self, database_id: str, backup_id: str, *, seconds: float = LEASE_SECONDS) -> str:
        """Mark a backup as in flight (``hold_lease`` does this for a running backup)."""
        key = self.layout.lease_key(database_id, backup_id)
        write_lease(self.store, key, database_id, backup_id, seconds=seconds)
        return key

    def has_manifest(self, database_id: str, backup_id: str) -> bool:
        return self.store.exists(self.layout.manifest_key(database_id, backup_id))

    def read_manifest(self, database_id: str, backup_id: str) -> BackupManifest:
        """The manifest of one backup (``latest``: see ``pick``); IntegrityError naming its key when damaged."""
        if backup_id == "latest":
            return self.pick(database_id).manifest
        key = self.layout.manifest_key(database_id, backup_id)
        try:
            data = self.store.get_json(key)
            manifest = BackupManifest.from_dict(data)
        except NotFound:
            raise NotFound(
                f"no backup {backup_id} of {database_id} in the bucket (no {key})",
                database=database_id,
                backup_id=backup_id,
                hint=f"List the backups with: restorable list {database_id}",
            ) from None
        except IntegrityError as exc:
            raise self._damaged(key, database_id, backup_id, exc.message) from None
        if (manifest.database_id, manifest.backup_id) != (database_id, backup_id):
            raise self._damaged(
                key,
                database_id,
                backup_id,
                f"it names database_id {manifest.database_id!r} and backup_id {manifest.backup_id!r}",
            )
        foreign = self.foreign_objects(manifest)
        if foreign:
            raise self._damaged(
                key,
                database_id,
                backup_id,
                f"it lists objects not under its own backup {self.layout.backup_prefix(database_id, backup_id)}: "
                + ", ".join(foreign),
            )
        return manifest

    @staticmethod
    def _damaged(key: str, database_id: str, backup_id: str, reason: str) -> IntegrityError:
        return IntegrityError(
            f"manifest {key} is damaged: {reason}",
            database=database_id,
            backup_id=backup_id,
            hint="Do not rely on this backup; restore another one (restorable list shows which are intact)",
        )

    def foreign_objects(self, manifest: BackupManifest) -> list[str]:
        """Keys ``manifest`` lists that are not objects of its own backup (copied from another one)."""
        foreign = []
        for key in stored_keys(manifest):
            parsed = self.layout.parse(key)
            own = (parsed.database, parsed.backup_id) == (manifest.database_id, manifest.backup_id)
            if not (own and parsed.kind in (KeyKind.DATA, KeyKind.SEALED, KeyKind.WRAPPED_KEY, KeyKind.BACKUP_OTHER)):
                foreign.append(key)
        return foreign

    def backup_ids(self, database_id: str) -> list[str]:
        """Ids of committed backups (those with a manifest), oldest first."""
        return sorted(p.backup_id for p in self._parsed(self.layout.database_prefix(database_id), KeyKind.MANIFEST))

    def database_ids(self) -> list[str]:
        return sorted({p.database for p in self._parsed(self.layout.root, KeyKind.MANIFEST)})

    def _parsed(self, prefix: str, kind: KeyKind) -> Iterator[ParsedKey]:
        for obj in self.store.list_objects(prefix):
            parsed = self.layout.parse(obj.key)
            if parsed.kind is kind:
                yield parsed

    def scan(self, database_id: str) -> CatalogScan:
        """Every committed backup of ``database_id``, from one listing and each backup's summary.

        A backup without a usable summary (older releases, or one that disagrees with its manifest's
        size) is judged from its manifest; a manifest that cannot be used makes a ``DamagedBackup``.
        """
        groups: dict[str, dict[str, ObjectInfo]] = {}
        for obj in self.store.list_objects(self.layout.database_prefix(database_id)):
            parsed = self.layout.parse(obj.key)
            if parsed.is_backup_object and parsed.database == database_id:
                groups.setdefault(parsed.backup_id, {})[obj.key] = obj
        entries: list[CatalogEntry] = []
        damaged: list[DamagedBackup] = []
        for backup_id, objects in sorted(groups.items()):
            manifest_key = self.layout.manifest_key(database_id, backup_id)
            if manifest_key not in objects:
                continue  # not committed
            records = sorted(k for k in objects if self.layout.parse(k).kind is KeyKind.VERIFICATION)
            entry = CatalogEntry(self, database_id, backup_id, {}, records, frozenset(objects))
            summary = self._summary(database_id, backup_id, objects, objects[manifest_key].size)
            if summary is None:
                try:
                    entry._manifest = self.read_manifest(database_id, backup_id)
                except IntegrityError as exc:
                    damaged.append(DamagedBackup(database_id, backup_id, manifest_key, exc.message))
                    continue
                summary = summary_document(entry._manifest, manifest_document(entry._manifest))
            entry.summary = summary
            entries.append(entry)
        entries.sort(key=lambda e: (e.created, e.backup_id))
        return CatalogScan(entries, damaged)

    def _summary(
        self, database_id: str, backup_id: str, objects: Mapping[str, ObjectInfo], manifest_bytes: int
    ) -> dict[str, Any] | None:
        """The backup's summary when it can stand in for the manifest, else None (read the manifest)."""
        key = self.layout.summary_key(database_id, backup_id)
        if key not in objects:
            return None
        try:
            summary = self.store.get_json(key)
            usable = (
                isinstance(summary, dict)
                and summary.get("summary_format") == SUMMARY_FORMAT
                and (summary.get("database_id"), summary.get("backup_id")) == (database_id, backup_id)
                and summary.get("manifest_bytes") == manifest_bytes
                and isinstance(summary.get("object_keys"), list)
            )
            if usable:
                parse_iso(summary["created_at"])
        except (IntegrityError, NotFound, KeyError, TypeError, ValueError):
            usable = False
        if not usable:
            backup_log(__name__, database_id, backup_id).warning("summary unusable; reading the manifest", key=key)
            return None
        return summary

    def entries(self, database_id: str) -> list[CatalogEntry]:
        """Every committed, readable backup, oldest first (``scan`` also gives the damaged ones)."""
        return self.scan(database_id).entries

    def pick(
        self,
        database_id: str,
        *,
        at_or_before: datetime | None = None,
        verified_only: bool = False,
        kind: str = "logical",
    ) -> CatalogEntry:
        """The newest intact backup of ``kind`` at or before ``at_or_before`` (all time when None).

        ``kind``: a logical restore or drill never picks a physical base backup, nor the reverse.

        Intact: its manifest reads and belongs to it, its stored objects are there, and its last
        verification did not fail. Each newer backup passed over is logged with the reason.
        """
        scan = self.scan(database_id)
        for broken in scan.damaged:
            backup_log(__name__, database_id, broken.backup_id).warning("backup skipped", reason=broken.reason)
        # Newest by when the backup was taken, not by id: ids of runs of different DAG runs
        # share a timestamp prefix but end in a hash, which says nothing about order.
        candidates = [
            e
            for e in scan.entries
            if (at_or_before is None or e.created <= at_or_before) and e.summary.get("kind", "logical") == kind
        ]
        for entry in reversed(candidates):
            reason = self.unusable_reason(entry)
            if reason is None and verified_only and not entry.verified:
                continue  # not a fault: not verified yet
            if reason is None:
                return entry
            backup_log(__name__, database_id, entry.backup_id).warning("backup skipped", reason=reason)
        when = f" at or before {iso(at_or_before)}" if at_or_before else ""
        what = ("verified " if verified_only else "intact ") + ("base backup" if kind == "physical" else "backup")
        raise NotFound(
            f"no {what} of {database_id}{when} in the bucket",
            database=database_id,
            hint="Run the backup first (restorable backup DB, or the backup DAG); restorable list shows the others",
        )

    @staticmethod
    def unusable_reason(entry: CatalogEntry) -> str | None:
        """Why ``entry`` cannot be restored, or None."""
        if entry.missing_objects:
            return "stored object(s) missing: " + ", ".join(entry.missing_objects)
        last = entry.last_check
        if last is not None and not last["ok"]:
            return f"its last verification ({last['kind']}) failed"
        try:
            entry.manifest  # noqa: B018 (read and checked once: the restore needs it next)
        except IntegrityError as exc:
            return exc.message
        return None

    # --- verification records -------------------------------------------------------------
    def record(self, database_id: str, backup_id: str, kind: str, record: dict[str, Any]) -> str:
        """Append a verification record (checksum, deep, drill); never overwrites one."""
        now = utcnow()
        body = {"kind": kind, "backup_id": backup_id, "database_id": database_id, "checked_at": iso(now), **record}
        stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
        key = self.layout.verification_key(database_id, backup_id, stamp, kind)
        try:
            self.store.put_json(key, body, if_none_match=True)
        except StorageError as exc:
            raise StorageError(
                f"could not record the {kind} result: {exc.message}",
                database=database_id,
                backup_id=backup_id,
            ) from exc
        return key

    def verifications(self, database_id: str, backup_id: str) -> list[dict[str, Any]]:
        base = self.layout.verifications_prefix(database_id, backup_id)
        return [self.store.get_json(o.key) for o in sorted(self.store.list_objects(base), key=lambda o: o.key)]
