"""Run metrics without a gateway: the no-op default, names and labels in Prometheus form, a gateway
that is down costs a warning and never the run, and every run is reported once, pass or fail."""

from __future__ import annotations

import logging
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from restorable.config import MetricsConfig, parse_config
from restorable.exceptions import ConfigError, IntegrityError
from restorable.metadata import SnapshotMetadata
from restorable.metrics import (
    RUN_METRICS,
    NoMetrics,
    PushgatewaySink,
    backup_figures,
    drill_figures,
    observed,
    pitr_drill_figures,
    sink_for,
    verify_figures,
)
from restorable.repository.manifest import BackupManifest, StoredObject
from restorable.services import Services

RECIPIENT = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"
#: What a unit-less figure may end in; every other name ends in its unit (Prometheus naming).
UNITLESS = ("_result", "_attempt", "_exhausted", "_code", "_passed", "_checks", "_rows", "_parts", "_objects")


class Recorder:
    def __init__(self) -> None:
        self.runs: list[tuple] = []

    def record_run(self, kind, database, engine, figures, result) -> None:
        self.runs.append((kind, database, engine, dict(figures), result))


class Broken:
    def record_run(self, *args) -> None:
        raise RuntimeError("sink exploded")


def services(sink=None, metrics: dict | None = None) -> Services:
    data = {
        "storage": {"conn_id": "s3", "bucket": "backups"},
        "encryption": {"recipients": [RECIPIENT]},
        "databases": [{"id": "shop", "engine": "mysql", "conn_id": "shop_db", "schedule": None}],
        **({"metrics": metrics} if metrics else {}),
    }
    return Services(parse_config(data, Path("restorable.yaml"), {}), metrics_sink=sink)


def manifest() -> BackupManifest:
    return BackupManifest(
        backup_id="20261125T020000Z-aaaaaaaa",
        database_id="shop",
        engine="mysql",
        dump_format="mariadb-dump",
        created_at=datetime(2026, 11, 25, 2, tzinfo=UTC).isoformat(),
        finished_at=datetime(2026, 11, 25, 2, tzinfo=UTC).isoformat(),
        objects=[StoredObject("k", 4_000_000, 1_000_000, "a", "b", 3, 1 << 20)],
        metadata=SnapshotMetadata("10.11", {"t1": 5, "t2": 7}, {"tables": {}}),
        compression={},
        encryption={},
        timings={"total_seconds": 2.0, "snapshot_seconds": 0.25},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_pushgateway_configured_reports_nowhere():
    assert isinstance(sink_for(MetricsConfig()), NoMetrics)
    assert isinstance(services().metrics(), NoMetrics)
    sink = services(metrics={"pushgateway_url": "http://127.0.0.1:9091", "job": "b"}).metrics()
    assert isinstance(sink, PushgatewaySink)
    assert (sink.url, sink.job) == ("http://127.0.0.1:9091", "b")


def test_the_environment_names_a_pushgateway_when_the_config_does_not():
    def config(metrics, env):
        data = {
            "storage": {"conn_id": "s3", "bucket": "backups"},
            "encryption": {"recipients": [RECIPIENT]},
            "databases": [{"id": "shop", "engine": "mysql", "conn_id": "shop_db", "schedule": None}],
            **({"metrics": metrics} if metrics is not None else {}),
        }
        return parse_config(data, Path("restorable.yaml"), env).metrics

    env = {"RESTORABLE_PUSHGATEWAY_URL": "http://127.0.0.1:9091/"}
    assert config(None, env).pushgateway_url == "http://127.0.0.1:9091"
    assert config({"job": "b"}, env).pushgateway_url == "http://127.0.0.1:9091"
    assert config({"pushgateway_url": "http://gw:9091"}, env).pushgateway_url == "http://gw:9091"
    assert config(None, {}).pushgateway_url is None
    with pytest.raises(ConfigError, match=r"\$RESTORABLE_PUSHGATEWAY_URL: the URL holds credentials"):
        config(None, {"RESTORABLE_PUSHGATEWAY_URL": "http://u:p@gw:9091"})


def test_every_figure_is_named_in_prometheus_form():
    figures = {
        **backup_figures(manifest()),
        **verify_figures({"seconds": 1.0, "ok": True, "objects": [{"stored_bytes": 9}]}),
        **drill_figures({"ok": True, "rto_seconds": 3.5}, {"expectations": 4, "failed_expectations": 0}),
        **pitr_drill_figures({"rto_seconds": 9.0, "wal_files_replayed": 3}, True),
    }
    assert set(figures) <= set(RUN_METRICS)
    for name in RUN_METRICS:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)+", name), name
        assert name.endswith(("_seconds", "_bytes", "_bytes_per_second", *UNITLESS, "_replayed")), name


