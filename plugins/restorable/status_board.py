"""The status board: per database, where it stands against its objectives, red, amber or green.

The figures are the exporter's (``BucketCollector.measure``), read from the bucket, so the board
agrees with what the alert rules fire on; the ids of the newest and newest verified backup come
from the catalog. The verdict:

- **red** when an alert would fire for it: no backup, newest backup older than
  ``metrics.max_backup_age``, no verified backup within ``metrics.max_verified_age``, the last
  drill failed or its validation found mismatches, backups failing their check, RPO above
  ``physical.monitor.rpo_objective``, or the bucket could not be read;
- **amber** when one is near: never drilled or drill overdue (``metrics.max_drill_age``), an
  age past 80 % of its objective, or the WAL archiver not running;
- **green** otherwise.

Each reason is kept in words, for the row's tooltip and the JSON.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from restorable.services import Services

NEAR = 0.8  # an age past this share of its objective is amber


@dataclass
class DatabaseStatus:
    database_id: str
    engine: str
    state: str = "green"
    reasons: list[str] = field(default_factory=list)
    backups: int = 0
    newest_backup: str | None = None
    newest_age_seconds: float | None = None
    newest_verified: str | None = None
    verified_age_seconds: float | None = None
    drill_passed: bool | None = None
    drill_age_seconds: float | None = None
    drill_rto_seconds: float | None = None
    rpo_seconds: float | None = None
    #: Where the database archives WAL: whether the archiver runs (None: it does not archive).
    wal_archiver_running: bool | None = None
    stored_bytes: int = 0
    locked_backups: int = 0
    objectives: dict[str, float] = field(default_factory=dict)

    def flag(self, state: str, reason: str) -> None:
        order = ("green", "amber", "red")
        if order.index(state) > order.index(self.state):
            self.state = state
        self.reasons.append(reason)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def human_age(seconds: float) -> str:
    """``42 s``, ``12 min``, ``5 h 3 min``, ``2 d 4 h``: an age for people."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 2:
        return f"{minutes} min"
    if days < 2:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"


def board(services: Services, databases: Collection[str]) -> list[DatabaseStatus]:
    """The status of each configured database in ``databases``, in config order."""
    from restorable.exporter import BucketCollector

    figures = BucketCollector(services, cache_seconds=0).measure(databases)

    def one(name: str, *labels: str) -> float | None:
        return figures.get(name, {}).get(labels)

    catalog = services.catalog("restore")
    out = []
    for db in services.config.databases.values():
        if db.id not in databases:
            continue
        status = DatabaseStatus(db.id, db.engine)
        status.objectives = {
            name: value for (database, name), value in figures.get("objective_seconds", {}).items() if database == db.id
        }
        if one("exporter_database_up", db.id) == 0:
            status.flag("red", "the bucket could not be read for this database")
            out.append(status)
            continue
        ages = {kind: one("backup_age_seconds", db.id, kind) for kind in ("backup", "base_backup")}
        ages = {k: v for k, v in ages.items() if v is not None}
        status.backups = int(sum(one("backups", db.id, kind) or 0 for kind in ("backup", "base_backup")))
        status.newest_age_seconds = min(ages.values()) if ages else None
        verified = [one("verified_backup_age_seconds", db.id, kind) for kind in ("backup", "base_backup")]
        verified = [v for v in verified if v is not None]
        status.verified_age_seconds = min(verified) if verified else None
        drills = [k for k in ("drill", "pitr_drill") if one("drill_age_seconds", db.id, k) is not None]
        if drills:
            last = min(drills, key=lambda k: one("drill_age_seconds", db.id, k))
            status.drill_age_seconds = one("drill_age_seconds", db.id, last)
            status.drill_passed = one("drill_last_passed", db.id, last) == 1
            status.drill_rto_seconds = one("drill_last_rto_seconds", db.id, last)
            failed_checks = one("drill_last_failed_checks", db.id, last) or 0
        else:
            failed_checks = 0
        status.rpo_seconds = one("rpo_seconds", db.id)
        running = one("wal_archiver_running", db.id)
        status.wal_archiver_running = None if running is None else running == 1
        stored = figures.get("stored_bytes", {})
        status.stored_bytes = int(sum(v for (database, *_where), v in stored.items() if database == db.id))
        status.locked_backups = int(one("backups_locked", db.id) or 0)
        entries = catalog.entries(db.id)
        if entries:
            status.newest_backup = entries[-1].backup_id
            good = [e for e in entries if e.verified]
            status.newest_verified = good[-1].backup_id if good else None
        _judge(status, failed_checks, int(one("backups_failing_verification", db.id) or 0))
        out.append(status)
    return out


