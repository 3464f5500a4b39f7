"""``report__all``: the audit evidence report of the month before, into the bucket (monthly).

A DAG of its own module (the DAG factory builds the per-database DAGs); it takes its schedule from
the config's ``report.schedule`` and the same retries and failure alert as the other DAGs.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from airflow.sdk import DAG

from restorable.airflow.dag_factory import START_DATE, _cron, default_args
from restorable.airflow.operators.report import AuditReportOperator
from restorable.config import RestorableConfig, load_config
from restorable.config_report import ReportConfig


def build_report_dag(config: RestorableConfig | str | Path | None = None) -> DAG:
    config_path = None if isinstance(config, RestorableConfig) or config is None else str(config)
    if not isinstance(config, RestorableConfig):
        config = load_config(config)
    report = config.report or ReportConfig()
    args = default_args(
        config,
        retries=int(os.environ.get("RESTORABLE_TASK_RETRIES", "2")),
        retry_delay=timedelta(seconds=float(os.environ.get("RESTORABLE_RETRY_DELAY_SECONDS", "120"))),
    )
    with DAG(
        dag_id="report__all",
        description="Audit evidence report of the month before: backups, drills, RTO/RPO, settings, failures",
        schedule=_cron(report.schedule),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=args,
        tags=["restorable", "report"],
        doc_md="Writes the audit evidence report (PDF, HTML, JSON) of the calendar month before the run's "
        "logical date under `_reports/` in the bucket. Backfill a month to report it again.",
    ) as dag:
        AuditReportOperator(task_id="write_report", config_path=config_path)
    return dag
