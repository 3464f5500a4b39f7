"""Real Prometheus, Pushgateway and Alertmanager on 127.0.0.1, configured from the shipped files.

Debian's ``prometheus`` 2.42, ``prometheus-pushgateway`` 1.5 and ``prometheus-alertmanager`` 0.25
(``make bootstrap``), each on a free port with its data under ``state_dir``. Their configs are
rendered from ``include/prometheus/{prometheus,alerts,alertmanager}.yml`` with only what a local
run must change: the addresses, the scrape/evaluation intervals and Alertmanager's timers
(:class:`Timing`), and optionally a cap on the rules' ``for:`` (so a test does not wait out an
hour). The rules' expressions, labels and annotations are the shipped ones, so what fires here is
what fires in production.

Each program is a session of its own (``stop`` ends its process group); all three start in well
under a second. ``to_record``/``from_record`` let the demo stack stop them from ``stack.json``.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from devstack import HOST, file_tail, find_program, is_zombie
from devstack.ports import free_port
from restorable.exceptions import ToolError

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parents[1] / "include" / "prometheus"
PACKAGE_HINT = "make bootstrap (apt-get install prometheus prometheus-pushgateway prometheus-alertmanager)"
PROGRAMS = ("pushgateway", "alertmanager", "prometheus")
_START_ATTEMPTS = 3


@dataclass(frozen=True)
class Timing:
    """How fast the local monitoring reacts. The defaults are the shipped files' own values."""

    scrape_interval: str = "30s"
    evaluation_interval: str = "30s"
    group_wait: str = "10s"
    group_interval: str = "1m"
    repeat_interval: str = "4h"
    resolve_timeout: str = "5m"
    #: When set, no rule waits longer than this before firing (``for:`` values above it are lowered).
    max_for: str | None = None


#: For tests: a pushed failure reaches the webhook in a few seconds, a success resolves it as fast.
FAST = Timing("1s", "1s", "1s", "1s", "1h", "5s", max_for="1s")
#: For the demo: the UIs update while you watch; the rules keep their shipped ``for:``.
DEMO = Timing("5s", "5s", "5s", "30s", "4h", "5m")