def _judge(status: DatabaseStatus, failed_checks: float, failing: int) -> None:
    objectives = status.objectives

    def against(value: float | None, objective: str, what: str) -> None:
        limit = objectives.get(objective)
        if value is None or limit is None:
            return
        if value > limit:
            status.flag("red", f"{what} is {human_age(value)}, above its objective of {human_age(limit)}")
        elif value > NEAR * limit:
            status.flag("amber", f"{what} is {human_age(value)}, near its objective of {human_age(limit)}")

    if status.backups == 0:
        status.flag("red", "no committed backup")
    against(status.newest_age_seconds, "backup_age", "the newest backup's age")
    if status.backups and status.verified_age_seconds is None:
        status.flag("red", "no backup passed its newest check")
    against(status.verified_age_seconds, "verified_age", "the newest verified backup's age")
    if failing:
        status.flag("red", f"{failing} backup(s) failed their newest check")
    if status.drill_passed is False:
        status.flag("red", "the last drill failed")
    if failed_checks:
        status.flag("red", f"{int(failed_checks)} validation check(s) failed in the last drill")
    if status.drill_age_seconds is None:
        status.flag("amber", "never drilled")
    else:
        limit = objectives.get("drill_age")
        if limit is not None and status.drill_age_seconds > limit:
            status.flag("amber", f"the last drill is {human_age(status.drill_age_seconds)} old, overdue")
    against(status.rpo_seconds, "rpo", "RPO now")
    if status.wal_archiver_running is False:
        status.flag("amber", "the WAL archiver is not running: RPO is not kept")


@dataclass
class History:
    """One database's backups and drills over time, for its DAG tab's charts."""

    backups: list[dict[str, Any]] = field(default_factory=list)
    drills: list[dict[str, Any]] = field(default_factory=list)


DRILL_KINDS = ("drill", "pitr_drill")


def history(services: Services, database_id: str) -> History:
    """Every committed backup (time, duration, sizes, throughput) and every drill (verdict, RTO, the
    drilled backup's size, the evidence's key), oldest first."""
    from restorable.repository.manifest import parse_iso

    out = History()
    for entry in services.catalog("restore").entries(database_id):
        s = entry.summary
        created = entry.created.timestamp()
        out.backups.append(
            {
                "backup_id": entry.backup_id,
                "kind": s.get("kind", "logical"),
                "created": created,
                "seconds": s.get("seconds"),
                "plain_bytes": s.get("plain_bytes"),
                "stored_bytes": s.get("stored_bytes"),
                "mb_per_s": s.get("mb_per_s"),
                "verified": entry.verified,
            }
        )
        for key, record in zip(entry.verification_keys, entry.verifications, strict=True):
            if record.get("kind") not in DRILL_KINDS or not record.get("checked_at"):
                continue
            out.drills.append(
                {
                    "backup_id": entry.backup_id,
                    "kind": record["kind"],
                    "checked_at": parse_iso(record["checked_at"]).timestamp(),
                    "ok": bool(record.get("ok")),
                    "rto_seconds": record.get("rto_seconds"),
                    "plain_bytes": s.get("plain_bytes"),
                    "failed_step": record.get("failed_step"),
                    "evidence_key": key,
                }
            )
    out.drills.sort(key=lambda d: d["checked_at"])
    return out
