"""The lease of a backup in flight, and the orphan cleaner that must spare it (in-memory store)."""

from __future__ import annotations

import time
from datetime import timedelta

from restorable.lifecycle.apply import enforce, scan_bucket
from restorable.repository import lease
from restorable.repository.catalog import Catalog
from restorable.repository.layout import KeyKind
from restorable.repository.manifest import utcnow
from restorable.storage.memory import MemoryStore

LIVE, DEAD = "20261125T020000Z-0000cafe", "20261125T010000Z-0000dead"


def in_flight(catalog: Catalog, backup_id: str, *, lease_seconds: float) -> str:
    """An uncommitted backup: part of its data stored, a multipart upload running, a lease."""
    key = catalog.layout.data_key("shop", backup_id, "dump")
    catalog.store.put_bytes(key, b"part of a dump")
    catalog.write_lease("shop", backup_id, seconds=lease_seconds)
    return key


def test_the_cleaner_spares_a_backup_with_an_unexpired_lease_and_removes_an_expired_one():
    store = MemoryStore()
    catalog = Catalog(store, "restorable")
    live = in_flight(catalog, LIVE, lease_seconds=900)
    dead = in_flight(catalog, DEAD, lease_seconds=0)
    assert catalog.layout.parse(catalog.layout.lease_key("shop", LIVE)).kind is KeyKind.LEASE
    with store.multipart_upload(catalog.layout.data_key("shop", LIVE, "dump") + ".next"):
        (upload,) = store.list_multipart_uploads()
        report = enforce(
            store, scan_bucket(store, "restorable"), {}, utcnow(), dry_run=False, orphan_min_age=timedelta(0)
        )
        assert store.exists(live) and store.list_multipart_uploads() == [upload]
    assert not store.exists(dead)
    assert [o.backup_id for o in report.orphans_removed] == [DEAD]


def test_hold_lease_writes_renews_and_releases(monkeypatch):
    store = MemoryStore()
    key = "restorable/shop/20261125T020000Z-0000cafe/lease.json"
    monkeypatch.setattr(lease, "RENEW_SECONDS", 0.01)
    with lease.hold_lease(store, key, "shop", LIVE):
        first = lease.lease_expiry(store, key)
        assert first is not None and first > utcnow()
        for _ in range(200):
            if len(store._versions[key]) > 2:
                break
            time.sleep(0.01)
        assert len(store._versions[key]) > 2, "renewed in the background"
    assert not store.exists(key)


def test_a_writer_that_may_not_delete_releases_by_letting_the_lease_expire():
    store = MemoryStore()
    store.denied.add("DeleteObject")
    key = "restorable/shop/20261125T020000Z-0000cafe/lease.json"
    with lease.hold_lease(store, key, "shop", LIVE):
        pass
    expires = lease.lease_expiry(store, key)
    assert expires is not None and expires <= utcnow()
