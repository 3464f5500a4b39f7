"""Metrics on the real chain: a backup, a verification and a drill, then a real ``restorable exporter``
scraped over HTTP; and a run's figures pushed to a real Pushgateway and read back from it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, *, wait: float = 0) -> str:
    """GET ``url``; retry for ``wait`` seconds while nothing listens yet."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def samples(text: str, name: str) -> dict[frozenset, float]:
    """Every sample of ``name``, keyed by its labels."""
    return {
        frozenset(s.labels.items()): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def one(text: str, name: str, **labels: str) -> float:
    """The value of the one sample of ``name`` whose labels include ``labels``."""
    found = [v for k, v in samples(text, name).items() if set(labels.items()) <= k]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples in\n" + "\n".join(
        line for line in text.splitlines() if line.startswith(name)
    )
    return found[0]


def cli_json(chain, *args: str) -> dict:
    done = chain.run_cli("--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def exporter(pg_cli_chain):
    """``restorable exporter`` for the chain's config on a free loopback port, as a subprocess."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "restorable.cli", "--config", str(pg_cli_chain.config_path), "exporter"]
        + ["--port", str(port), "--bind", "127.0.0.1"],
        env={**os.environ, **pg_cli_chain.env},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}/metrics"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_exporter_reports_a_backup_its_verification_and_its_drill(pg_cli_chain, exporter):
    backup = cli_json(pg_cli_chain, "backup", "shop")
    verify = cli_json(pg_cli_chain, "verify", "shop", "latest")
    drill = cli_json(pg_cli_chain, "drill", "shop", "latest")
    assert verify["ok"] and drill["ok"]
    proc, url = exporter
    text = get(url, wait=30)
    shop = {"database": "shop", "engine": "postgres"}
    assert one(text, "restorable_exporter_database_up", **shop) == 1
    assert one(text, "restorable_backups", **shop, kind="backup") == 1
    assert 0 < one(text, "restorable_backup_age_seconds", **shop, kind="backup") < 600
    assert 0 < one(text, "restorable_verified_backup_age_seconds", **shop, kind="backup") < 600
    assert one(text, "restorable_drill_last_passed", **shop, kind="drill") == 1
    rto = one(text, "restorable_drill_last_rto_seconds", **shop, kind="drill")
    assert rto == drill["restore"]["restore_seconds"] and rto > 0
    assert 0 <= one(text, "restorable_drill_age_seconds", **shop, kind="drill") < 600
    assert one(text, "restorable_drill_last_failed_checks", **shop, kind="drill") == 0
    assert one(text, "restorable_backups_failing_verification", **shop) == 0
    assert one(text, "restorable_verification_failures", **shop, check="checksum") == 0
    # The dump plus its sealed settings: a little more than the manifest's stored bytes.
    stored = one(text, "restorable_stored_bytes", **shop, area="backups")
    assert backup["stored_bytes"] <= stored < backup["stored_bytes"] + 64 * 1024
    assert one(text, "restorable_backups_locked", **shop) == 0
    assert one(text, "restorable_objective_seconds", **shop, objective="backup_age") == 26 * 3600
    assert not samples(text, "restorable_rpo_seconds")  # no physical block: no RPO to claim

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert "serving http://127.0.0.1:" in proc.stderr.read()


@pytest.fixture
def pushgateway(tmp_path):
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        pytest.fail("prometheus-pushgateway is not installed: run make bootstrap (scripts/bootstrap-system.sh)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        get(f"{url}/-/ready", wait=15)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_run_pushes_its_figures_to_a_real_pushgateway(pg_cli_chain, pushgateway):
    data = yaml.safe_load(pg_cli_chain.config_path.read_text())
    data["metrics"] = {"pushgateway_url": pushgateway, "job": "restorable"}
    pg_cli_chain.config_path.write_text(yaml.safe_dump(data))

    backup = cli_json(pg_cli_chain, "backup", "shop")
    missing = pg_cli_chain.run_cli("verify", "shop", "20200101T000000Z-00000000")
    assert missing.returncode == 8, missing.stderr  # not found: a failed verification run

    text = get(f"{pushgateway}/metrics")
    run = {"job": "restorable", "database": "shop", "engine": "postgres"}
    assert one(text, "restorable_backup_stored_bytes", **run, kind="backup") == backup["stored_bytes"]
    assert one(text, "restorable_backup_plain_bytes", **run, kind="backup") == backup["plain_bytes"]
    assert one(text, "restorable_backup_parts", **run, kind="backup") >= 1
    assert one(text, "restorable_backup_throughput_bytes_per_second", **run, kind="backup") > 0
    assert 0 < one(text, "restorable_backup_duration_seconds", **run, kind="backup") <= backup["seconds"] + 1
    assert one(text, "restorable_run_result", **run, kind="backup", result="success") == 1
    assert one(text, "restorable_run_result", **run, kind="backup", result="failure") == 0
    # The verification inside `backup` passed; the one of a missing backup then replaced it as the last run.
    assert one(text, "restorable_run_result", **run, kind="verify", result="failure") == 1
    assert one(text, "restorable_run_exit_code", **run, kind="verify") == 8
    assert one(text, "restorable_run_retries_exhausted", **run, kind="verify") == 1
