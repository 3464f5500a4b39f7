"""Collect the audit evidence of a period from the bucket: backups against the schedule, and drills.

Definitions the report states and keeps:

- a *scheduled backup* is an occurrence of the database's cron schedule in the period;
- it *succeeded* when a backup committed for it (its manifest records that run's logical date, or it
  was taken between that run and the next) was verified: a checksum, deep or drill record says so,
  and the last one does not say otherwise. A failed backup leaves no manifest (the upload is
  aborted), so a scheduled run without a committed backup is a failure at its scheduled time;
- a *drill* is a ``drill`` or ``pitr_drill`` record in the period (by its run's logical date, else
  when it was recorded). A drill run scheduled but never recorded is a failure too;
- what *fixed* a failure is the next success of the same kind after it (None: not fixed yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from restorable.config import DatabaseConfig
from restorable.report.period import Period, run_slot, scheduled_runs
from restorable.report.settings import bucket_settings, database_settings
from restorable.repository.catalog import CatalogEntry, is_verified
from restorable.repository.manifest import iso, parse_iso, utcnow
from restorable.services import Services

FORMAT = "restorable.audit-report/1"
DRILL_KINDS = ("drill", "pitr_drill")

#: What alerts on a failure of each kind, and the runbook that answers it (docs/runbooks/).
ALERTS = {
    "backup": ("the backup task's failure alert (webhook); RestorableBackupTooOld", "backup-failed.md"),
    "verification": (
        "the verify task's failure alert (webhook); RestorableVerificationFailing",
        "checksum-mismatch.md",
    ),
    "drill": ("the drill task's failure alert (webhook); RestorableDrillFailed", "drill-failed.md"),
    "validation": ("the drill task's failure alert (webhook); RestorableValidationMismatch", "validation-mismatch.md"),
    "pitr_drill": ("the point-in-time drill's failure alert (webhook)", "pitr-drill-failed.md"),
    "drill_missed": ("RestorableDrillOverdue", "drill-overdue.md"),
}


@dataclass
class _Backup:
    entry: CatalogEntry
    #: The scheduled run it was taken for (its logical date), else None (taken by hand).
    scheduled_for: datetime | None
    verified: bool

    @property
    def at(self) -> datetime:
        return self.scheduled_for or self.entry.created


@dataclass
class _Drill:
    kind: str
    key: str
    record: dict[str, Any]
    scheduled_for: datetime | None

    @property
    def at(self) -> datetime:
        return self.scheduled_for or parse_iso(self.record["checked_at"])

    @property
    def ok(self) -> bool:
        return bool(self.record.get("ok"))


def _logical_date(run: Any) -> datetime | None:
    value = run.get("logical_date") if isinstance(run, dict) else None
    try:
        return parse_iso(value) if value else None
    except ValueError:
        return None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _verification_kind(key: str) -> tuple[str, str]:
    """``.../verifications/<stamp>-<kind>.json`` -> (stamp, kind)."""
    stamp, _, kind = key.rsplit("/", 1)[-1].removesuffix(".json").partition("-")
    return stamp, kind


def collect_report(
    services: Services, period: Period, *, database: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The report of ``period`` for one database (``database``) or every configured one."""
    config = services.config
    ids = [database] if database else sorted(config.databases)
    catalog = services.catalog("restore")
    databases = [_database_report(services, catalog, config.database(db_id), period) for db_id in ids]
    scheduled = sum(d["backups"]["scheduled"] for d in databases)
    succeeded = sum(d["backups"]["succeeded"] for d in databases)
    drills_run = sum(d["drills"]["run"] for d in databases)
    drills_passed = sum(d["drills"]["passed"] for d in databases)
    objectives = _objectives(services)
    return {
        "format": FORMAT,
        "generated_at": iso(now or utcnow()),
        "period": {"start": iso(period.start), "end": iso(period.end), "label": period.label},
        "bucket": config.storage.bucket,
        "prefix": config.storage.prefix,
        "objectives": objectives,
        "totals": {
            "backups_scheduled": scheduled,
            "backups_succeeded": succeeded,
            "backup_success_rate": _ratio(succeeded, scheduled),
            "drills_run": drills_run,
            "drills_passed": drills_passed,
            "drill_pass_rate": _ratio(drills_passed, drills_run),
            "failures": sum(len(d["failures"]) for d in databases),
        },
        "bucket_settings": bucket_settings(services),
        "databases": databases,
    }


