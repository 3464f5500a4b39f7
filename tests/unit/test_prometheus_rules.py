"""The alert rules: valid for promtool, each firing as tested, each with a runbook that exists, and
reading only metrics that Restorable produces; the Alertmanager example is valid."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from restorable.exporter import FAMILIES
from restorable.metrics import RUN_METRICS

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "include" / "prometheus" / "alerts.yml"
WANTED = {
    "RestorableBackupTooOld",
    "RestorableNoVerifiedBackup",
    "RestorableDrillFailed",
    "RestorableDrillOverdue",
    "RestorableRpoAboveObjective",
    "RestorableValidationMismatch",
    "RestorableArchiverLag",
    "RestorableRetriesExhausted",
}


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run make bootstrap (it installs Debian's prometheus packages)")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("promtool", "check", "rules", "include/prometheus/alerts.yml"),
        ("promtool", "test", "rules", "include/prometheus/alerts_test.yml"),
        ("promtool", "check", "config", "include/prometheus/prometheus.yml"),
        ("amtool", "check-config", "include/prometheus/alertmanager.yml"),
    ],
)
def test_prometheus_tools_accept_the_files(args):
    done = subprocess.run([tool(args[0]), *args[1:]], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_wanted_alert_exists_and_links_a_runbook_that_exists():
    found = {rule["alert"]: rule for rule in rules()}
    assert WANTED <= set(found)
    for name, rule in found.items():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("docs/runbooks/") and (REPO / url).is_file(), f"{name}: {url}"


def test_rules_read_only_metrics_restorable_produces():
    known = {f"restorable_{name}" for name in [*RUN_METRICS, *FAMILIES]}
    for rule in rules():
        used = set(re.findall(r"\brestorable_[a-z_]+\b", rule["expr"] + " ".join(rule["annotations"].values())))
        assert used <= known, f"{rule['alert']}: {sorted(used - known)}"
