"""The audit evidence report operator (the monthly ``report__all`` DAG)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from restorable.airflow.operators.base import run_time


class AuditReportOperator(BaseOperator):
    """Write the report of the month before the run's logical date into the bucket, in every format.

    The XCom holds the headline figures and the keys written, never the report itself.
    """

    template_fields: Sequence[str] = ("formats",)

    def __init__(self, *, config_path: str | None = None, formats: Sequence[str] = ("pdf", "html", "json"), **kwargs):
        super().__init__(**kwargs)
        self.config_path = config_path
        self.formats = formats

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.airflow.connections import airflow_services
        from restorable.commands.report import build_report, store_report
        from restorable.report.period import previous_month
        from restorable.report.render import render

        services = airflow_services(self.config_path)
        period = previous_month(run_time(context))
        report = build_report(services, period.start, period.end)
        keys = {
            fmt: store_report(services, render(report, fmt), fmt, start=period.start, end=period.end)
            for fmt in self.formats
        }
        self.log.info("audit report of %s stored: %s", period.label, ", ".join(keys.values()))
        return {"period": report["period"], "totals": report["totals"], "keys": keys}
