"""What the report counts, on an in-memory bucket: slots, verification, drills of both kinds, and fixes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from restorable.config import parse_config
from restorable.metadata import SnapshotMetadata
from restorable.report.collect import collect_report
from restorable.report.period import period_of
from restorable.repository.catalog import Catalog
from restorable.repository.layout import Layout
from restorable.repository.manifest import BackupManifest, StoredObject, iso
from restorable.services import Services
from restorable.storage.memory import MemoryStore

RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
T0 = datetime(2026, 11, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)


class MemoryServices(Services):
    """The core's services over one in-memory bucket, for every duty."""

    def store(self, duty="backup"):
        return self._memory

    def catalog(self, duty="backup"):
        return Catalog(self._memory, self.config.storage.prefix)


def services() -> MemoryServices:
    data = {
        "storage": {"conn_id": "s3", "bucket": "backups"},
        "encryption": {"recipients": [RECIPIENT]},
        "databases": [
            {
                "id": "shop",
                "engine": "postgres",
                "conn_id": "pg",
                "schedule": "0 * * * *",
                "drill_schedule": "30 * * * *",
                "physical": {"schedule": None, "drill_schedule": None, "wal": {"spool_dir": "/spool"}},
            }
        ],
    }
    built = MemoryServices(parse_config(data, Path("restorable.yaml"), {}))
    built._memory = MemoryStore()
    return built


ONE_TIME = "age1" + "q" * 58  # an envelope backup's own recipient (wrapped by the KMS)
ENVELOPE = {
    "format": "age",
    "recipients": [ONE_TIME, RECIPIENT],
    "envelope_recipient": ONE_TIME,
    "kms": "vault_transit",
    "key_name": "restorable",
    "key_version": 3,
}


def backup(
    catalog: Catalog,
    slot: datetime | None,
    created: datetime,
    suffix: str,
    kind: str = "logical",
    encryption: dict | None = None,
) -> str:
    backup_id = f"{created:%Y%m%dT%H%M%SZ}-{suffix * 8}"
    key = Layout("restorable").data_key("shop", backup_id, "dump")
    catalog.store.put_bytes(key, b"x")
    run = {"by": "airflow", "logical_date": iso(slot)} if slot else {"by": "cli"}
    catalog.write_manifest(
        BackupManifest(
            backup_id=backup_id,
            database_id="shop",
            engine="postgres",
            dump_format="pg_dump-custom",
            created_at=iso(created),
            finished_at=iso(created),
            objects=[StoredObject(key, 1, 1, "a", "b", 1, 1, role="base" if kind == "physical" else "dump")],
            metadata=SnapshotMetadata("15", {"public.t": 1}, {}),
            compression={},
            encryption=encryption or {"format": "age", "recipients": [RECIPIENT]},
            run=run,
            kind=kind,
        )
    )
    return backup_id


def test_slots_verification_missed_drills_and_a_point_in_time_drill():
    svc = services()
    catalog = svc.catalog()
    ok = backup(catalog, T0, T0 + timedelta(minutes=1), "a")
    catalog.record("shop", ok, "checksum", {"ok": True})
    bad = backup(catalog, T0 + HOUR, T0 + HOUR + timedelta(minutes=1), "b")
    catalog.record("shop", bad, "checksum", {"ok": False})  # committed, but its stored object does not match
    # By hand, within 02:00's slot, in envelope mode.
    manual = backup(catalog, None, T0 + 2 * HOUR + timedelta(minutes=5), "c", encryption=ENVELOPE)
    catalog.record("shop", manual, "checksum", {"ok": True})
    catalog.record("shop", ok, "drill", {"ok": True, "rto_seconds": 4.0, "run": {"logical_date": iso(T0 + HOUR / 2)}})
    base = backup(catalog, None, T0 + timedelta(minutes=10), "d", kind="physical")
    # A point-in-time drill's record carries no run: it is placed by when it was recorded (here 02:40).
    at = T0 + timedelta(hours=2, minutes=40)
    key = catalog.layout.verification_key("shop", base, at.strftime("%Y%m%dT%H%M%S%fZ"), "pitr_drill")
    record = {"ok": False, "problems": ["a gap"], "rpo_seconds_at_drill": 400.0}
    catalog.store.put_json(key, {"kind": "pitr_drill", "backup_id": base, "checked_at": iso(at), **record})

    report = collect_report(svc, period_of("2026-11-02T00:00Z", "2026-11-02T03:00Z"))
    (db,) = report["databases"]
    assert db["backups"]["scheduled"] == 3 and db["backups"]["taken"] == 3 and db["backups"]["verified"] == 2
    assert db["backups"]["succeeded"] == 2  # 00:00, and 02:00 by the backup taken by hand in its slot
    assert db["drills"]["scheduled"] == 3 and db["drills"]["run"] == 2 and db["drills"]["passed"] == 1
    kinds = [(f["kind"], f["at"]) for f in db["failures"]]
    assert ("verification", "2026-11-02T01:00:00Z") in kinds
    assert ("drill_missed", "2026-11-02T01:30:00Z") in kinds and ("drill_missed", "2026-11-02T02:30:00Z") in kinds
    verification = next(f for f in db["failures"] if f["kind"] == "verification")
    assert bad in verification["what"] and verification["fixed_by"]["backup_id"] == manual
    pitr = next(r for r in db["drill_runs"] if r["kind"] == "pitr_drill")
    # The point-in-time drill is judged against physical.monitor.rpo_objective (5 minutes).
    assert pitr["rpo_seconds"] == 400.0 and pitr["rpo_objective_seconds"] == 300 and pitr["rpo_met"] is False
    assert pitr["rto_met"] is None and any(f["kind"] == "pitr_drill" and f["fixed_by"] is None for f in db["failures"])
    # The one-time recipient of the envelope backup is not a key to report; its KMS key is.
    (recipient,) = db["encryption"]
    assert recipient["first_used"] == iso(T0 + timedelta(minutes=1)) and recipient["backups_in_period"] == 3
    assert db["kms_keys"] == [{"kms": "vault_transit", "key_name": "restorable", "versions": [3], "backups": 1}]
    assert report["totals"]["backup_success_rate"] == round(2 / 3, 6)
