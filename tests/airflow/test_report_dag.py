"""report__all with dag.test(): the month's audit report lands in the bucket in every format."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


def test_report_all_stores_the_month_before_its_logical_date(dags, restorable_env):
    from restorable.report.period import previous_month

    assert dags["backup__shop"].test().state == "success"
    (backup_id,) = restorable_env.catalog().backup_ids("shop")
    now = datetime.now(UTC)
    logical = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, 6, tzinfo=UTC)
    run = dags["report__all"].test(logical_date=logical)
    assert run.state == "success"
    period = previous_month(logical)
    assert period.start <= now < period.end
    store = restorable_env.services().store()
    layout = restorable_env.catalog().layout
    report = store.get_json(layout.report_key(period.start, period.end, "json"))
    (db,) = [d for d in report["databases"] if d["database_id"] == "shop"]
    assert [b["backup_id"] for b in db["backup_runs"]] == [backup_id] and db["backups"]["verified"] == 1
    assert store.get_bytes(layout.report_key(period.start, period.end, "pdf")).startswith(b"%PDF-")
    assert b"Backup audit evidence report" in store.get_bytes(layout.report_key(period.start, period.end, "html"))
