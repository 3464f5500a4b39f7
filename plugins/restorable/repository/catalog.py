"""The bucket is the catalog: keys, manifests and verification records.

::

    <prefix>/<db>/<backup_id>/data.<suffix>.zst.age   the stored stream
    <prefix>/<db>/<backup_id>/manifest.json           written last: its presence is the commit
    <prefix>/<db>/<backup_id>/verifications/<ts>-<kind>.json   append-only records

Nothing else is needed to find and restore a backup: no Airflow metadata, no local state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from restorable.exceptions import NotFound, StorageError
from restorable.repository.manifest import BackupManifest, iso, utcnow

MANIFEST = "manifest.json"
#: The age-encrypted values kept out of the manifest (see SnapshotMetadata.sealed).
SEALED = "sealed.json.age"
VERIFICATIONS = "verifications"


@dataclass
class CatalogEntry:
    manifest: BackupManifest
    verifications: list[dict[str, Any]]

    @property
    def backup_id(self) -> str:
        return self.manifest.backup_id

    @property
    def verified(self) -> bool:
        """Read back and matched its checksum at least once, and never failed since."""
        checks = [v for v in self.verifications if v.get("kind") in ("checksum", "deep", "drill")]
        return bool(checks) and checks[-1].get("ok", False) and any(v.get("ok") for v in checks)


class Catalog:
    def __init__(self, store: Any, prefix: str) -> None:
        self.store = store
        self.prefix = prefix.strip("/")

    # --- keys -----------------------------------------------------------------------------
    def database_prefix(self, database_id: str) -> str:
        return f"{self.prefix}/{database_id}/" if self.prefix else f"{database_id}/"

    def backup_prefix(self, database_id: str, backup_id: str) -> str:
        return f"{self.database_prefix(database_id)}{backup_id}/"

    def data_key(self, database_id: str, backup_id: str, suffix: str) -> str:
        return f"{self.backup_prefix(database_id, backup_id)}data.{suffix}.zst.age"

    def manifest_key(self, database_id: str, backup_id: str) -> str:
        return self.backup_prefix(database_id, backup_id) + MANIFEST

    def sealed_key(self, database_id: str, backup_id: str) -> str:
        return self.backup_prefix(database_id, backup_id) + SEALED

    # --- manifests ------------------------------------------------------------------------
    def write_manifest(
        self, manifest: BackupManifest, *, lock_mode: str | None = None, retain_until: datetime | None = None
    ) -> str:
        key = self.manifest_key(manifest.database_id, manifest.backup_id)
        self.store.put_json(key, manifest.to_dict(), if_none_match=True, lock_mode=lock_mode, retain_until=retain_until)
        return key

    def has_manifest(self, database_id: str, backup_id: str) -> bool:
        return self.store.exists(self.manifest_key(database_id, backup_id))

    def read_manifest(self, database_id: str, backup_id: str) -> BackupManifest:
        if backup_id == "latest":
            return self.pick(database_id).manifest
        key = self.manifest_key(database_id, backup_id)
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
        ids = []
        base = self.database_prefix(database_id)
        for obj in self.store.list_objects(base):
            rest = obj.key[len(base) :]
            parts = rest.split("/")
            if len(parts) == 2 and parts[1] == MANIFEST:
                ids.append(parts[0])
        return sorted(ids)

    def database_ids(self) -> list[str]:
        seen = set()
        base = f"{self.prefix}/" if self.prefix else ""
        for obj in self.store.list_objects(base):
            rest = obj.key[len(base) :].split("/")
            if len(rest) == 3 and rest[2] == MANIFEST:
                seen.add(rest[0])
        return sorted(seen)

    def entries(self, database_id: str) -> list[CatalogEntry]:
        """Every committed backup with its verification records, oldest first."""
        base = self.database_prefix(database_id)
        manifests: dict[str, str] = {}
        records: dict[str, list[str]] = {}
        for obj in self.store.list_objects(base):
            parts = obj.key[len(base) :].split("/")
            if len(parts) == 2 and parts[1] == MANIFEST:
                manifests[parts[0]] = obj.key
            elif len(parts) == 3 and parts[1] == VERIFICATIONS:
                records.setdefault(parts[0], []).append(obj.key)
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
        key = f"{self.backup_prefix(database_id, backup_id)}{VERIFICATIONS}/{stamp}-{kind}.json"
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
        base = f"{self.backup_prefix(database_id, backup_id)}{VERIFICATIONS}/"
        return [self.store.get_json(o.key) for o in sorted(self.store.list_objects(base), key=lambda o: o.key)]
