"""Recovery targets: one, unambiguous, and reachable by the base backup chosen."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from restorable.exceptions import ConfigError, NotFound, RestoreRefused
from restorable.physical.targets import choose_base, parse_target


def _base(backup_id: str, stop_time: str, stop_lsn: str):
    return SimpleNamespace(backup_id=backup_id, physical={"stop_time": stop_time, "stop_lsn": stop_lsn})


BASES = [_base("b1", "2026-12-01T01:00:00Z", "0/3000000"), _base("b2", "2026-12-02T01:00:00Z", "0/9000000")]


def test_a_time_is_written_with_an_explicit_utc_offset():
    target = parse_target(time="2026-12-03T15:05:00.5+01:00", lsn=None, xid=None, name=None, immediate=False)
    assert target.settings() == {
        "recovery_target_time": "2026-12-03 14:05:00.500000+00",
        "recovery_target_inclusive": "on",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time": "2026-12-03T14:05:00"}, "no UTC offset"),
        ({"time": "yesterday"}, "not an ISO 8601 time"),
        ({"lsn": "3000148"}, "not an LSN"),
        ({"xid": "12a"}, "not a transaction id"),
        ({"name": "x" * 64}, "not a restore point name"),
        ({"lsn": "0/1", "name": "p"}, "one recovery target"),
    ],
)
def test_ambiguous_or_malformed_targets_are_config_errors(kwargs, message):
    args = {"time": None, "lsn": None, "xid": None, "name": None, "immediate": False, **kwargs}
    with pytest.raises(ConfigError, match=message):
        parse_target(**args)


def test_no_target_is_the_end_of_the_archive_and_immediate_the_backup_end():
    none = parse_target(time=None, lsn=None, xid=None, name=None, immediate=False)
    assert none.kind == "end" and none.settings() == {}
    assert parse_target(time=None, lsn=None, xid=None, name=None, immediate=True).settings() == {
        "recovery_target": "immediate"
    }


def test_the_newest_base_that_ended_before_the_target_is_chosen():
    at = lambda t: parse_target(time=t, lsn=None, xid=None, name=None, immediate=False)  # noqa: E731
    assert choose_base(BASES, at("2026-12-01T12:00:00Z"), "shop").backup_id == "b1"
    assert choose_base(BASES, at("2026-12-03T00:00:00Z"), "shop").backup_id == "b2"
    lsn = parse_target(time=None, lsn="0/5000000", xid=None, name=None, immediate=False)
    assert choose_base(BASES, lsn, "shop").backup_id == "b1"


def test_a_target_before_every_base_or_before_the_forced_base_is_refused():
    early = parse_target(time="2026-11-30T00:00:00Z", lsn=None, xid=None, name=None, immediate=False)
    with pytest.raises(RestoreRefused, match="before the oldest base backup"):
        choose_base(BASES, early, "shop")
    mid = parse_target(time="2026-12-01T12:00:00Z", lsn=None, xid=None, name=None, immediate=False)
    with pytest.raises(RestoreRefused, match="would ignore the target"):
        choose_base(BASES, mid, "shop", "b2")
    with pytest.raises(NotFound):
        choose_base([], mid, "shop")


def test_a_drill_run_stands_for_its_logical_date_only_when_that_is_older_than_the_rpo_objective():
    from datetime import UTC, datetime, timedelta

    from restorable.physical.drill import as_of_for_run

    now = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)
    objective = timedelta(minutes=5)
    backfilled = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
    assert as_of_for_run(backfilled, now, objective) == backfilled
    # Scheduled or manual, dated about now: the newest moment (a moment "before now" may not be archived yet).
    assert as_of_for_run(now - timedelta(seconds=30), now, objective) is None
    assert as_of_for_run(now - objective, now, objective) is None
    assert as_of_for_run(None, now, objective) is None
