"""MariaDB dumps and their binlogs under retention: what a kept dump or the window needs stays."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from restorable.lifecycle.apply import enforce, scan_bucket
from restorable.lifecycle.binlog_plan import binlog_not_needed, binlog_start_of
from restorable.lifecycle.plan import BackupSummary, plan
from restorable.lifecycle.policy import policy_from_config
from restorable.repository.layout import Layout
from restorable.storage.memory import MemoryStore
from tests.unit.lifecycle.test_plan import NOW

LAYOUT = Layout("restorable")


def test_files_before_the_oldest_kept_dumps_file_go_and_nothing_without_a_kept_dump():
    names = [f"mariadb-bin.{n:06d}" for n in range(1, 6)] + ["mariadb-bin.000002.partial", "other-bin.000001"]
    doomed, oldest = binlog_not_needed(names, ["mariadb-bin.000004", "mariadb-bin.000003"])
    assert oldest == "mariadb-bin.000003"
    assert doomed == ["mariadb-bin.000001", "mariadb-bin.000002", "mariadb-bin.000002.partial"]
    assert binlog_not_needed(names, []) == ([], None)


def test_the_start_is_read_only_from_mariadb_dumps_with_a_binlog_position():
    position = {"log_bin": True, "binlog_file": "mariadb-bin.000004", "binlog_position": 400}
    assert binlog_start_of({"engine": "mysql", "kind": "logical", "metadata": {"position": position}}) == (
        "mariadb-bin.000004"
    )
    assert binlog_start_of({"engine": "mysql", "metadata": {"position": {"log_bin": False}}}) is None
    assert binlog_start_of({"engine": "postgres", "metadata": {"position": position}}) is None


def test_the_window_keeps_the_dump_it_starts_from():
    dumps = [
        BackupSummary(f"d{i}", "shop", NOW - timedelta(days=age), verified=True, binlog_start=f"mariadb-bin.{i:06d}")
        for i, age in ((1, 10), (2, 6), (3, 2), (4, 1))
    ]
    policy = replace(policy_from_config({"keep_last": 1}, where="t"), pitr_window=timedelta(days=3))
    decisions = {d.backup_id: d.action for d in plan(dumps, policy, NOW)}
    # d2 (6 days old) is the newest before the 3-day window's start: replay from it reaches it.
    assert decisions == {"d1": "delete", "d2": "keep", "d3": "keep", "d4": "keep"}
    # Dumps without a binlog position are not held by the window.
    plain = [replace(d, binlog_start=None) for d in dumps]
    assert [d.action for d in plan(plain, policy, NOW)].count("keep") == 1


def _dump(store: MemoryStore, backup_id: str, age: timedelta, binlog_file: str) -> None:
    data = LAYOUT.data_key("shop", backup_id, "sql")
    store.put_bytes(data, b"sql")
    store.put_json(
        LAYOUT.manifest_key("shop", backup_id),
        {
            "backup_id": backup_id,
            "database_id": "shop",
            "engine": "mysql",
            "kind": "logical",
            "created_at": (NOW - age).isoformat(),
            "objects": [{"key": data, "stored_bytes": 3}],
            "metadata": {"position": {"log_bin": True, "binlog_file": binlog_file, "binlog_position": 400}},
        },
    )
    record = LAYOUT.verification_key("shop", backup_id, "20261125T000000000000Z", "checksum")
    store.put_json(record, {"kind": "checksum", "ok": True})


def test_enforce_deletes_the_old_dump_and_the_binlogs_only_it_needed():
    store = MemoryStore()
    _dump(store, "20261101T000000Z-00000001", timedelta(days=24), "mariadb-bin.000002")
    _dump(store, "20261124T000000Z-00000002", timedelta(days=1, hours=12), "mariadb-bin.000005")
    _dump(store, "20261125T000000Z-00000003", timedelta(hours=2), "mariadb-bin.000007")
    names = [f"mariadb-bin.{n:06d}" for n in range(1, 9)] + ["mariadb-bin.000009.partial"]
    for name in names:
        store.put_bytes(LAYOUT.binlog_key("shop", name), b"b" * 10)
    policy = replace(policy_from_config({"keep_last": 1}, where="t"), pitr_window=timedelta(days=1))
    report = enforce(
        store, scan_bucket(store, "restorable"), {"shop": policy}, NOW, dry_run=False, orphan_min_age=timedelta(days=1)
    )
    assert [o.backup_id for o in report.deleted] == ["20261101T000000Z-00000001"]
    assert len(report.binlog_deleted) == 1 and len(report.binlog_deleted[0].keys) == 4
    left = {LAYOUT.parse(o.key).name for o in store.list_objects(LAYOUT.binlog_prefix("shop"))}
    assert left == {f"{n}.zst.age" for n in names[4:]}
    assert report.to_dict()["counts"]["binlog_deleted"] == 1
