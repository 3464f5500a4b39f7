"""The alert path end to end, through real Prometheus, Pushgateway and Alertmanager (``devstack.monitoring``).

A backup fails for real (the source refuses the password) with the config's Pushgateway set and
``restorable exporter`` reading the bucket; Prometheus scrapes both and evaluates the shipped rules;
Alertmanager posts to a webhook served by this test, with each rule's ``runbook_url``; the next
backup succeeds and Alertmanager sends the same alerts as resolved.

The rules, routes and receivers are the shipped ``include/prometheus`` files; only the timers are
shortened for the test (``devstack.monitoring.FAST``: 1 s scrape and evaluation, 1 s ``group_wait``
and ``group_interval``, every rule's ``for:`` capped at 1 s), so the round trip takes seconds.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.monitoring import FAST, Monitoring
from devstack.ports import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


class Webhook:
    """A local HTTP endpoint standing in for the team's chat/incident bridge: keeps every alert posted."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        webhook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                webhook.alerts.extend(body["alerts"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(
        self, status: str, alertname: str, *, since: int = 0, timeout: float = 45, **labels: str
    ) -> dict[str, Any]:
        """The first alert posted with this status, name and labels after the first ``since`` alerts."""
        wanted = {"alertname": alertname, **labels}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for alert in self.alerts[since:]:
                if alert["status"] == status and wanted.items() <= alert["labels"].items():
                    return alert
            time.sleep(0.2)
        seen = [(a["status"], a["labels"].get("alertname"), a["labels"].get("database")) for a in self.alerts]
        raise AssertionError(f"no {status} {wanted} within {timeout:.0f}s; posted: {seen}")


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.2)


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    """The instant vector Prometheus's ``/api/v1/query`` returns for ``promql``."""
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def with_metrics(chain, pushgateway_url: str) -> None:
    """Point the chain's config at the Pushgateway; the exporter reads the bucket on every scrape."""
    data = yaml.safe_load(chain.config_path.read_text())
    data["metrics"] = {"pushgateway_url": pushgateway_url, "job": "restorable", "cache_seconds": 0}
    chain.config_path.write_text(yaml.safe_dump(data))


@pytest.fixture
def exporter(pg_cli_chain) -> Iterator[str]:
    """``restorable exporter`` for the chain's bucket: its ``host:port``, for Prometheus to scrape."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "restorable.cli", "--config", str(pg_cli_chain.config_path), "exporter"]
        + ["--port", str(port), "--bind", "127.0.0.1"],
        env={**os.environ, **pg_cli_chain.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def test_a_failed_backup_fires_alerts_with_runbooks_and_the_next_success_resolves_them(
    tmp_path, pg_cli_chain, webhook, exporter
):
    with Monitoring(tmp_path / "monitoring", timing=FAST, exporter=exporter, webhook_url=webhook.url) as mon:
        with_metrics(pg_cli_chain, mon.pushgateway_url)
        src = json.loads(pg_cli_chain.env["AIRFLOW_CONN_SRC"])
        wrong = json.dumps({**src, "password": src["password"] + "-wrong"})

        failed = pg_cli_chain.run_cli("backup", "shop", env_extra={"AIRFLOW_CONN_SRC": wrong})
        assert failed.returncode != 0, failed.stdout
        assert src["password"] not in failed.stderr + failed.stdout

        shop = {"database": "shop", "severity": "critical"}
        # The run's own report (Pushgateway): the CLI makes one attempt, so it failed for good.
        exhausted = webhook.wait_for("firing", "RestorableRetriesExhausted", kind="backup", **shop)
        assert exhausted["annotations"]["runbook_url"] == "docs/runbooks/backup-failed.md"
        assert (REPO / exhausted["annotations"]["runbook_url"]).is_file()
        assert f"exit code {failed.returncode})" in exhausted["annotations"]["summary"]
        # The bucket's view (exporter): nothing committed for shop.
        empty = webhook.wait_for("firing", "RestorableNoBackup", **shop)
        assert empty["annotations"]["runbook_url"] == "docs/runbooks/backup-too-old.md"

        # Only what is posted from here on counts: a scrape that timed out under load could make the
        # exporter's series blink and post an early "resolved".
        mark = len(webhook.alerts)
        done = pg_cli_chain.run_cli("backup", "shop")
        assert done.returncode == 0, done.stderr
        webhook.wait_for("resolved", "RestorableRetriesExhausted", since=mark, kind="backup", **shop)
        webhook.wait_for("resolved", "RestorableNoBackup", since=mark, **shop)

        # Prometheus agrees: nothing about shop's backups is firing any more (within a few rule
        # evaluations: under load a resolved notification can race the next evaluation's series).
        def backup_alerts_firing() -> set[str]:
            firing = query(mon.prometheus_url, 'ALERTS{alertstate="firing",database="shop"}')
            names = {a["metric"]["alertname"] for a in firing}
            return names & {"RestorableRetriesExhausted", "RestorableNoBackup", "RestorableRunFailed"}

        wait_until("no backup alert of shop firing in Prometheus", lambda: not backup_alerts_firing(), timeout=30)


def test_a_runs_pushed_figures_read_back_through_prometheus_query_api(tmp_path, pg_cli_chain):
    with Monitoring(tmp_path / "monitoring", timing=FAST) as mon:
        with_metrics(pg_cli_chain, mon.pushgateway_url)
        done = pg_cli_chain.run_cli("--json", "backup", "shop")
        assert done.returncode == 0, done.stderr
        backup = json.loads(done.stdout)

        selector = '{job="restorable",database="shop",engine="postgres",kind="backup"}'
        stored = wait_until(
            "the pushed backup scraped by Prometheus",
            lambda: query(mon.prometheus_url, "restorable_backup_stored_bytes" + selector),
        )
        assert len(stored) == 1
        assert float(stored[0]["value"][1]) == backup["stored_bytes"]
        labels = stored[0]["metric"]
        assert {k: labels[k] for k in ("job", "database", "engine", "kind")} == {
            "job": "restorable",
            "database": "shop",
            "engine": "postgres",
            "kind": "backup",
        }

        def value(name: str, extra: str = "") -> float:
            found = query(mon.prometheus_url, name + selector[:-1] + extra + "}")
            assert len(found) == 1, (name, found)
            return float(found[0]["value"][1])

        assert value("restorable_backup_plain_bytes") == backup["plain_bytes"]
        assert value("restorable_backup_rows") == backup["rows"]
        assert value("restorable_backup_parts") >= 1
        assert 0 < value("restorable_backup_duration_seconds") <= backup["seconds"] + 1
        assert value("restorable_backup_throughput_bytes_per_second") > 0
        assert value("restorable_run_result", ',result="success"') == 1
        assert value("restorable_run_result", ',result="failure"') == 0
        assert value("restorable_run_retries_exhausted") == 0
        finished = value("restorable_run_finished_timestamp_seconds")
        assert time.time() - 120 < finished <= time.time()
        # The verification the backup command ran is its own run, under kind="verify".
        verify = wait_until(
            "the backup's verification scraped",
            lambda: query(mon.prometheus_url, 'restorable_verify_passed{database="shop",kind="verify"}'),
        )
        assert [float(v["value"][1]) for v in verify] == [1.0]
