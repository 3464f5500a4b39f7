"""The exporter's collector on an in-memory bucket: ages, verdicts, bytes and locks as gauges,
one bad database does not blank the others, and a scrape storm is served from the cache."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from restorable.config import parse_config
from restorable.exporter import BucketCollector
from restorable.metadata import SnapshotMetadata
from restorable.repository.catalog import Catalog
from restorable.repository.layout import Layout
from restorable.repository.manifest import BackupManifest, StoredObject, iso, new_backup_id, utcnow
from restorable.services import Services
from restorable.storage.memory import MemoryStore

RECIPIENT = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"


class MemoryServices(Services):
    def store(self, duty="backup"):
        return self.memory

    def catalog(self, duty="backup"):
        return Catalog(self.memory, self.config.storage.prefix)


class CountingStore(MemoryStore):
    listings = 0

    def list_objects(self, prefix):
        CountingStore.listings += 1
        return super().list_objects(prefix)


def services(store) -> MemoryServices:
    data = {
        "storage": {"conn_id": "s3", "bucket": "backups"},
        "encryption": {"recipients": [RECIPIENT]},
        "databases": [
            {"id": "shop", "engine": "postgres", "conn_id": "shop_db", "schedule": None},
            {"id": "crm", "engine": "mysql", "conn_id": "crm_db", "schedule": None},
        ],
        "metrics": {"max_backup_age": "2h"},
    }
    s = MemoryServices(parse_config(data, Path("restorable.yaml"), {}))
    s.memory = store
    return s


def commit(catalog: Catalog, age: timedelta, *, locked_for: timedelta | None = None) -> BackupManifest:
    created = utcnow() - age
    backup_id = new_backup_id(created, str(age))
    key = Layout("restorable").data_key("shop", backup_id, "dump")
    until = utcnow() + locked_for if locked_for else None
    manifest = BackupManifest(
        backup_id=backup_id,
        database_id="shop",
        engine="postgres",
        dump_format="pg_dump-custom",
        created_at=iso(created),
        finished_at=iso(created),
        objects=[StoredObject(key, 100, 40, "a", "b", 1, 1)],
        metadata=SnapshotMetadata("15", {"public.t": 3}, {"tables": {}}),
        compression={},
        encryption={},
        object_lock={"mode": "GOVERNANCE", "retain_until": iso(until)} if until else None,
    )
    catalog.store.put_bytes(key, b"x" * 40)
    catalog.write_manifest(manifest)
    return manifest


def samples(collector: BucketCollector) -> dict[tuple, float]:
    found = {}
    for family in collector.collect():
        for s in family.samples:
            found[(s.name, *sorted(s.labels.items()))] = s.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found[(f"restorable_{name}", *sorted(labels.items()))]


def test_freshness_verdicts_bytes_and_locks_from_the_bucket():
    store = MemoryStore()
    catalog = Catalog(store, "restorable")
    old = commit(catalog, timedelta(hours=5), locked_for=timedelta(days=1))
    new = commit(catalog, timedelta(hours=1))
    catalog.record("shop", old.backup_id, "checksum", {"ok": True})
    catalog.record("shop", old.backup_id, "drill", {"ok": True, "rto_seconds": 4.5, "validation": {}})
    catalog.record("shop", new.backup_id, "checksum", {"ok": False, "problems": ["sha256 differs"]})
    found = samples(BucketCollector(services(store), cache_seconds=0))
    shop = {"database": "shop", "engine": "postgres"}
    assert value(found, "backups", **shop, kind="backup") == 2
    assert 3590 < value(found, "backup_age_seconds", **shop, kind="backup") < 3700
    # The newer backup failed its check: the newest verified one is the older.
    assert 17990 < value(found, "verified_backup_age_seconds", **shop, kind="backup") < 18100
    assert value(found, "backups_failing_verification", **shop) == 1
    assert value(found, "verification_failures", **shop, check="checksum") == 1
    assert value(found, "verification_failures", **shop, check="drill") == 0
    assert value(found, "drill_last_passed", **shop, kind="drill") == 1
    assert value(found, "drill_last_rto_seconds", **shop, kind="drill") == 4.5
    assert value(found, "drill_age_seconds", **shop, kind="drill") < 60
    assert value(found, "backups_locked", **shop) == 1
    assert value(found, "stored_bytes", **shop, area="backups", storage_class="STANDARD") == 80
    assert value(found, "objective_seconds", **shop, objective="backup_age") == 7200
    assert value(found, "exporter_database_up", **shop) == 1
    # crm has no backup: up, and no age at all (an alert rule treats "absent" as too old).
    crm = {"database": "crm", "engine": "mysql"}
    assert value(found, "exporter_database_up", **crm) == 1
    assert not [k for k in found if k[0] == "restorable_backup_age_seconds" and ("database", "crm") in k]


def test_one_unreadable_database_is_down_and_the_others_still_report(monkeypatch):
    store = MemoryStore()
    commit(Catalog(store, "restorable"), timedelta(hours=1))
    s = services(store)
    real_scan = Catalog.scan

    def scan(self, database_id):
        if database_id == "crm":
            raise RuntimeError("access denied")
        return real_scan(self, database_id)

    monkeypatch.setattr(Catalog, "scan", scan)
    found = samples(BucketCollector(s, cache_seconds=0))
    assert value(found, "exporter_database_up", database="crm", engine="mysql") == 0
    assert value(found, "exporter_database_up", database="shop", engine="postgres") == 1
    assert value(found, "backups", database="shop", engine="postgres", kind="backup") == 1


def test_a_scrape_storm_reads_the_bucket_once_per_cache_period():
    store = CountingStore()
    commit(Catalog(store, "restorable"), timedelta(hours=1))
    collector = BucketCollector(services(store), cache_seconds=60)
    CountingStore.listings = 0
    for _ in range(20):
        samples(collector)
    assert CountingStore.listings == 4  # two databases, each: one scan and one size listing
    collector.cache_seconds = 0
    samples(collector)
    assert CountingStore.listings == 8
