"""Drill evidence: what a restore drill proved, written beside the backup it drilled.

A drill record answers an auditor's questions without Airflow: which backup, were both
hashes re-computed and equal, how many rows were expected and found, what Great
Expectations checked and found, how long each phase took, how long the restore took (the
measured RTO) and how old the backup was when drilled (the RPO-ish figure), and which
Airflow run did it. It is appended with ``Catalog.record(db, backup_id, "drill", ...)``:
never overwritten, so a failed drill stays on record next to the later good ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from restorable.repository.catalog import Catalog
from restorable.repository.manifest import BackupManifest, iso, utcnow


def drill_record(
    manifest: BackupManifest,
    *,
    restore: dict[str, Any] | None,
    validation: dict[str, Any] | None,
    phases: dict[str, float],
    run: dict[str, Any],
    failed_step: str | None = None,
    error: str | None = None,
    drilled_at: datetime | None = None,
) -> dict[str, Any]:
    """The JSON record of one drill (``ok`` only when restore and validation both passed)."""
    drilled_at = drilled_at or utcnow()
    restore = restore or {}
    expected_counts = dict(manifest.metadata.row_counts)
    hashes = {
        "expected_stored_sha256": manifest.dump.stored_sha256,
        "found_stored_sha256": restore.get("stored_sha256"),
        "expected_plain_sha256": manifest.dump.plain_sha256,
        "found_plain_sha256": restore.get("plain_sha256"),
    }
    hashes["verified"] = (
        hashes["found_stored_sha256"] == hashes["expected_stored_sha256"]
        and hashes["found_plain_sha256"] == hashes["expected_plain_sha256"]
    )
    ok = bool(restore) and hashes["verified"] and bool(validation and validation.get("ok")) and not failed_step
    return {
        "ok": ok,
        "backup_id": manifest.backup_id,
        "database_id": manifest.database_id,
        "engine": manifest.engine,
        "backup_created_at": manifest.created_at,
        "drilled_at": iso(drilled_at),
        "hashes": hashes,
        "counts": {
            "expected_tables": len(expected_counts),
            "expected_rows": sum(expected_counts.values()),
            "found_rows": restore.get("found_rows"),
            "found_tables": restore.get("found_tables"),
        },
        "validation": validation,
        "phases_seconds": {k: round(float(v), 3) for k, v in phases.items() if v is not None},
        "rto_seconds": restore.get("restore_seconds"),
        "backup_age_seconds": round((drilled_at - manifest.created).total_seconds(), 1),
        "scratch": {"target": restore.get("target"), "database": restore.get("database")},
        "failed_step": failed_step,
        "error": error,
        "run": run,
    }


def record_drill(catalog: Catalog, manifest: BackupManifest, record: dict[str, Any]) -> str:
    """Append the record beside the backup; return its key."""
    return catalog.record(manifest.database_id, manifest.backup_id, "drill", record)


def summarize(record: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """The few figures worth an XCom (no schema, no per-table counts)."""
    validation = record.get("validation") or {}
    return {
        "ok": record["ok"],
        "backup_id": record["backup_id"],
        "database_id": record["database_id"],
        "hashes_verified": record["hashes"]["verified"],
        "expected_rows": record["counts"]["expected_rows"],
        "found_rows": record["counts"]["found_rows"],
        "failed_expectations": validation.get("failed_expectations"),
        "rto_seconds": record["rto_seconds"],
        "backup_age_seconds": record["backup_age_seconds"],
        "failed_step": record["failed_step"],
        "record_key": key,
    }
