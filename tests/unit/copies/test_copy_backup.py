"""``copy_backup`` between in-memory buckets: what a copy holds, and that a bad one is never verified."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyrage
import pytest

from restorable.commands.copy import copy_backup, copy_status
from restorable.config import parse_config
from restorable.config_copies import parse_copies
from restorable.copies import copy_services
from restorable.exceptions import ConfigError, IntegrityError
from restorable.metadata import SnapshotMetadata
from restorable.repository.catalog import Catalog
from restorable.repository.manifest import BackupManifest, StoredObject, iso, new_backup_id, utcnow
from restorable.services import Services
from restorable.storage.memory import MemoryStore

RECIPIENT = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"
# Real age ciphertext: verify (run on each copy) checks every object's age header.
DATA = pyrage.encrypt(b"\x00the-dump" * 4000, [pyrage.x25519.Recipient.from_str(RECIPIENT)])
SEALED = pyrage.encrypt(b"sealed-settings", [pyrage.x25519.Recipient.from_str(RECIPIENT)])


@dataclass
class BucketsServices(Services):
    """Core services whose buckets are in-memory stores, one per bucket name."""

    buckets: dict[str, MemoryStore] = field(default_factory=dict)

    def store(self, duty="backup"):
        return self.buckets.setdefault(self.config.storage.bucket, MemoryStore(self.config.storage.bucket))

    def catalog(self, duty="backup"):
        return Catalog(self.store(duty), self.config.storage.prefix)


def services() -> BucketsServices:
    data = {
        "storage": {
            "conn_id": "s3",
            "bucket": "backups",
            "copies": [
                {
                    "name": "eu",
                    "conn_id": "s3_eu",
                    "bucket": "backups-eu",
                    "prefix": "copies",
                    "object_lock": {"mode": "GOVERNANCE", "days": 7},
                    "storage_class": "STANDARD_IA",
                },
                {"name": "us", "conn_id": "s3_us", "bucket": "backups-us"},
            ],
        },
        "encryption": {"recipients": [RECIPIENT]},
        "databases": [{"id": "shop", "engine": "postgres", "conn_id": "shop_db", "schedule": None}],
    }
    return BucketsServices(parse_config(data, Path("restorable.yaml"), {}))


def commit_verified(s: BucketsServices) -> BackupManifest:
    catalog = s.catalog()
    backup_id = new_backup_id(utcnow())
    prefix = catalog.layout.backup_prefix("shop", backup_id)
    data = catalog.store.put_bytes(prefix + "data.pgdump.zst.age", DATA)
    sealed = catalog.store.put_bytes(catalog.layout.sealed_key("shop", backup_id), SEALED)
    manifest = BackupManifest(
        backup_id=backup_id,
        database_id="shop",
        engine="postgres",
        dump_format="pg_dump-custom",
        created_at=iso(utcnow()),
        finished_at=iso(utcnow()),
        objects=[StoredObject(data.key, 1, len(DATA), "p", hashlib.sha256(DATA).hexdigest(), 1, 1, data.version_id)],
        metadata=SnapshotMetadata("15", {"public.t": 3}, {"tables": {}}),
        compression={},
        encryption={},
        sealed={
            "key": sealed.key,
            "sha256": hashlib.sha256(SEALED).hexdigest(),
            "bytes": len(SEALED),
            "version_id": sealed.version_id,
        },
    )
    catalog.write_manifest(manifest)
    catalog.record("shop", backup_id, "checksum", {"ok": True})
    return manifest


def test_each_destination_holds_a_rebased_verified_repository_of_its_own():
    s = services()
    manifest = commit_verified(s)
    results = copy_backup(s, "shop", "latest")
    assert [(r.destination, r.ok, r.already) for r in results] == [("eu", True, False), ("us", True, False)]

    eu = copy_services(s, "eu").catalog("restore")
    (entry,) = eu.entries("shop")
    assert entry.backup_id == manifest.backup_id and entry.verified
    copied = entry.manifest
    # Keys under the destination's prefix, version ids of the destination, bytes identical.
    assert copied.dump.key == f"copies/shop/{manifest.backup_id}/data.pgdump.zst.age"
    assert eu.store.get_bytes(copied.dump.key, version_id=copied.dump.version_id) == DATA
    assert copied.dump.stored_sha256 == manifest.dump.stored_sha256
    assert eu.store.get_bytes(copied.sealed["key"], version_id=copied.sealed["version_id"]) == SEALED
    # The destination's own Object Lock and storage class, on every object.
    head = eu.store.head(copied.dump.key)
    assert head["StorageClass"] == "STANDARD_IA" and head["ObjectLockMode"] == "GOVERNANCE"
    assert copied.object_lock["mode"] == "GOVERNANCE"
    record = eu.verifications("shop", manifest.backup_id)[-1]
    assert record["kind"] == "checksum" and record["ok"] and record["copy_of"]["bucket"] == "backups"
    # The us copy keeps the primary's prefix and no lock.
    us = copy_services(s, "us").catalog("restore")
    assert us.read_manifest("shop", manifest.backup_id).dump.key == manifest.dump.key
    # The primary says which copies exist; its own verdict is untouched by the copy records.
    (row,) = copy_status(s, "shop")
    assert {name: c["ok"] for name, c in row["copies"].items()} == {"eu": True, "us": True}
    assert s.catalog().entries("shop")[0].last_check["kind"] == "checksum"

    # A retry converges: the committed copies are re-read, nothing is written twice.
    again = copy_backup(s, "shop", manifest.backup_id, names=["eu"])
    assert again[0].already and again[0].ok
    assert len(eu.store.list_versions(copied.dump.key)) == 1


def test_a_copy_whose_bytes_differ_is_never_committed_nor_verified():
    s = services()
    manifest = commit_verified(s)
    # The primary's object is damaged after its verification passed: the copy carries the damage.
    s.catalog().store.put_bytes(manifest.dump.key, DATA[:-1] + b"!")
    damaged = s.catalog().store.head(manifest.dump.key)["VersionId"]
    manifest.objects[0].version_id = damaged
    data = s.catalog().store.get_json(s.catalog().layout.manifest_key("shop", manifest.backup_id))
    data["objects"][0]["version_id"] = damaged
    s.catalog().store.put_json(s.catalog().layout.manifest_key("shop", manifest.backup_id), data)
    with pytest.raises(IntegrityError) as raised:
        copy_backup(s, "shop", manifest.backup_id, names=["eu"])
    assert "was not copied to eu: copied object" in raised.value.message and "sha256" in raised.value.message
    eu = copy_services(s, "eu").catalog("restore")
    assert eu.entries("shop") == []  # no manifest: nothing that looks restorable, nothing verified
    (row,) = copy_status(s, "shop")
    assert row["copies"] == {"eu": {"ok": False, "checked_at": row["copies"]["eu"]["checked_at"]}}


def test_a_destination_that_is_the_primary_itself_is_refused_before_anything_is_written():
    s = services()
    commit_verified(s)
    # Another connection, the same bucket and prefix: only the endpoint tells, at copy time.
    copies = parse_copies(
        [{"name": "self", "conn_id": "s3_other", "bucket": "backups"}],
        "storage.copies",
        {},
        primary=("s3", "backups", "restorable"),
    )
    s = replace(s, config=replace(s.config, storage=replace(s.config.storage, copies=copies)))
    before = sorted(o.key for o in s.catalog().store.list_objects(""))
    with pytest.raises(ConfigError, match="copy self is the primary storage itself"):
        copy_backup(s, "shop")
    assert sorted(o.key for o in s.catalog().store.list_objects("")) == before


def test_only_a_verified_backup_is_copied():
    s = services()
    manifest = commit_verified(s)
    s.catalog().record("shop", manifest.backup_id, "checksum", {"ok": False})
    with pytest.raises(IntegrityError, match="is not verified: only a verified backup is copied"):
        copy_backup(s, "shop", manifest.backup_id)