def test_backup_figures_are_the_manifests():
    figures = backup_figures(manifest())
    assert figures["backup_plain_bytes"] == 4_000_000
    assert figures["backup_stored_bytes"] == 1_000_000
    assert figures["backup_throughput_bytes_per_second"] == 2_000_000
    assert (figures["backup_parts"], figures["backup_rows"], figures["backup_snapshot_seconds"]) == (3, 12, 0.25)


def test_a_run_becomes_gauges_with_database_engine_kind_labels():
    sink = PushgatewaySink("http://127.0.0.1:1")
    registry = sink.registry("backup", "shop", "mysql", {**backup_figures(manifest()), "run_attempt": None}, "failure")
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert "restorable_run_attempt" not in families  # a figure that is not known is not invented
    (stored,) = families["restorable_backup_stored_bytes"].samples
    assert stored.labels == {"database": "shop", "engine": "mysql", "kind": "backup"}
    assert stored.value == 1_000_000
    results = {s.labels["result"]: s.value for s in families["restorable_run_result"].samples}
    assert results == {"success": 0.0, "failure": 1.0}


def test_a_pushgateway_that_is_down_costs_a_warning_not_the_run(caplog):
    sink = PushgatewaySink(f"http://127.0.0.1:{free_port()}", timeout=2)
    with caplog.at_level(logging.WARNING, logger="restorable.metrics"):
        sink.record_run("backup", "shop", "mysql", backup_figures(manifest()), "success")
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "metrics not pushed database=shop kind=backup" in warning.getMessage()


def test_observed_reports_a_success_once_with_its_figures():
    sink = Recorder()
    with observed(services(sink), "verify", "shop") as run:
        run.figures["verify_passed"] = 1
    ((kind, database, engine, figures, result),) = sink.runs
    assert (kind, database, engine, result) == ("verify", "shop", "mysql", "success")
    assert figures["verify_passed"] == 1
    assert figures["run_exit_code"] == 0 and figures["run_retries_exhausted"] == 0
    assert figures["run_duration_seconds"] >= 0


def test_observed_reports_a_failure_and_lets_the_error_through():
    sink = Recorder()
    with pytest.raises(IntegrityError), observed(services(sink), "backup", "shop", attempt=2, max_attempts=3):
        raise IntegrityError("checksum differs")
    ((_, _, _, figures, result),) = sink.runs
    assert result == "failure"
    assert (figures["run_exit_code"], figures["run_attempt"], figures["run_retries_exhausted"]) == (6, 2, 0)


def test_observed_failure_on_the_last_attempt_is_retry_exhaustion():
    sink = Recorder()
    with observed(services(sink), "drill", "shop", attempt=3, max_attempts=3) as run:
        run.failed = True  # a drill that restored but did not match raises nothing
    ((_, _, _, figures, result),) = sink.runs
    assert result == "failure" and figures["run_retries_exhausted"] == 1


def test_a_sink_that_raises_neither_fails_the_run_nor_hides_its_error(caplog):
    with observed(services(Broken()), "backup", "shop"):
        pass
    with pytest.raises(IntegrityError, match="checksum"), observed(services(Broken()), "backup", "shop"):
        raise IntegrityError("checksum differs")
    assert any("metrics not recorded" in r.getMessage() for r in caplog.records)
