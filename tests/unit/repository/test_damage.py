"""The catalog under damage, without a bucket: the in-memory store stands in for S3.

One damaged manifest is reported as damaged and never blocks the others; ``latest`` is the newest
committed, intact backup not recorded as failed; picking reads summaries, not every manifest.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from restorable.exceptions import IntegrityError, NotFound
from restorable.metadata import SnapshotMetadata
from restorable.repository.catalog import Catalog
from restorable.repository.layout import KeyKind, Layout
from restorable.repository.manifest import BackupManifest, StoredObject, iso
from restorable.storage.memory import MemoryStore

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
OLD, NEW = "20261125T020000Z-aaaaaaaa", "20261126T020000Z-bbbbbbbb"


def manifest(backup_id: str, created: datetime, *, tables: int = 1, database_id: str = "shop") -> BackupManifest:
    layout = Layout("restorable")
    counts = {f"public.t{i}": i for i in range(tables)}
    schema = {
        "tables": {
            name: {"columns": [{"name": f"c{c}", "type": "bigint", "nullable": False} for c in range(8)]}
            for name in counts
        }
    }
    return BackupManifest(
        backup_id=backup_id,
        database_id=database_id,
        engine="postgres",
        dump_format="pg_dump-custom",
        created_at=iso(created),
        finished_at=iso(created),
        objects=[StoredObject(layout.data_key(database_id, backup_id, "dump"), 1, 1, "a", "b", 1, 1)],
        metadata=SnapshotMetadata("15", counts, schema),
        compression={},
        encryption={},
    )


def committed(catalog: Catalog, backup_id: str, created: datetime, **kw) -> BackupManifest:
    """A backup as run_backup leaves it: its data object, then summary and manifest."""
    m = manifest(backup_id, created, **kw)
    catalog.store.put_bytes(m.dump.key, b"x")
    catalog.write_manifest(m)
    return m


def two_backups() -> Catalog:
    catalog = Catalog(MemoryStore(), "restorable")
    committed(catalog, OLD, T0)
    committed(catalog, NEW, T0 + timedelta(days=1))
    return catalog


def manifest_key(catalog: Catalog, backup_id: str = NEW) -> str:
    return catalog.layout.manifest_key("shop", backup_id)


def put_raw(catalog: Catalog, key: str, data: bytes) -> None:
    catalog.store.put_bytes(key, data)


def damage(kind: str, catalog: Catalog) -> str:
    """Damage the newest manifest in one way; return a word the reason must contain."""
    key = manifest_key(catalog)
    good = catalog.store.get_bytes(key)
    if kind == "truncated":
        put_raw(catalog, key, good[: len(good) // 2])
        return "not valid JSON"
    if kind == "invalid_json":
        put_raw(catalog, key, b"{not json" + b" " * len(good))
        return "not valid JSON"
    if kind == "missing_field":
        data = json.loads(good)
        del data["objects"]
        put_raw(catalog, key, json.dumps(data).encode())
        return "objects"
    if kind == "future_format":
        data = json.loads(good)
        data["format"] = "restorable.manifest/9"
        put_raw(catalog, key, json.dumps(data).encode())
        return "restorable.manifest/9"
    raise AssertionError(kind)


DAMAGES = ("truncated", "invalid_json", "missing_field", "future_format")


def test_from_dict_names_a_missing_field_instead_of_a_traceback():
    data = manifest(OLD, T0).to_dict()
    del data["created_at"]
    with pytest.raises(IntegrityError) as info:
        BackupManifest.from_dict(data)
    assert "created_at" in info.value.message and info.value.backup_id == OLD
    data = manifest(OLD, T0).to_dict()
    data["objects"][0].pop("stored_sha256")
    with pytest.raises(IntegrityError, match="stored_sha256"):
        BackupManifest.from_dict(data)
    with pytest.raises(IntegrityError, match="not a JSON object"):
        BackupManifest.from_dict([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", DAMAGES)
def test_one_damaged_manifest_is_reported_and_never_blocks_the_others(kind):
    catalog = two_backups()
    word = damage(kind, catalog)
    key = manifest_key(catalog)

    with pytest.raises(IntegrityError) as info:
        catalog.read_manifest("shop", NEW)
    assert key in info.value.message and word in info.value.message

    scan = catalog.scan("shop")
    assert [e.backup_id for e in scan.entries] == [OLD]
    (broken,) = scan.damaged
    assert broken.backup_id == NEW and broken.key == key and word in broken.reason

    assert catalog.pick("shop").backup_id == OLD
    assert catalog.read_manifest("shop", "latest").backup_id == OLD
    assert [e.backup_id for e in catalog.entries("shop")] == [OLD]


def test_a_manifest_whose_ids_do_not_match_its_path_is_damaged():
    catalog = two_backups()
    data = manifest(NEW, T0 + timedelta(days=1), database_id="crm").to_dict()
    put_raw(catalog, manifest_key(catalog), json.dumps(data).encode())
    with pytest.raises(IntegrityError, match="database_id 'crm'"):
        catalog.read_manifest("shop", NEW)
    assert catalog.pick("shop").backup_id == OLD


def test_a_manifest_listing_another_backups_object_is_damaged():
    catalog = two_backups()
    data = json.loads(catalog.store.get_bytes(manifest_key(catalog)))
    data["objects"][0]["key"] = catalog.layout.data_key("crm", NEW, "dump")
    put_raw(catalog, manifest_key(catalog), json.dumps(data).encode())
    assert catalog.foreign_objects(BackupManifest.from_dict(data)) == [data["objects"][0]["key"]]
    with pytest.raises(IntegrityError, match="not under"):
        catalog.read_manifest("shop", NEW)


def test_latest_skips_a_backup_whose_data_object_is_gone_and_logs_the_skip(caplog):
    catalog = two_backups()
    catalog.store.delete_object(catalog.read_manifest("shop", NEW).dump.key)
    with caplog.at_level(logging.WARNING):
        assert catalog.pick("shop").backup_id == OLD
    assert any("skipped" in r.getMessage() and NEW in r.getMessage() for r in caplog.records)


def test_latest_skips_a_backup_whose_last_verification_failed(caplog):
    catalog = two_backups()
    catalog.record("shop", NEW, "checksum", {"ok": True})
    catalog.record("shop", NEW, "deep", {"ok": False})
    with caplog.at_level(logging.WARNING):
        assert catalog.pick("shop").backup_id == OLD
    assert any("skipped" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)
    (entry,) = [e for e in catalog.scan("shop").entries if e.backup_id == NEW]
    assert not entry.verified and entry.last_check == {"kind": "deep", "ok": False}


def test_nothing_intact_is_not_found():
    catalog = two_backups()
    damage("truncated", catalog)
    catalog.store.delete_object(catalog.read_manifest("shop", OLD).dump.key)
    with pytest.raises(NotFound):
        catalog.pick("shop")


def test_the_summary_is_a_backup_object_written_before_the_manifest():
    store = MemoryStore()
    catalog = Catalog(store, "restorable")
    committed(catalog, OLD, T0)
    summary_key = catalog.layout.summary_key("shop", OLD)
    assert catalog.layout.parse(summary_key).kind is KeyKind.SUMMARY
    assert catalog.layout.parse(summary_key).is_backup_object
    written = [v.version_id for k in (summary_key, manifest_key(catalog, OLD)) for v in store._versions[k]]
    assert written == sorted(written)
    summary = store.get_json(summary_key)
    assert summary["backup_id"] == OLD and summary["tables"] == 1 and summary["key"].endswith("data.dump.zst.age")


def test_backups_without_a_summary_list_and_pick_from_their_manifest():
    catalog = two_backups()
    catalog.store.delete_object(catalog.layout.summary_key("shop", NEW))  # format 1 / older releases
    assert [e.backup_id for e in catalog.scan("shop").entries] == [OLD, NEW]
    assert catalog.pick("shop").backup_id == NEW


class CountingStore(MemoryStore):
    """Counts the bytes every get returns (open_read and get_json go through get_bytes)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.bytes_read = 0

    def get_bytes(self, key: str, *, version_id: str | None = None) -> bytes:
        data = super().get_bytes(key, version_id=version_id)
        self.bytes_read += len(data)
        return data


