"""Run metrics: the figures each command reports when it ends, pass or fail.

A command (backup, verify, drill, base backup, point-in-time drill) reports once, at its end,
through a :class:`MetricsSink`: nowhere by default (:class:`NoMetrics`), or to a Prometheus
Pushgateway when the config's ``metrics.pushgateway_url`` is set (:class:`PushgatewaySink`). Freshness
(how old is the newest backup, drill, archived WAL) is not pushed: ``restorable exporter`` computes it
from the bucket, so alerting keeps working when Airflow is down (``restorable.exporter``).

Every run metric carries the labels ``database``, ``engine`` and ``kind`` (the command: ``backup``,
``base_backup``, ``verify``, ``drill``, ``pitr_drill``); ``restorable_run_result`` adds ``result``.
:data:`RUN_METRICS` names them all; the README's table is written from it. Reporting never fails
a command: a Pushgateway that is down costs a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from restorable.config import MetricsConfig
    from restorable.repository.manifest import BackupManifest
    from restorable.services import Services

log = logging.getLogger(__name__)

PREFIX = "restorable_"
LABELS = ("database", "engine", "kind")
KINDS = ("backup", "base_backup", "verify", "drill", "pitr_drill")
RESULTS = ("success", "failure")

#: Every figure a run may report (the name without ``restorable_``), with its help text.
RUN_METRICS: dict[str, str] = {
    "run_result": "1 for the result of the last run (label result: success or failure), 0 for the other",
    "run_duration_seconds": "Wall time of the last run, pass or fail",
    "run_finished_timestamp_seconds": "When the last run ended (Unix time)",
    "run_attempt": "Which attempt the last run was (1 for the first; Airflow retries count up)",
    "run_retries_exhausted": "1 when the last run failed on its last attempt (nothing will retry it)",
    "run_exit_code": "The CLI exit code the last run's error maps to (0 on success)",
    "backup_duration_seconds": "Time from start to commit of the backup",
    "backup_plain_bytes": "Bytes of the dump before compression and encryption",
    "backup_stored_bytes": "Bytes stored in the bucket",
    "backup_throughput_bytes_per_second": "Plain bytes per second of the whole backup",
    "backup_parts": "Multipart upload parts stored",
    "backup_objects": "Objects the backup stored",
    "backup_rows": "Rows counted in the backup's snapshot",
    "backup_snapshot_seconds": "Time to take the consistent snapshot (MariaDB: the global read lock)",
    "verify_duration_seconds": "Time to re-read and check the stored objects",
    "verify_read_bytes": "Stored bytes re-read by the verification",
    "verify_passed": "1 when the verification matched the manifest, 0 when it did not",
    "drill_passed": "1 when the drill proved the backup restores, 0 when it did not",
    "drill_rto_seconds": "Restore time measured by the drill (the recovery time objective's evidence)",
    "drill_backup_age_seconds": "Age of the drilled backup when the drill ran",
    "drill_expected_rows": "Rows the backup's manifest recorded",
    "drill_found_rows": "Rows found in the restored copy",
    "validation_checks": "Expectations the drill's validation ran",
    "validation_failed_checks": "Expectations that failed (a validation mismatch when above 0)",
    "pitr_wal_files_replayed": "WAL files the point-in-time drill replayed",
}


class MetricsSink(Protocol):
    def record_run(
        self, kind: str, database: str, engine: str, figures: Mapping[str, float | None], result: str
    ) -> None: ...


class NoMetrics:
    """The default: report nothing."""

    def record_run(
        self, kind: str, database: str, engine: str, figures: Mapping[str, float | None], result: str
    ) -> None:
        return None


class PushgatewaySink:
    """Push each run's figures to a Pushgateway, grouped by job, database and kind.

    One group per database and command: the next run of the same command replaces the last one's
    figures, so the gateway holds the latest run of each, which is what the alert rules read.
    """

    def __init__(self, url: str, job: str = "restorable", *, timeout: float = 5.0) -> None:
        self.url = url
        self.job = job
        self.timeout = timeout

    def registry(self, kind: str, database: str, engine: str, figures: Mapping[str, float | None], result: str):
        """The run as a prometheus_client registry (what ``record_run`` pushes)."""
        from prometheus_client import CollectorRegistry, Gauge

        registry = CollectorRegistry()
        labels = {"database": database, "engine": engine, "kind": kind}
        outcome = Gauge(PREFIX + "run_result", RUN_METRICS["run_result"], [*LABELS, "result"], registry=registry)
        for name in RESULTS:
            outcome.labels(**labels, result=name).set(1 if name == result else 0)
        for name, value in sorted(figures.items()):
            if value is None:
                continue
            Gauge(PREFIX + name, RUN_METRICS[name], LABELS, registry=registry).labels(**labels).set(float(value))
        return registry

    def record_run(
        self, kind: str, database: str, engine: str, figures: Mapping[str, float | None], result: str
    ) -> None:
        from prometheus_client import push_to_gateway

        try:
            push_to_gateway(
                self.url,
                job=self.job,
                registry=self.registry(kind, database, engine, figures, result),
                grouping_key={"database": database, "kind": kind},
                timeout=self.timeout,
            )
        except Exception as exc:  # a monitoring outage must never fail a backup
            log.warning(
                "metrics not pushed database=%s kind=%s pushgateway=%s error=%s: %s",
                database,
                kind,
                self.url,
                type(exc).__name__,
                str(exc)[:200],
            )


def sink_for(config: MetricsConfig) -> MetricsSink:
    """The config's Pushgateway, else nowhere."""
    if not config.pushgateway_url:
        return NoMetrics()
    return PushgatewaySink(config.pushgateway_url, config.job, timeout=config.push_timeout_seconds)