def _objectives(services: Services) -> dict[str, Any]:
    from restorable.config_report import ReportConfig

    report = services.config.report or ReportConfig()
    return {
        "backup_success": report.backup_success_objective,
        "drill_pass": report.drill_pass_objective,
        "rto_seconds": report.rto_objective.total_seconds(),
        "rpo_seconds": services.config.metrics.max_backup_age.total_seconds(),
    }


def _database_report(services: Services, catalog: Any, db: DatabaseConfig, period: Period) -> dict[str, Any]:
    scan = catalog.scan(db.id)
    objectives = _objectives(services)
    backups = _backups(scan.entries, db, period)
    drills = _drills(catalog, scan.entries, period)
    in_period = [b for b in backups if b.at in period]
    runs = scheduled_runs(db.schedule, period)
    slots = {run: [b for b in in_period if _slot_of(b, runs) == run] for run in runs}
    succeeded = sum(1 for taken in slots.values() if any(b.verified for b in taken))
    rate = _ratio(succeeded, len(runs))
    failures = _backup_failures(slots, backups, db, services.config.alerts.runbook_url)
    drill_rows, drill_failures, drill_counts = _drill_rows(services, db, scan.entries, drills, period)
    failures += drill_failures
    failures.sort(key=lambda f: f["at"])
    evidence = [b.entry.catalog.layout.manifest_key(db.id, b.entry.backup_id) for b in in_period]
    evidence += [k for b in in_period for k in b.entry.verification_keys]
    evidence += [d["key"] for d in drill_rows if d["key"] not in evidence]
    return {
        "database_id": db.id,
        "engine": db.engine,
        "schedule": db.schedule,
        "backups": {
            "scheduled": len(runs),
            "taken": len(in_period),
            "verified": sum(1 for b in in_period if b.verified),
            "succeeded": succeeded,
            "success_rate": rate,
            "objective": objectives["backup_success"],
            "met": rate is not None and rate >= objectives["backup_success"],
            "damaged": [d.backup_id for d in scan.damaged],
        },
        "backup_runs": [
            {
                "backup_id": b.entry.backup_id,
                "kind": b.entry.summary.get("kind", "logical"),
                "scheduled_for": iso(b.scheduled_for) if b.scheduled_for else None,
                "created_at": b.entry.summary["created_at"],
                "verified": b.verified,
                "stored_bytes": b.entry.summary.get("stored_bytes"),
            }
            for b in in_period
        ],
        "drills": drill_counts,
        "drill_runs": drill_rows,
        **database_settings(services, db, [b.entry for b in in_period], scan.entries),
        "failures": failures,
        "evidence_keys": evidence,
    }


def _backups(entries: list[CatalogEntry], db: DatabaseConfig, period: Period) -> list[_Backup]:
    """Every logical backup that could be in the period or fix a failure in it (those after it too)."""
    found = []
    for entry in entries:
        if entry.summary.get("kind", "logical") != "logical":
            continue
        if entry.created < period.start - timedelta(days=1):
            continue  # taken before the period (a logical date is never after the backup started)
        scheduled_for = _logical_date(entry.manifest.run)
        found.append(_Backup(entry, scheduled_for, is_verified(entry.verifications)))
    return found


def _slot_of(backup: _Backup, runs: list[datetime]) -> datetime | None:
    if backup.scheduled_for is not None:
        return backup.scheduled_for if backup.scheduled_for in runs else None
    return run_slot(runs, backup.entry.created)


def _next_success(items: list[Any], after: datetime, ok: Any) -> Any | None:
    later = sorted((i for i in items if i.at > after and ok(i)), key=lambda i: i.at)
    return later[0] if later else None


def _alert(kind: str, runbook_url: str) -> dict[str, str]:
    alert, runbook = ALERTS[kind]
    return {"alert": alert, "runbook": f"{runbook_url.rstrip('/')}/{runbook}"}


def _backup_failures(
    slots: dict[datetime, list[_Backup]], backups: list[_Backup], db: DatabaseConfig, runbook_url: str
) -> list[dict[str, Any]]:
    failures = []
    for run, taken in slots.items():
        if any(b.verified for b in taken):
            continue
        if taken:
            kind = "verification"
            what = "backup " + ", ".join(b.entry.backup_id for b in taken) + " committed but not verified"
        else:
            kind = "backup"
            what = (
                f"no backup of {db.id} was committed for the run scheduled at {iso(run)} (a failed backup leaves none)"
            )
        fix = _next_success(backups, run, lambda b: b.verified)
        failures.append(
            {
                "kind": kind,
                "at": iso(run),
                "what": what,
                **_alert(kind, runbook_url),
                "fixed_by": {"at": iso(fix.at), "backup_id": fix.entry.backup_id, "what": "next verified backup"}
                if fix
                else None,
            }
        )
    return failures


