"""The bucket is the catalog: manifests and verification records, found by listing.

Keys come from ``restorable.repository.layout`` (the bucket layout is described there). Nothing
else is needed to find and restore a backup: no Airflow metadata, no local state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from restorable.exceptions import NotFound, StorageError
from restorable.repository.layout import KeyKind, Layout, ParsedKey
from restorable.repository.manifest import BackupManifest, iso, utcnow

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


@dataclass
class CatalogEntry:
    manifest: BackupManifest
    verifications: list[dict[str, Any]]

    @property
    def backup_id(self) -> str:
        return self.manifest.backup_id

    @property
    def verified(self) -> bool:
        return is_verified(self.verifications)


class Catalog:
    def __init__(self, store: Store, prefix: str) -> None:
        self.store = store
        self.layout = Layout(prefix)
        self.prefix = self.layout.prefix

    # --- manifests ------------------------------------------------------------------------
    def write_manifest(
        self, manifest: BackupManifest, *, lock_mode: str | None = None, retain_until: datetime | None = None
    ) -> str:
        key = self.layout.manifest_key(manifest.database_id, manifest.backup_id)
        self.store.put_json(key, manifest.to_dict(), if_none_match=True, lock_mode=lock_mode, retain_until=retain_until)
        return key

    def has_manifest(self, database_id: str, backup_id: str) -> bool:
        return self.store.exists(self.layout.manifest_key(database_id, backup_id))

    def read_manifest(self, database_id: str, backup_id: str) -> BackupManifest:
        if backup_id == "latest":
            return self.pick(database_id).manifest
        key = self.layout.manifest_key(database_id, backup_id)
        try:
            data = self.store.get_json(key)
        except NotFound:
            raise NotFound(
                f"no backup {backup_id} of {database_id} in the bucket (no {key})",
                database=database_id,
                backup_id=backup_id,
                hint=f"List the backups with: restorable list {database_id}",
            ) from None
        return BackupManifest.from_dict(data)

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

    def entries(self, database_id: str) -> list[CatalogEntry]:
        """Every committed backup with its verification records, oldest first."""
        manifests: dict[str, str] = {}
        records: dict[str, list[str]] = {}
        for obj in self.store.list_objects(self.layout.database_prefix(database_id)):
            parsed = self.layout.parse(obj.key)
            if parsed.kind is KeyKind.MANIFEST:
                manifests[parsed.backup_id] = obj.key
            elif parsed.kind is KeyKind.VERIFICATION:
                records.setdefault(parsed.backup_id, []).append(obj.key)
        out = []
        for backup_id in sorted(manifests):
            manifest = BackupManifest.from_dict(self.store.get_json(manifests[backup_id]))
            checks = [self.store.get_json(k) for k in sorted(records.get(backup_id, []))]
            out.append(CatalogEntry(manifest, checks))
        return out

    def pick(
        self,
        database_id: str,
        *,
        at_or_before: datetime | None = None,
        verified_only: bool = False,
    ) -> CatalogEntry:
        """The newest backup at or before ``at_or_before`` (all time when None)."""
        # Newest by when the backup was taken, not by id: ids of runs of different DAG runs
        # share a timestamp prefix but end in a hash, which says nothing about order.
        candidates = sorted(self.entries(database_id), key=lambda e: (e.manifest.created, e.backup_id))
        if at_or_before is not None:
            candidates = [e for e in candidates if e.manifest.created <= at_or_before]
        if verified_only:
            candidates = [e for e in candidates if e.verified]
        if not candidates:
            when = f" at or before {iso(at_or_before)}" if at_or_before else ""
            kind = "verified backup" if verified_only else "backup"
            raise NotFound(
                f"no {kind} of {database_id}{when} in the bucket",
                database=database_id,
                hint="Run the backup first (restorable backup DB, or the backup DAG)",
            )
        return candidates[-1]

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
