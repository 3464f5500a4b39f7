"""Catalog choices that need no bucket: the in-memory store stands in for S3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from restorable.exceptions import NotFound
from restorable.metadata import SnapshotMetadata
from restorable.repository.catalog import Catalog
from restorable.repository.layout import Layout
from restorable.repository.manifest import BackupManifest, StoredObject, iso
from restorable.storage.memory import MemoryStore


class CommittingCatalog(Catalog):
    """Writes each manifest's data object first, as a backup does (picking skips a backup without it)."""

    def write_manifest(self, manifest: BackupManifest, **kw) -> str:
        self.store.put_bytes(manifest.dump.key, b"x")
        return super().write_manifest(manifest, **kw)


def manifest(backup_id: str, created: datetime) -> BackupManifest:
    return BackupManifest(
        backup_id=backup_id,
        database_id="shop",
        engine="postgres",
        dump_format="pg_dump-custom",
        created_at=iso(created),
        finished_at=iso(created),
        objects=[StoredObject(Layout("restorable").data_key("shop", backup_id, "dump"), 1, 1, "a", "b", 1, 1)],
        metadata=SnapshotMetadata("15", {"public.t": 1}, {}),
        compression={},
        encryption={},
    )


def test_pick_orders_by_creation_time_not_by_id():
    catalog = CommittingCatalog(MemoryStore(), "restorable")
    t0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    # Same timestamp prefix, hash suffixes in the "wrong" order: the later backup has the smaller id.
    catalog.write_manifest(manifest("20261125T020000Z-ffffffff", t0))
    catalog.write_manifest(manifest("20261125T020000Z-00000000", t0 + timedelta(seconds=5)))
    assert catalog.pick("shop").backup_id == "20261125T020000Z-00000000"
    assert catalog.pick("shop", at_or_before=t0 + timedelta(seconds=1)).backup_id == "20261125T020000Z-ffffffff"


def test_pick_verified_only_and_nothing_found():
    catalog = CommittingCatalog(MemoryStore(), "restorable")
    t0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    catalog.write_manifest(manifest("20261125T020000Z-aaaaaaaa", t0))
    catalog.write_manifest(manifest("20261126T020000Z-bbbbbbbb", t0 + timedelta(days=1)))
    catalog.record("shop", "20261125T020000Z-aaaaaaaa", "checksum", {"ok": True})
    assert catalog.pick("shop", verified_only=True).backup_id == "20261125T020000Z-aaaaaaaa"
    with pytest.raises(NotFound) as info:
        catalog.pick("shop", at_or_before=t0 - timedelta(days=1))
    assert "at or before" in str(info.value)


def test_only_keys_the_layout_calls_manifests_are_backups():
    store = MemoryStore()
    catalog = Catalog(store, "restorable")
    t0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    catalog.write_manifest(manifest("20261125T020000Z-aaaaaaaa", t0))
    # A manifest.json under an archive prefix or a directory that is no backup id is not a backup.
    store.put_json("restorable/shop/wal/manifest.json", {})
    store.put_json("restorable/shop/not-a-backup/manifest.json", {})
    store.put_json("restorable/_keys/x/manifest.json", {})
    assert catalog.backup_ids("shop") == ["20261125T020000Z-aaaaaaaa"]
    assert catalog.database_ids() == ["shop"]
    assert [e.backup_id for e in catalog.entries("shop")] == ["20261125T020000Z-aaaaaaaa"]