def test_picking_latest_of_ten_big_backups_reads_summaries_not_every_manifest(capsys):
    store = CountingStore()
    catalog = Catalog(store, "restorable")
    ids = [f"202611{d:02d}T020000Z-{d:08x}" for d in range(1, 11)]
    for day, backup_id in enumerate(ids):
        committed(catalog, backup_id, T0 + timedelta(days=day), tables=2000)
        catalog.record("shop", backup_id, "checksum", {"ok": True})
    one_manifest = len(store.get_bytes(manifest_key(catalog, ids[-1])))

    # Before: every manifest in full (what the catalog did without summaries).
    for backup_id in ids:
        store.delete_object(catalog.layout.summary_key("shop", backup_id))
    store.bytes_read = 0
    assert catalog.pick("shop", verified_only=True).backup_id == ids[-1]
    before = store.bytes_read

    for backup_id in ids:
        catalog.write_summary(catalog.read_manifest("shop", backup_id))
    store.bytes_read = 0
    assert catalog.pick("shop", verified_only=True).backup_id == ids[-1]
    after = store.bytes_read
    store.bytes_read = 0
    catalog.scan("shop")
    listing = store.bytes_read
    with capsys.disabled():
        print(f"\npick latest of 10 backups x 2,000 tables: before {before} B, after {after} B; list {listing} B")
    assert before >= 10 * one_manifest
    # The chosen manifest once (the restore needs it anyway) plus small reads, whatever the retention.
    assert after <= one_manifest + 10 * 4096
    assert listing <= 10 * 4096
