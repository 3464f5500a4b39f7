"""The local monitoring's configs (``devstack.monitoring``): rendered from the shipped files, valid for
promtool and amtool, and changed only where a local run must (addresses, timers, capped ``for:``)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from devstack.monitoring import FAST, SHIPPED, render_alertmanager, render_prometheus, render_rules


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run make bootstrap (it installs Debian's prometheus packages)")
    return path


def test_rendered_configs_pass_promtool_and_amtool(tmp_path):
    rules = tmp_path / "alerts.yml"
    rules.write_text(yaml.safe_dump(render_rules(FAST)))
    prometheus = tmp_path / "prometheus.yml"
    config = render_prometheus(
        FAST, rules_file=rules, pushgateway="127.0.0.1:1", alertmanager="127.0.0.1:2", exporter="127.0.0.1:3"
    )
    prometheus.write_text(yaml.safe_dump(config))
    alertmanager = tmp_path / "alertmanager.yml"
    alertmanager.write_text(yaml.safe_dump(render_alertmanager(FAST, webhook_url="http://127.0.0.1:4/alerts")))
    for argv in (
        [tool("promtool"), "check", "config", str(prometheus)],
        [tool("amtool"), "check-config", str(alertmanager)],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {"pushgateway": ["127.0.0.1:1"], "restorable-exporter": ["127.0.0.1:3"]}
    assert next(j for j in config["scrape_configs"] if j["job_name"] == "pushgateway")["honor_labels"] is True


def test_only_the_for_durations_of_the_rules_change():
    shipped = yaml.safe_load((SHIPPED / "alerts.yml").read_text())
    fast = render_rules(FAST)
    pairs = [
        (a, b)
        for ga, gb in zip(shipped["groups"], fast["groups"], strict=True)
        for a, b in zip(ga["rules"], gb["rules"], strict=True)
    ]
    assert pairs
    for before, after in pairs:
        assert {k: v for k, v in before.items() if k != "for"} == {k: v for k, v in after.items() if k != "for"}
        assert after.get("for") in (None, "1s")
    assert any(before.get("for") == "1h" for before, _ in pairs)  # something was actually capped


def test_alertmanager_keeps_routes_and_inhibitions_with_short_timers():
    shipped = yaml.safe_load((SHIPPED / "alertmanager.yml").read_text())
    fast = render_alertmanager(FAST, webhook_url="http://127.0.0.1:4/alerts")
    assert fast["route"]["group_wait"] == "1s" and fast["route"]["group_interval"] == "1s"
    assert fast["global"]["resolve_timeout"] == "5s"
    assert fast["inhibit_rules"] == shipped["inhibit_rules"]
    assert [r["matchers"] for r in fast["route"]["routes"]] == [r["matchers"] for r in shipped["route"]["routes"]]
    hooks = [h for r in fast["receivers"] for h in r["webhook_configs"]]
    assert hooks and all(h["url"] == "http://127.0.0.1:4/alerts" and h["send_resolved"] for h in hooks)
