"""The WAL monitor's state object is written when its breaches change, and once a day otherwise:
every version stays locked in the bucket, so a write per 5-minute run would pile up identical ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from restorable.commands.wal_monitor import Breach, MonitorReport, read_state, record
from restorable.config import parse_config
from restorable.repository.manifest import iso
from restorable.services import Services
from restorable.storage.memory import MemoryStore

RECIPIENT = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"
T0 = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)


class _CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def put_json(self, key, data, **kwargs):
        self.writes += 1
        return super().put_json(key, data, **kwargs)


class _Services(Services):
    def store(self, duty="backup"):
        return self.memory


def _services() -> _Services:
    data = {
        "storage": {"conn_id": "s3", "bucket": "backups"},
        "encryption": {"recipients": [RECIPIENT]},
        "databases": [{"id": "shop", "engine": "postgres", "conn_id": "src", "physical": {"enabled": True}}],
    }
    services = _Services(parse_config(data, Path("restorable.yaml"), {}))
    services.memory = _CountingStore()
    return services


def _rpo(measured: str) -> Breach:
    return Breach("rpo", measured, "5m", f"RPO {measured}", "docs/runbooks/rpo.md")


def _run(services, minutes: float, breaches: list[Breach], delivered: bool = True) -> None:
    """One monitor run at T0 + ``minutes``, as ``evaluate`` then the operator do it."""
    state = read_state(services, "shop")
    previous = state.get("open_breaches") or {}
    report = MonitorReport(
        "shop",
        {"measured_at": iso(T0 + timedelta(minutes=minutes))},
        breaches,
        [b for b in breaches if not (previous.get(b.check) or {}).get("alerted")],
        sorted(set(previous) - {b.check for b in breaches}),
        previous,
        state.get("updated_at"),
    )
    record(services, report, {b.check: delivered for b in report.to_alert})


def test_the_state_is_written_when_breaches_open_clear_or_are_alerted_and_daily_otherwise():
    services = _services()
    store = services.memory
    _run(services, 0, [])
    assert store.writes == 1  # the first run
    _run(services, 5, [])
    _run(services, 10, [])
    assert store.writes == 1, "a quiet run rewrote an unchanged state"
    _run(services, 15, [_rpo("6m")], delivered=False)
    assert store.writes == 2  # opened (its alert could not be delivered)
    _run(services, 20, [_rpo("11m")], delivered=True)
    assert store.writes == 3  # now alerted
    _run(services, 25, [_rpo("16m")])
    assert store.writes == 3, "a breach still open, its figure grown, is the same state"
    assert read_state(services, "shop")["open_breaches"]["rpo"]["alerted"] is True
    _run(services, 30, [])
    assert store.writes == 4  # cleared
    assert read_state(services, "shop")["cleared"] == ["rpo"]
    _run(services, 35, [])
    assert store.writes == 4
    _run(services, 30 + 24 * 60, [])
    assert store.writes == 5  # a day later: written again, so updated_at shows the monitor runs
