"""The report's period and the scheduled runs in it; the ``report`` config block."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from restorable.config import parse_config
from restorable.exceptions import ConfigError
from restorable.report.period import period_of, previous_month, run_slot, scheduled_runs
from restorable.repository.layout import KeyKind, Layout

RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"


def test_a_date_alone_ends_after_its_day_and_a_month_has_its_daily_runs():
    november = period_of("2026-11-01", "2026-11-30")
    assert november.start == datetime(2026, 11, 1, tzinfo=UTC) and november.end == datetime(2026, 12, 1, tzinfo=UTC)
    assert len(scheduled_runs("0 2 * * *", november)) == 30
    assert len(scheduled_runs("0 3 * * 0", november)) == 5  # Sundays: 1, 8, 15, 22, 29
    assert len(scheduled_runs("@daily", november)) == 30
    assert scheduled_runs(None, november) == []


def test_a_run_at_the_period_start_counts_and_one_at_its_end_does_not():
    period = period_of("2026-11-02T00:00Z", "2026-11-02T03:00Z")
    runs = scheduled_runs("0 * * * *", period)
    assert [r.hour for r in runs] == [0, 1, 2]
    assert run_slot(runs, datetime(2026, 11, 2, 1, 59, tzinfo=UTC)).hour == 1
    assert run_slot(runs, datetime(2026, 11, 1, 23, 59, tzinfo=UTC)) is None


def test_previous_month_and_an_empty_period():
    december = previous_month(datetime(2027, 1, 1, 6, tzinfo=UTC))
    assert (december.start, december.end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(ConfigError, match="is empty"):
        period_of("2026-11-02", "2026-11-01")
    with pytest.raises(ConfigError, match="is not a date"):
        period_of("yesterday", "2026-11-01")


def test_reports_have_a_key_of_their_own_that_is_never_a_backup_object():
    layout = Layout("restorable")
    key = layout.report_key(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), "pdf")
    assert key == "restorable/_reports/20261101T000000Z--20261201T000000Z/audit-report.pdf"
    parsed = layout.parse(key)
    assert parsed.kind is KeyKind.REPORT and not parsed.is_backup_object


def _config(report):
    data = {
        "storage": {"conn_id": "s3", "bucket": "backups"},
        "encryption": {"recipients": [RECIPIENT]},
        "databases": [{"id": "shop", "engine": "postgres", "conn_id": "pg", "schedule": "0 2 * * *"}],
        **({"report": report} if report is not None else {}),
    }
    return parse_config(data, Path("restorable.yaml"), {})


def test_the_report_block_sets_the_objectives_and_names_a_bad_field():
    assert _config(None).report.backup_success_objective == 0.995
    config = _config({"backup_success": 99.9, "drill_pass": 100, "rto": "30m"}).report
    assert config.backup_success_objective == pytest.approx(0.999) and config.rto_objective.total_seconds() == 1800
    with pytest.raises(ConfigError, match=r"report\.backup_success: 120 is not a percentage"):
        _config({"backup_success": 120})
    with pytest.raises(ConfigError, match=r"report: unknown field\(s\) rpo"):
        _config({"rpo": "1h"})
