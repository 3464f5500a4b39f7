"""``monitor__<db>`` and ``pitr_drill__<db>`` for a MariaDB database with a ``binlog`` block: the
PostgreSQL DAGs' shape (``dag_factory.build_monitor_dag``/``build_pitr_drill_dag``) on the binlog core."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param

from restorable.airflow.operators.binlog import BinlogMonitorOperator, BinlogPitrDrillOperator
from restorable.config import DatabaseConfig, RestorableConfig


def build_binlog_dags(
    config: RestorableConfig, db: DatabaseConfig, *, config_path: str | None, args: dict[str, Any]
) -> list[DAG]:
    from restorable.airflow.dag_factory import START_DATE, _cron

    binlog = db.binlog
    monitor = binlog.monitor
    with DAG(
        dag_id=f"monitor__{db.id}",
        description=f"Measure {db.id}'s binlog archive (RPO, spool, gap, continuity, backup age); "
        "alert once per breach",
        schedule=_cron(monitor.schedule),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={**args, "retries": 0},
        tags=["restorable", "monitor", "pitr", db.engine, db.id],
        doc_md=f"Binlog monitor of **{db.id}**. Objectives: RPO ≤ `{monitor.rpo_objective}` (the newest archived "
        f"binlog event), at most `{monitor.max_queue_files}` closed files in the spool, the newest logical backup "
        f"younger than `{monitor.max_base_backup_age}`, no gap (purged before archived), no missing file or GTID. "
        f"State in the bucket (`<db>/monitor/binlog.json`). Runbook: `{config.alerts.runbook_url}/binlog-archive.md`.",
    ) as monitor_dag:
        BinlogMonitorOperator(
            task_id="monitor_binlog",
            database_id=db.id,
            config_path=config_path,
            webhook_conn_id=config.alerts.webhook_conn_id,
            runbook_url=config.alerts.runbook_url,
            execution_timeout=timedelta(minutes=4),
        )
    with DAG(
        dag_id=f"pitr_drill__{db.id}",
        description=f"Restore {db.id} to a second between two heartbeats and prove exactly those rows are there",
        schedule=_cron(binlog.drill_schedule) if binlog.drill_schedule else None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={**args, "retries": 0},  # a failed drill is a finding, not a glitch to retry
        params={
            "target_time": Param(
                None,
                type=["null", "string"],
                description="Drill around this moment (ISO 8601 with offset); empty: a random one",
            )
        },
        tags=["restorable", "pitr_drill", "pitr", db.engine, db.id],
        doc_md=f"Point-in-time drill of **{db.id}**: the newest logical backup restored into a scratch database "
        "on the drill server, then its binlog events replayed to the whole second of an archived heartbeat; "
        "the copy must hold exactly the heartbeats stamped before it. Evidence (RTO, RPO at drill, binlogs "
        f"replayed, the proof) beside the backup. Runbook: `{config.alerts.runbook_url}/pitr-drill-failed.md`.",
    ) as drill_dag:
        BinlogPitrDrillOperator(
            task_id="pitr_drill",
            database_id=db.id,
            config_path=config_path,
            target_time="{{ params.target_time }}",
            execution_timeout=timedelta(hours=6),
        )
    return [monitor_dag, drill_dag]