def _seconds(duration: str) -> float:
    """A Prometheus duration (``1h30m``, ``5s``, ``250ms``) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * units[u] for n, u in parts)


def render_rules(timing: Timing) -> dict[str, Any]:
    """The shipped alert rules, with ``for:`` capped at ``timing.max_for`` when that is set."""
    rules = yaml.safe_load((SHIPPED / "alerts.yml").read_text())
    if timing.max_for is not None:
        cap = _seconds(timing.max_for)
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "for" in rule and _seconds(rule["for"]) > cap:
                    rule["for"] = timing.max_for
    return rules


def render_prometheus(
    timing: Timing, *, rules_file: Path, pushgateway: str, alertmanager: str, exporter: str | None
) -> dict[str, Any]:
    """The shipped ``prometheus.yml`` pointed at these addresses (the exporter job dropped without one)."""
    config = yaml.safe_load((SHIPPED / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": timing.scrape_interval, "evaluation_interval": timing.evaluation_interval}
    config["rule_files"] = [str(rules_file)]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    targets = {"pushgateway": pushgateway, "restorable-exporter": exporter}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    if set(jobs) != set(targets):
        raise ValueError(f"{SHIPPED / 'prometheus.yml'}: expected the jobs {sorted(targets)}, found {sorted(jobs)}")
    config["scrape_configs"] = []
    for name, address in targets.items():
        if address is not None:
            config["scrape_configs"].append({**jobs[name], "static_configs": [{"targets": [address]}]})
    return config


def render_alertmanager(timing: Timing, *, webhook_url: str | None) -> dict[str, Any]:
    """The shipped ``alertmanager.yml`` with these timers and, when given, this webhook for every receiver."""
    config = yaml.safe_load((SHIPPED / "alertmanager.yml").read_text())
    config.setdefault("global", {})["resolve_timeout"] = timing.resolve_timeout

    def retime(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route or route is config["route"]:
                route[key] = getattr(timing, key)
        for child in route.get("routes", []):
            retime(child)

    retime(config["route"])
    if webhook_url is not None:
        for receiver in config["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = webhook_url
    return config


class Monitoring:
    """Pushgateway, Alertmanager and Prometheus, started together. Context manager, or ``start()``/``stop()``.

    ``exporter`` is the ``host:port`` of a ``restorable exporter`` for Prometheus to scrape (none: only
    the Pushgateway is scraped); ``webhook_url`` receives every alert Alertmanager sends.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        timing: Timing = DEMO,
        exporter: str | None = None,
        webhook_url: str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.timing = timing
        self.exporter = exporter
        self.webhook_url = webhook_url
        self.ports: dict[str, int] = {}
        self.pids: dict[str, int] = {}
        self._procs: dict[str, subprocess.Popen] = {}

    def url(self, program: str) -> str:
        return f"http://{HOST}:{self.ports[program]}"

    @property
    def pushgateway_url(self) -> str:
        return self.url("pushgateway")

    @property
    def prometheus_url(self) -> str:
        return self.url("prometheus")

    @property
    def alertmanager_url(self) -> str:
        return self.url("alertmanager")

    # -- lifecycle -----------------------------------------------------------------------
    def _write_configs(self) -> None:
        def write(name: str, data: dict[str, Any]) -> Path:
            path = self.state_dir / name
            path.write_text(yaml.safe_dump(data, sort_keys=False))
            return path

        rules = write("alerts.yml", render_rules(self.timing))
        address = {name: f"{HOST}:{port}" for name, port in self.ports.items()}
        write(
            "prometheus.yml",
            render_prometheus(
                self.timing,
                rules_file=rules,
                pushgateway=address["pushgateway"],
                alertmanager=address["alertmanager"],
                exporter=self.exporter,
            ),
        )
        write("alertmanager.yml", render_alertmanager(self.timing, webhook_url=self.webhook_url))

    def _argv(self, program: str) -> list[str]:
        listen = f"--web.listen-address={HOST}:{self.ports[program]}"
        data = self.state_dir / f"{program}-data"
        if program == "pushgateway":
            return [find_program("prometheus-pushgateway", package=PACKAGE_HINT), listen, "--log.level=warn"]
        if program == "alertmanager":
            return [
                find_program("prometheus-alertmanager", package=PACKAGE_HINT),
                f"--config.file={self.state_dir / 'alertmanager.yml'}",
                f"--storage.path={data}",
                listen,
                "--cluster.listen-address=",  # a single node: no gossip port
                "--log.level=warn",
            ]
        return [
            find_program("prometheus", package=PACKAGE_HINT),
            f"--config.file={self.state_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            listen,
            # Re-send firing alerts as often as rules are evaluated: a restarted Alertmanager learns fast.
            f"--rules.alert.resend-delay={self.timing.evaluation_interval}",
            "--log.level=warn",
        ]

    def start(self, *, timeout: float = 30) -> Monitoring:
        """Start the three programs and wait until each says it is ready."""
        if self.pids:
            return self
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.ports = {name: free_port() for name in PROGRAMS}
            self._write_configs()
            try:
                for program in PROGRAMS:
                    self._spawn(program)
                for program in PROGRAMS:
                    self._wait_ready(program, timeout)
            except ToolError as exc:
                self.stop()
                if "address already in use" in str(exc) and attempt < _START_ATTEMPTS:
                    continue  # another process took a port between choosing and binding it
                raise
            break
        log.info(
            "monitoring started prometheus=%s pushgateway=%s alertmanager=%s seconds=%.2f",
            self.prometheus_url,
            self.pushgateway_url,
            self.alertmanager_url,
            time.monotonic() - started,
        )
        return self

    def _log_file(self, program: str) -> Path:
        return self.state_dir / f"{program}.log"

    def _spawn(self, program: str) -> None:
        with open(self._log_file(program), "ab") as logfh:
            proc = subprocess.Popen(
                self._argv(program),
                stdin=subprocess.DEVNULL,
                stdout=logfh,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,  # its own group, outliving the command that started it (the demo)
            )
        self._procs[program] = proc
        self.pids[program] = proc.pid

    def _wait_ready(self, program: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self._procs.get(program)
            if proc is not None and proc.poll() is not None:
                tail = file_tail(self._log_file(program))
                raise ToolError(
                    f"{program} exited with code {proc.returncode} while starting: {tail}",
                    hint=f"Look at {self._log_file(program)}",
                )
            try:
                with urllib.request.urlopen(f"{self.url(program)}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise ToolError(
            f"{program} did not become ready on {self.url(program)} within {timeout:.0f}s: "
            f"{file_tail(self._log_file(program))}",
            hint=f"Look at {self._log_file(program)}",
        )

    def stop(self) -> None:
        """End the three programs (TERM, then KILL after 10 s). Idempotent; the configs and data stay."""
        for program, pid in list(self.pids.items()):
            _end_group(pid)
            proc = self._procs.pop(program, None)
            if proc is not None:
                proc.wait(timeout=5)
            del self.pids[program]

    def __enter__(self) -> Monitoring:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the demo stack's record ---------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        return {
            "kind": "monitoring",
            "state_dir": str(self.state_dir),
            "pid": self.pids.get("prometheus"),
            "pids": dict(self.pids),
            "ports": dict(self.ports),
            "port": self.ports.get("prometheus"),
            "urls": {name: self.url(name) for name in PROGRAMS},
            "timing": asdict(self.timing),
            "exporter": self.exporter,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Monitoring:
        monitoring = cls(Path(record["state_dir"]), timing=Timing(**record["timing"]), exporter=record["exporter"])
        monitoring.ports = dict(record["ports"])
        monitoring.pids = dict(record["pids"])
        return monitoring


def _end_group(pgid: int, grace: float = 10) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            if is_zombie(pgid):  # exited; its parent (the demo's, long gone) is not reaping it
                return
            try:
                os.waitpid(pgid, os.WNOHANG)  # our own child: reap it, or it lingers as a zombie
            except ChildProcessError:
                pass
            time.sleep(0.05)
