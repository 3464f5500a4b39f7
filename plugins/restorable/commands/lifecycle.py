"""Retention and the bucket audit as commands: what ``enforce_lifecycle`` and ``restorable lifecycle`` run.

The policies come from each database's ``retention`` entry; the config's top-level ``lifecycle``
mapping may set ``orphan_min_age`` (default ``1d``) and ``purge_versions`` (default false).
Both run with the lifecycle manager's credentials, the only ones that may delete.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from restorable.exceptions import StorageError
from restorable.lifecycle.apply import LifecycleReport, enforce, scan_bucket
from restorable.lifecycle.audit import BucketExpectations, Drift, audit_bucket
from restorable.lifecycle.policy import parse_duration, policy_from_config
from restorable.services import Services

#: Where an operator reads what to do about a lifecycle failure or a drift.
RUNBOOK = "See docs/runbooks/lifecycle.md"


def run_lifecycle(services: Services, now: datetime, *, dry_run: bool) -> LifecycleReport:
    """Plan every database with its policy and apply it (``dry_run``: only report the plan)."""
    config = services.config
    settings = dict(config.lifecycle or {})
    policies = {
        db.id: replace(
            policy_from_config(db.retention, where=f"{config.path}: databases[{db.id}].retention"),
            pitr_window=db.physical.pitr_window
            if db.physical is not None
            else (db.binlog.pitr_window if db.binlog is not None else None),
        )
        for db in config.databases.values()
        if db.retention is not None
    }
    store = services.store("lifecycle")
    return enforce(
        store,
        scan_bucket(store, config.storage.prefix),
        policies,
        now,
        dry_run=dry_run,
        orphan_min_age=parse_duration(
            str(settings.get("orphan_min_age", "1d")), where=f"{config.path}: lifecycle.orphan_min_age"
        ),
        purge_versions=bool(settings.get("purge_versions", False)),
    )


def lifecycle_summary(report: LifecycleReport) -> dict[str, Any]:
    """The small figures for XCom and the CLI's one-line answer."""
    return {
        "dry_run": report.dry_run,
        "counts": report.counts(),
        "bytes_deleted": report.to_dict()["bytes_deleted"],
        "deleted": [f"{o.database}/{o.backup_id}" for o in report.deleted][:50],
    }


def lifecycle_failure(report: LifecycleReport) -> StorageError | None:
    """The error a run with failures ends in (None: every decision was carried out)."""
    if report.ok:
        return None
    errors = "; ".join(f"{o.database}/{o.backup_id}: {o.reason}" for o in report.errors[:10])
    return StorageError(f"lifecycle finished with {len(report.errors)} error(s): {errors}", hint=RUNBOOK)


def run_audit(services: Services, *, fix: bool) -> list[Drift]:
    """The bucket's drifts from what Restorable needs (``fix``: set what can be set, then report)."""
    storage = services.config.storage
    expected = BucketExpectations(prefix=storage.prefix + "/" if storage.prefix else "")
    return audit_bucket(services.store("lifecycle"), expected, fix=fix)


def audit_failure(bucket: str, drifts: list[Drift]) -> StorageError | None:
    """The error for drifts that remain (unsupported settings are reported, never a failure)."""
    real = [d for d in drifts if not d.unsupported and not d.fixed]
    if not real:
        return None
    return StorageError(
        f"bucket {bucket} drifted from its expected settings: "
        + "; ".join(f"{d.setting} expected {d.expected}, found {d.found}" for d in real),
        hint=f"{RUNBOOK}; `restorable lifecycle audit --fix` sets what can be set",
    )