def _drills(catalog: Any, entries: list[CatalogEntry], period: Period) -> list[_Drill]:
    """Every drill record recorded since the period began (a backfill may record one later)."""
    start = period.start.strftime("%Y%m%dT%H%M%S")
    found = []
    for entry in entries:
        for key in entry.verification_keys:
            stamp, kind = _verification_kind(key)
            if kind in DRILL_KINDS and stamp >= start:
                record = catalog.store.get_json(key)
                found.append(_Drill(kind, key, record, _logical_date(record.get("run"))))
    return sorted(found, key=lambda d: d.at)


def _drill_schedules(db: DatabaseConfig) -> dict[str, str | None]:
    physical = db.physical if db.physical and db.physical.enabled else None
    return {"drill": db.drill_schedule, "pitr_drill": physical.drill_schedule if physical else None}


def _drill_rows(
    services: Services, db: DatabaseConfig, entries: list[CatalogEntry], drills: list[_Drill], period: Period
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    objectives = _objectives(services)
    runbook_url = services.config.alerts.runbook_url
    pitr_rpo = db.physical.monitor.rpo_objective.total_seconds() if db.physical else None
    created = {e.backup_id: e.created for e in entries}
    logical = [e for e in entries if e.summary.get("kind", "logical") == "logical"]
    rows, failures = [], []
    in_period = [d for d in drills if d.at in period]
    for drill in in_period:
        r = drill.record
        if drill.kind == "pitr_drill":
            rpo, rpo_objective = r.get("rpo_seconds_at_drill"), pitr_rpo
        else:
            # The data a loss just before this backup would have cost: the time since the one before it.
            drilled = created.get(r.get("backup_id"))
            before = [e.created for e in logical if drilled and e.created < drilled]
            rpo = round((drilled - max(before)).total_seconds(), 1) if before else None
            rpo_objective = objectives["rpo_seconds"]
        rto = r.get("rto_seconds")
        problems = r.get("problems") or ([f"{r.get('failed_step')}: {r.get('error')}"] if r.get("failed_step") else [])
        rows.append(
            {
                "kind": drill.kind,
                "at": r.get("checked_at"),
                "scheduled_for": iso(drill.scheduled_for) if drill.scheduled_for else None,
                "backup_id": r.get("backup_id"),
                "ok": drill.ok,
                "rto_seconds": rto,
                "rto_objective_seconds": objectives["rto_seconds"],
                # None: nothing measured (a drill that failed before its restore; no backup before this one).
                "rto_met": None if rto is None else rto <= objectives["rto_seconds"],
                "rpo_seconds": rpo,
                "rpo_objective_seconds": rpo_objective,
                "rpo_met": None if rpo is None or rpo_objective is None else rpo <= rpo_objective,
                "problems": problems,
                "key": drill.key,
            }
        )
        if not drill.ok:
            kind = "validation" if r.get("failed_step") == "validate" else drill.kind
            fix = _next_success([d for d in drills if d.kind == drill.kind], drill.at, lambda d: d.ok)
            failures.append(
                {
                    "kind": kind,
                    "at": iso(drill.at),
                    "what": f"{drill.kind} of backup {r.get('backup_id')} failed: " + ("; ".join(problems) or "?"),
                    **_alert(kind, runbook_url),
                    "evidence": drill.key,
                    "fixed_by": {"at": iso(fix.at), "key": fix.key, "what": f"next passing {drill.kind}"}
                    if fix
                    else None,
                }
            )
    scheduled = 0
    for kind, schedule in _drill_schedules(db).items():
        runs = scheduled_runs(schedule, period)
        scheduled += len(runs)
        recorded = {run_slot(runs, d.at) for d in in_period if d.kind == kind}
        for run in runs:
            if run not in recorded:
                fix = _next_success([d for d in drills if d.kind == kind], run, lambda d: d.ok)
                failures.append(
                    {
                        "kind": "drill_missed",
                        "at": iso(run),
                        "what": f"no {kind} of {db.id} was recorded for the run scheduled at {iso(run)}",
                        **_alert("drill_missed", runbook_url),
                        "fixed_by": {"at": iso(fix.at), "key": fix.key, "what": f"next passing {kind}"}
                        if fix
                        else None,
                    }
                )
    passed = sum(1 for d in in_period if d.ok)
    rate = _ratio(passed, len(in_period))
    counts = {
        "scheduled": scheduled,
        "run": len(in_period),
        "passed": passed,
        "pass_rate": rate,
        "objective": objectives["drill_pass"],
        "met": rate is not None and rate >= objectives["drill_pass"],
    }
    return rows, failures, counts
