"""``restorable exporter``: freshness from the bucket as Prometheus metrics, on ``/metrics``.

Run metrics (``restorable.metrics``) say how the last run went; they stop when Airflow stops. These
are read from the bucket itself on each scrape, so "the newest backup is 30 hours old" still fires
when the scheduler is down, which is exactly when it matters:

- newest committed backup, newest verified backup, last drill (age, verdict, RTO, failed checks), per
  database and kind (``backup`` logical, ``base_backup`` physical; ``drill``, ``pitr_drill``);
- RPO now and the archiver's queue, where the database archives WAL (``physical``);
- bytes stored per area (backups, wal) and storage class; backups under Object Lock; backups whose
  newest check failed, and failed check records;
- the objectives from the config, as gauges, so the alert rules compare with them instead of
  repeating them.

A scrape reads the bucket at most once per ``metrics.cache_seconds`` (a scrape storm hits the cache).
Verification records and manifests never change once written, so each is read once per process.
Trouble reading one database is ``restorable_exporter_database_up 0`` for it, never a failed scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from restorable.repository.catalog import VERIFICATION_KINDS, CatalogEntry
from restorable.repository.layout import KeyKind
from restorable.repository.manifest import parse_iso, utcnow

if TYPE_CHECKING:
    from prometheus_client.core import GaugeMetricFamily

    from restorable.config import DatabaseConfig
    from restorable.services import Services

log = logging.getLogger(__name__)

DRILL_KINDS = ("drill", "pitr_drill")
#: The manifest's kind -> the command that makes it (the ``kind`` label, as on run metrics).
BACKUP_KINDS = {"logical": "backup", "physical": "base_backup"}

#: name (without ``restorable_``) -> (help, labels beyond database and engine).
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "backups": ("Committed backups in the bucket", ("kind",)),
    "backup_age_seconds": ("Age of the newest committed backup", ("kind",)),
    "verified_backup_age_seconds": ("Age of the newest backup whose newest check passed", ("kind",)),
    "drill_age_seconds": ("Time since the last drill of any backup", ("kind",)),
    "drill_last_passed": ("1 when the last drill passed, 0 when it failed", ("kind",)),
    "drill_last_rto_seconds": ("Restore time measured by the last drill", ("kind",)),
    "drill_last_failed_checks": ("Validation checks that failed in the last drill", ("kind",)),
    "backups_failing_verification": ("Backups whose newest check failed", ()),
    "verification_failures": ("Failed check records beside the current backups", ("check",)),
    "backups_damaged": ("Committed backups whose manifest cannot be used", ()),
    "backups_locked": ("Backups whose Object Lock retention has not expired", ()),
    "stored_bytes": ("Bytes stored in the bucket", ("area", "storage_class")),
    "rpo_seconds": ("Age of the newest recoverable moment (archived heartbeat)", ()),
    "wal_queue_files": ("WAL files waiting in the archiver's spool", ()),
    "wal_archiver_running": ("1 when the WAL archiver is running", ()),
    "objective_seconds": ("The config's objective for an age (label objective)", ("objective",)),
    "objective_wal_queue_files": ("Most WAL files the spool may hold (physical.monitor.max_queue_files)", ()),
    "exporter_database_up": ("1 when the database's objects could be read on the last collection", ()),
}


class BucketCollector:
    """A prometheus_client collector: ``collect()`` reads the bucket (through a short cache)."""

    def __init__(self, services: Services, *, cache_seconds: float | None = None) -> None:
        self.services = services
        self.cache_seconds = services.config.metrics.cache_seconds if cache_seconds is None else cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, list[GaugeMetricFamily]] | None = None
        #: Immutable once written: verification records by key, manifests' lock expiry by backup.
        self._records: dict[str, dict[str, Any]] = {}
        self._retain_until: dict[tuple[str, str], str | None] = {}

    def describe(self) -> list:
        return []  # collected on scrape only, not at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] >= self.cache_seconds:
                self._cached = (time.monotonic(), self._measure())
            families = self._cached[1]
        yield from families

    def _measure(self, databases: Collection[str] | None = None) -> list[GaugeMetricFamily]:
        from prometheus_client.core import GaugeMetricFamily

        families = {
            name: GaugeMetricFamily(f"restorable_{name}", text, labels=["database", "engine", *extra])
            for name, (text, extra) in FAMILIES.items()
        }
        now = utcnow()
        for db in self.services.config.databases.values():
            if databases is not None and db.id not in databases:
                continue
            try:
                self._database(db, families, now)
                up = 1
            except Exception as exc:  # one database's trouble must not blank the others
                log.warning("exporter could not read database=%s error=%s: %s", db.id, type(exc).__name__, exc)
                up = 0
            families["exporter_database_up"].add_metric([db.id, db.engine], up)
        return list(families.values())

    def measure(self, databases: Collection[str] | None = None) -> dict[str, dict[tuple[str, ...], float]]:
        """The figures now (no cache), as ``{name: {labels after database: value}}`` keyed by database first.

        What the status board shows, so it agrees with what the alert rules read; ``databases`` limits
        the reading to those (the board reads only what its user may see).
        """
        out: dict[str, dict[tuple[str, ...], float]] = {}
        for family in self._measure(databases):
            for sample in family.samples:
                labels = sample.labels
                key = (labels["database"], *(labels[k] for k in FAMILIES[family.name.removeprefix("restorable_")][1]))
                out.setdefault(family.name.removeprefix("restorable_"), {})[key] = sample.value
        return out

    def _database(self, db: DatabaseConfig, families: dict[str, GaugeMetricFamily], now: datetime) -> None:
        def gauge(name: str, value: float | None, *extra: str) -> None:
            if value is not None:
                families[name].add_metric([db.id, db.engine, *extra], value)

        metrics = self.services.config.metrics
        gauge("objective_seconds", metrics.max_backup_age.total_seconds(), "backup_age")
        gauge("objective_seconds", metrics.max_verified_age.total_seconds(), "verified_age")
        gauge("objective_seconds", metrics.max_drill_age.total_seconds(), "drill_age")
        catalog = self.services.catalog("restore")
        scan = catalog.scan(db.id)
        gauge("backups_damaged", len(scan.damaged))
        by_kind: dict[str, list[CatalogEntry]] = {}
        for entry in scan.entries:
            by_kind.setdefault(BACKUP_KINDS.get(entry.summary.get("kind", "logical"), "backup"), []).append(entry)
        drills: dict[str, dict[str, Any]] = {}
        failing = locked = 0
        failures: dict[str, int] = {}
        for kind, entries in by_kind.items():
            gauge("backups", len(entries), kind)
            gauge("backup_age_seconds", (now - entries[-1].created).total_seconds(), kind)
            verified = None
            for entry in entries:
                records = [self._record(k) for k in entry.verification_keys]
                checks = [r for r in records if r.get("kind") in VERIFICATION_KINDS]
                if checks and checks[-1].get("ok"):
                    verified = entry
                elif checks:
                    failing += 1
                for r in records:
                    if not r.get("ok"):
                        failures[r.get("kind", "unknown")] = failures.get(r.get("kind", "unknown"), 0) + 1
                    if r.get("kind") in DRILL_KINDS and r.get("checked_at", "") > drills.get(r["kind"], {}).get(
                        "checked_at", ""
                    ):
                        drills[r["kind"]] = r
                until = self._lock_expiry(entry)
                locked += bool(until and parse_iso(until) > now)
            if verified is not None:
                gauge("verified_backup_age_seconds", (now - verified.created).total_seconds(), kind)
        for kind, record in drills.items():
            gauge("drill_age_seconds", (now - parse_iso(record["checked_at"])).total_seconds(), kind)
            gauge("drill_last_passed", 1 if record.get("ok") else 0, kind)
            gauge("drill_last_rto_seconds", record.get("rto_seconds"), kind)
            failed = (record.get("validation") or {}).get("failed_expectations")
            gauge("drill_last_failed_checks", failed if failed is not None else len(record.get("problems") or []), kind)
        gauge("backups_failing_verification", failing)
        gauge("backups_locked", locked)
        for check in sorted(set(VERIFICATION_KINDS) | set(DRILL_KINDS) | set(failures)):
            gauge("verification_failures", failures.get(check, 0), check)
        for (area, storage_class), size in sorted(self._stored_bytes(db.id).items()):
            gauge("stored_bytes", size, area, storage_class)
        if db.physical is not None:
            self._wal(db, gauge)

    def _record(self, key: str) -> dict[str, Any]:
        if key not in self._records:
            record = self.services.catalog("restore").store.get_json(key)
            self._records[key] = record if isinstance(record, dict) else {}
        return self._records[key]

    def _lock_expiry(self, entry: CatalogEntry) -> str | None:
        """The manifest's Object Lock ``retain_until`` (the summary does not carry it; read once)."""
        key = (entry.database_id, entry.backup_id)
        if key not in self._retain_until:
            self._retain_until[key] = (entry.manifest.object_lock or {}).get("retain_until")
        return self._retain_until[key]

    def _stored_bytes(self, database_id: str) -> dict[tuple[str, str], int]:
        catalog = self.services.catalog("restore")
        sizes: dict[tuple[str, str], int] = {}
        for obj in catalog.store.list_objects(catalog.layout.database_prefix(database_id)):
            kind = catalog.layout.parse(obj.key).kind
            area = "wal" if kind is KeyKind.WAL else "backups" if kind in (KeyKind.DATA, KeyKind.SEALED) else "other"
            where = (area, obj.storage_class or "STANDARD")
            sizes[where] = sizes.get(where, 0) + obj.size
        return sizes

    def _wal(self, db: DatabaseConfig, gauge: Any) -> None:
        from restorable.commands.wal_monitor import measure

        monitor = db.physical.monitor
        gauge("objective_seconds", monitor.rpo_objective.total_seconds(), "rpo")
        gauge("objective_seconds", monitor.max_base_backup_age.total_seconds(), "base_backup_age")
        gauge("objective_wal_queue_files", monitor.max_queue_files)
        figures = measure(self.services, db.id)
        gauge("rpo_seconds", figures.get("rpo_seconds"))
        gauge("wal_queue_files", figures.get("queue_files"))
        gauge("wal_archiver_running", 1 if figures.get("archiver_running") else 0)


def serve(services: Services, *, port: int, bind: str = "127.0.0.1") -> tuple[Any, Any]:
    """Start the HTTP server in a thread (``/metrics``); return ``(server, thread)``."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(BucketCollector(services))
    return start_http_server(port, addr=bind, registry=registry)
