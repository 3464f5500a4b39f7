"""The lifecycle deletes base backups its policy lets go, then the WAL no kept base backup needs."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from restorable.lifecycle.apply import enforce, scan_bucket
from restorable.lifecycle.policy import policy_from_config
from restorable.repository.layout import Layout
from restorable.storage.memory import MemoryStore
from tests.unit.lifecycle.test_plan import NOW

LAYOUT = Layout("restorable")


def _base(store: MemoryStore, backup_id: str, age: timedelta, start: str) -> None:
    data = LAYOUT.data_key("shop", backup_id, "base.tar")
    store.put_bytes(data, b"tar")
    store.put_json(
        LAYOUT.manifest_key("shop", backup_id),
        {
            "backup_id": backup_id,
            "database_id": "shop",
            "kind": "physical",
            "created_at": (NOW - age).isoformat(),
            "objects": [{"key": data, "stored_bytes": 3}],
            "wal": {"start_segment": start},
        },
    )
    record = LAYOUT.verification_key("shop", backup_id, "20261125T000000000000Z", "checksum")
    store.put_json(record, {"kind": "checksum", "ok": True})


def test_old_base_backups_go_and_the_wal_before_the_oldest_kept_one_with_them():
    store = MemoryStore()
    _base(store, "20261101T000000Z-00000001", timedelta(days=24), "000000010000000000000002")
    _base(store, "20261124T000000Z-00000002", timedelta(days=1, hours=12), "000000010000000000000006")
    _base(store, "20261125T000000Z-00000003", timedelta(hours=2), "000000010000000000000009")
    names = [f"0000000100000000000000{n:02X}" for n in range(1, 11)] + ["00000002.history"]
    for name in names:
        store.put_bytes(LAYOUT.wal_key("shop", name), b"w" * 10)
    policy = policy_from_config({"keep_last": 1}, where="t")
    report = enforce(
        store,
        scan_bucket(store, "restorable"),
        {"shop": replace(policy, pitr_window=timedelta(days=1))},
        NOW,
        dry_run=False,
        orphan_min_age=timedelta(days=1),
    )
    assert [o.backup_id for o in report.deleted] == ["20261101T000000Z-00000001"]
    # The base from 1.5 days ago is where the 1-day window starts: it and its WAL stay.
    assert len(report.wal_deleted) == 1 and len(report.wal_deleted[0].keys) == 5
    left = {LAYOUT.parse(o.key).name for o in store.list_objects(LAYOUT.wal_prefix("shop"))}
    assert left == {f"00000001/{n}.zst.age" for n in names[5:10]} | {"00000002/00000002.history.zst.age"}