@dataclass
class Run:
    """What an observed command fills in: its figures, and whether it failed without raising."""

    figures: dict[str, float | None] = field(default_factory=dict)
    failed: bool = False


@contextmanager
def observed(services: Services, kind: str, database: str, *, attempt: int = 1, max_attempts: int = 1) -> Iterator[Run]:
    """Report the command run inside the block when it ends: its figures, its result, its wall time.

    An exception is a failure (reported, then re-raised); so is a run the block marks ``failed``
    (a drill that restored but did not match). Reporting itself never raises.
    """
    run = Run()
    started = time.monotonic()
    db = services.config.databases.get(database)
    engine = db.engine if db is not None else "unknown"
    exit_code = 0
    try:
        yield run
    except BaseException as exc:
        run.failed = True
        exit_code = getattr(exc, "exit_code", None) or 1
        raise
    finally:
        figures = {
            **run.figures,
            "run_duration_seconds": round(time.monotonic() - started, 3),
            "run_finished_timestamp_seconds": round(time.time(), 3),
            "run_attempt": attempt,
            "run_retries_exhausted": 1 if run.failed and attempt >= max_attempts else 0,
            "run_exit_code": exit_code or (6 if run.failed else 0),
        }
        try:
            services.metrics().record_run(kind, database, engine, figures, "failure" if run.failed else "success")
        except Exception:
            log.warning("metrics not recorded database=%s kind=%s", database, kind, exc_info=True)


def backup_figures(manifest: BackupManifest) -> dict[str, float | None]:
    """A committed backup's figures (logical or base backup)."""
    seconds = manifest.timings.get("total_seconds") or 0.0
    return {
        "backup_duration_seconds": seconds,
        "backup_plain_bytes": manifest.plain_bytes,
        "backup_stored_bytes": manifest.stored_bytes,
        "backup_throughput_bytes_per_second": round(manifest.plain_bytes / seconds, 1) if seconds else None,
        "backup_parts": sum(o.parts for o in manifest.objects),
        "backup_objects": len(manifest.objects),
        "backup_rows": sum(manifest.metadata.row_counts.values()),
        "backup_snapshot_seconds": manifest.timings.get("snapshot_seconds"),
    }


def verify_figures(result: Mapping[str, Any]) -> dict[str, float | None]:
    """A verification's figures (``verify_backup``'s result; a failed one raises, see ``observed``)."""
    return {
        "verify_duration_seconds": result.get("seconds"),
        "verify_read_bytes": sum(o.get("stored_bytes") or 0 for o in result.get("objects", [])),
        "verify_passed": 1 if result.get("ok") else 0,
    }


def drill_figures(evidence: Mapping[str, Any], validation: Mapping[str, Any] | None) -> dict[str, float | None]:
    """A logical drill's figures from its evidence summary and its validation's result."""
    validation = validation or {}
    return {
        "drill_passed": 1 if evidence.get("ok") else 0,
        "drill_rto_seconds": evidence.get("rto_seconds"),
        "drill_backup_age_seconds": evidence.get("backup_age_seconds"),
        "drill_expected_rows": evidence.get("expected_rows"),
        "drill_found_rows": evidence.get("found_rows"),
        "validation_checks": validation.get("expectations"),
        "validation_failed_checks": validation.get("failed_expectations", evidence.get("failed_expectations")),
    }


def pitr_drill_figures(figures: Mapping[str, Any], ok: bool) -> dict[str, float | None]:
    """A point-in-time drill's figures (``PitrDrillResult.figures``)."""
    return {
        "drill_passed": 1 if ok else 0,
        "drill_rto_seconds": figures.get("rto_seconds"),
        "pitr_wal_files_replayed": figures.get("wal_files_replayed"),
    }
