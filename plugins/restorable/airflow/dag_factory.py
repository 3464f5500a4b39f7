"""Build every Restorable DAG from ``include/restorable.yaml``.

Per configured database: ``backup__<db>`` and ``restore_drill__<db>``; with ``physical.enabled``
also ``base_backup__<db>`` and ``monitor__<db>``; once: the manual ``restore_database``. Every
scheduled backup DAG carries a ``DeadlineAlert`` (``backup_deadline`` after its scheduled time).
Each database's settings reach its DAG by closure (plain ``DAG`` objects, not ``@dag``
functions, whose arguments would become DagParams). Parsing reads the YAML only: no
connection, no bucket, no GX import.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import (
    DAG,
    Asset,
    AssetOrTimeSchedule,
    AsyncCallback,
    CronTriggerTimetable,
    DeadlineAlert,
    DeadlineReference,
    Param,
)

from restorable.airflow.notifiers import RestorableWebhookNotifier, backup_deadline_missed
from restorable.airflow.operators import (
    AuditBucketOperator,
    BackupOperator,
    ConfigErrorOperator,
    DrillVerdictOperator,
    DropScratchDatabaseOperator,
    EnforceLifecycleOperator,
    GreatExpectationsValidateOperator,
    PickBackupOperator,
    PreflightOperator,
    PublishBackupOperator,
    RecordDrillEvidenceOperator,
    RestoreOperator,
    VerifyChecksumOperator,
)
from restorable.airflow.operators.copy import CopyBackupOperator
from restorable.airflow.operators.physical import (
    BaseBackupOperator,
    PhysicalPreflightOperator,
    PitrDrillOperator,
    PlanPitrRestoreOperator,
    RestoreToPointOperator,
    WalMonitorOperator,
)
from restorable.airflow.operators.restore import OverwriteApprovalOperator, PlanRestoreOperator
from restorable.airflow.retry import RETRY_POLICY
from restorable.config import BACKUP_EXECUTION_TIMEOUT, DatabaseConfig, RestorableConfig, load_config
from restorable.exceptions import ConfigError

START_DATE = datetime(2024, 1, 1, tzinfo=UTC)
OWNER = "data-platform"
DB_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
#: How long an overwrite waits for its approval before it is rejected.
APPROVAL_TIMEOUT = timedelta(hours=4)
_APPROVAL_BODY = (
    "**{{ dag_run.triggering_user_name }}** asks to **replace** database `{{ params.target_database }}` on "
    "`{{ ti.xcom_pull(task_ids='plan_restore', key='plan')['target'] }}` with backup "
    "`{{ params.backup_id }}` of `{{ params.database }}`. What it holds now is lost.\n\n"
    "{% if ti.xcom_pull(task_ids='plan_restore', key='plan')['over_source'] %}"
    "**This is the backup's own source database (production).**\n\n{% endif %}"
    "Approve only if you are not the person who asked; no answer within the timeout rejects."
)


def backup_asset(database_id: str) -> Asset:
    """The Asset a committed, checksum-verified backup of ``database_id`` updates."""
    uri = f"restorable://{database_id}/backups"
    return Asset(name=uri, uri=uri, group="restorable")


def base_backup_asset(database_id: str) -> Asset:
    """The Asset a committed, checksum-verified base backup of ``database_id`` updates."""
    uri = f"restorable://{database_id}/base_backups"
    return Asset(name=uri, uri=uri, group="restorable")


def backup_deadline(config: RestorableConfig, db: DatabaseConfig) -> DeadlineAlert:
    """A run not finished ``backup_deadline`` after its scheduled time (logical date) alerts.

    The callback runs in the triggerer (``AsyncCallback``) with the run's context; a run that
    finished in time has its deadline pruned by Airflow and never calls it.
    """
    from restorable.lifecycle.policy import format_duration

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=db.backup_deadline,
        callback=AsyncCallback(
            backup_deadline_missed,
            kwargs={
                "database_id": db.id,
                "allowed": format_duration(db.backup_deadline),
                "webhook_conn_id": config.alerts.webhook_conn_id,
                "runbook_url": config.alerts.runbook_url,
            },
        ),
    )


def source_pool(db: DatabaseConfig) -> str:
    """One pool per source server: the config's ``pool``, else derived from the connection id."""
    return db.pool or f"restorable_{db.conn_id}"


def _cron(expr: str) -> CronTriggerTimetable:
    return CronTriggerTimetable(expr, timezone="UTC")


def default_args(config: RestorableConfig, *, retries: int, retry_delay: timedelta) -> dict[str, Any]:
    return {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": retry_delay,
        # A multiplier in Airflow 3.3: 2.0 doubles the wait after every failed try.
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(hours=1),
        # Permanent errors (checksum mismatch, bad config, refused credentials) fail at once.
        "retry_policy": RETRY_POLICY,
        "on_failure_callback": RestorableWebhookNotifier(
            config.alerts.webhook_conn_id, runbook_url=config.alerts.runbook_url
        ),
    }


def build_backup_dag(
    config: RestorableConfig, db: DatabaseConfig, *, config_path: str | None, args: dict[str, Any]
) -> DAG:
    common = {"database_id": db.id, "config_path": config_path}
    with DAG(
        dag_id=f"backup__{db.id}",
        description=f"Back up {db.id} ({db.engine}) to the bucket, re-read its checksum, publish",
        schedule=_cron(db.schedule) if db.schedule else None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=args,
        deadline=backup_deadline(config, db) if db.schedule else None,
        tags=["restorable", "backup", db.engine, db.id],
        doc_md=f"Backup chain of **{db.id}**: preflight → backup → verify checksum → Asset "
        f"`{backup_asset(db.id).name}`. Runbook: `{config.alerts.runbook_url}/backup-failed.md`.",
    ) as dag:
        pool = source_pool(db)
        preflight = PreflightOperator(task_id="preflight", pool=pool, **common)
        backup = BackupOperator(task_id="backup", pool=pool, execution_timeout=BACKUP_EXECUTION_TIMEOUT, **common)
        backup_id = "{{ ti.xcom_pull(task_ids='backup')['backup_id'] }}"
        verify = VerifyChecksumOperator(task_id="verify_checksum", backup_id=backup_id, **common)
        publish = PublishBackupOperator(task_id="publish", asset=backup_asset(db.id), **common)
        preflight >> backup >> verify >> publish
        # Beside publish, not before it: a region that is down delays no drill; each copy retries alone.
        for copy in config.storage.copies:
            verify >> CopyBackupOperator(
                task_id=f"copy__{copy.name}", copy_name=copy.name, backup_id=backup_id, **common
            )
    return dag


def build_base_backup_dag(
    config: RestorableConfig, db: DatabaseConfig, *, config_path: str | None, args: dict[str, Any]
) -> DAG:
    common = {"database_id": db.id, "config_path": config_path}
    physical = db.physical
    assert physical is not None
    with DAG(
        dag_id=f"base_backup__{db.id}",
        description=f"Physical base backup of {db.id} for point-in-time recovery, checksum re-read, publish",
        schedule=_cron(physical.schedule) if physical.schedule else None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=args,
        deadline=backup_deadline(config, db) if physical.schedule else None,
        tags=["restorable", "base_backup", "pitr", db.engine, db.id],
        doc_md=f"Base backup chain of **{db.id}**: preflight (replication connection, wal_level, "
        "archive_mode, the WAL archiver running and current) → `pg_basebackup` (committed once its WAL "
        f"is in the bucket) → verify checksum → Asset `{base_backup_asset(db.id).name}`. "
        f"Runbook: `{config.alerts.runbook_url}/base-backup-failed.md`.",
    ) as dag:
        pool = source_pool(db)
        preflight = PhysicalPreflightOperator(task_id="physical_preflight", pool=pool, **common)
        backup = BaseBackupOperator(
            task_id="base_backup", pool=pool, execution_timeout=BACKUP_EXECUTION_TIMEOUT, **common
        )
        verify = VerifyChecksumOperator(
            task_id="verify_checksum", backup_id="{{ ti.xcom_pull(task_ids='base_backup')['backup_id'] }}", **common
        )
        publish = PublishBackupOperator(
            task_id="publish", asset=base_backup_asset(db.id), backup_task_id="base_backup", **common
        )
        preflight >> backup >> verify >> publish
    return dag


def build_monitor_dag(
    config: RestorableConfig, db: DatabaseConfig, *, config_path: str | None, args: dict[str, Any]
) -> DAG:
    physical = db.physical
    assert physical is not None
    monitor = physical.monitor
    with DAG(
        dag_id=f"monitor__{db.id}",
        description=f"Measure {db.id}'s WAL archive (RPO, queue, continuity, timeline, base backup age); "
        "alert once per breach",
        schedule=_cron(monitor.schedule),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        # The next run is minutes away: a retry would only measure the same thing again.
        default_args={**args, "retries": 0},
        tags=["restorable", "monitor", "pitr", db.engine, db.id],
        doc_md=f"WAL monitor of **{db.id}**. Objectives: RPO ≤ `{monitor.rpo_objective}`, at most "
        f"`{monitor.max_queue_files}` files in the spool, base backup younger than "
        f"`{monitor.max_base_backup_age}`, no gap, the server's timeline. A breach alerts once when it "
        "opens (runs stay failed while it is open) and again only after it cleared. The figures are in "
        f"XCom and in the bucket (`<db>/monitor/wal.json`). Runbook: `{config.alerts.runbook_url}/rpo.md`.",
    ) as dag:
        WalMonitorOperator(
            task_id="monitor_wal",
            database_id=db.id,
            config_path=config_path,
            webhook_conn_id=config.alerts.webhook_conn_id,
            runbook_url=config.alerts.runbook_url,
            execution_timeout=timedelta(minutes=4),
        )
    return dag


def build_pitr_drill_dag(
    config: RestorableConfig, db: DatabaseConfig, *, config_path: str | None, args: dict[str, Any]
) -> DAG:
    physical = db.physical
    assert physical is not None
    with DAG(
        dag_id=f"pitr_drill__{db.id}",
        description=f"Restore {db.id} to a moment between two heartbeats and prove exactly those rows are there",
        schedule=_cron(physical.drill_schedule) if physical.drill_schedule else None,
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
        doc_md=f"Point-in-time drill of **{db.id}**: the base backup current at the run's date, restored to a "
        "moment midway between two archived heartbeats into a throwaway server (archive_mode=off, the bucket "
        "read with the restore role); the copy must hold exactly the heartbeats up to that moment. Evidence "
        f"(RTO, RPO at drill, WAL replayed, the proof) beside the base backup. Runbook: "
        f"`{config.alerts.runbook_url}/pitr-drill-failed.md`.",
    ) as dag:
        PitrDrillOperator(
            task_id="pitr_drill",
            database_id=db.id,
            config_path=config_path,
            target_time="{{ params.target_time }}",
            execution_timeout=timedelta(hours=6),
        )
    return dag


def build_pitr_restore_dag(config: RestorableConfig, *, config_path: str | None, args: dict[str, Any]) -> DAG | None:
    """The manual point-in-time restore (``restorable restore DB --target-dir``) from the UI."""
    ids = sorted(db.id for db in config.databases.values() if db.physical is not None and db.physical.enabled)
    if not ids:
        return None
    text = {"type": ["null", "string"]}
    params = {
        "database": Param(ids[0], type="string", enum=ids, title="Database"),
        "target_time": Param(
            None, **text, title="Target time", description="ISO 8601 with an offset, e.g. 2026-12-03T14:05:00Z"
        ),
        "target_lsn": Param(None, **text, title="Target LSN", description="e.g. 0/3000148 (instead of a time)"),
        "restore_point": Param(None, **text, title="Restore point", description="a pg_create_restore_point name"),
        "immediate": Param(False, type="boolean", title="Only to the base backup's end"),
        "target_dir": Param(
            "/var/lib/postgresql/restore",
            type="string",
            pattern="^/",
            title="Target directory",
            description="New or empty directory on the worker (never written over)",
        ),
        "base_backup": Param(
            None, **text, title="Base backup id", description="blank: the newest that ended before the target"
        ),
        "start": Param(True, type="boolean", title="Start it and wait for the target (paused there)"),
        "promote": Param(
            False,
            type="boolean",
            title="Promote at the target",
            description="End recovery: a writable server (a second person approves it in the UI)",
        ),
    }
    common = {"database_id": "{{ params.database }}", "config_path": config_path} | {
        name: "{{ params." + name + " }}"
        for name in (
            "target_time",
            "target_lsn",
            "restore_point",
            "immediate",
            "target_dir",
            "base_backup",
            "start",
            "promote",
        )
    }
    with DAG(
        dag_id="restore_to_point",
        description="Restore a database's cluster to a moment (time, LSN or restore point) into a directory (manual)",
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={**args, "retries": 0},
        params=params,
        tags=["restorable", "restore", "pitr", "manual"],
        doc_md="Manual point-in-time restore: the newest base backup that ended before the target, its WAL from "
        "the bucket, recovery paused at the target on a free port of the worker (127.0.0.1). A directory that is "
        "not empty is refused; promoting the copy waits for a second person's approval. "
        f"Runbook: `{config.alerts.runbook_url}/restore.md`.",
    ) as dag:
        plan = PlanPitrRestoreOperator(
            task_id="plan_restore", approval_task_id="approve_promotion", restore_task_id="restore_to_point", **common
        )
        approve = OverwriteApprovalOperator(
            task_id="approve_promotion",
            database_id="{{ params.database }}",
            subject="Approve promoting a point-in-time copy of {{ params.database }}",
            body="**{{ dag_run.triggering_user_name }}** asks to restore `{{ params.database }}` into "
            "`{{ params.target_dir }}` and **promote** it (a writable server). Approve only if you are not the "
            "person who asked; no answer within the timeout rejects.",
            response_timeout=APPROVAL_TIMEOUT,
        )
        restored = RestoreToPointOperator(
            task_id="restore_to_point",
            trigger_rule="none_failed_min_one_success",
            execution_timeout=timedelta(hours=12),
            **common,
        )
        plan >> [approve, restored]
        approve >> restored
    return dag


def build_drill_dag(
    config: RestorableConfig, db: DatabaseConfig, *, config_path: str | None, args: dict[str, Any]
) -> DAG:
    common = {"database_id": db.id, "config_path": config_path}
    asset = backup_asset(db.id)
    if db.drill_on_backup and db.drill_schedule:
        schedule: Any = AssetOrTimeSchedule(timetable=_cron(db.drill_schedule), assets=[asset])
    elif db.drill_on_backup:
        schedule = [asset]
    else:
        schedule = _cron(db.drill_schedule) if db.drill_schedule else None
    picked = "{{ ti.xcom_pull(task_ids='pick_backup')['backup_id'] }}"
    with DAG(
        dag_id=f"restore_drill__{db.id}",
        description=f"Prove the newest verified backup of {db.id} restores: restore, validate, record",
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=args,
        tags=["restorable", "drill", db.engine, db.id],
        doc_md=f"Restore drill of **{db.id}**: the newest verified backup at or before the run's logical "
        f"date is restored into a scratch database on `{db.restore_target_conn_id}`, validated with Great "
        f"Expectations against its manifest, the evidence is written beside the backup, and the scratch "
        f"database is dropped whatever happened. Runbook: `{config.alerts.runbook_url}/drill-failed.md`.",
    ) as dag:
        pick = PickBackupOperator(task_id="pick_backup", **common)
        restore = RestoreOperator(task_id="restore_scratch", backup_id=picked, scratch=True, **common)
        validate = GreatExpectationsValidateOperator(task_id="validate", backup_id=picked, **common)
        evidence = RecordDrillEvidenceOperator(task_id="record_evidence", **common)
        drop = DropScratchDatabaseOperator(task_id="drop_scratch", **common)
        # The verdict is a consequence of a failure already alerted on: no second alert.
        verdict = DrillVerdictOperator(task_id="drill_verdict", on_failure_callback=None, **common)
        pick >> restore >> validate >> evidence >> drop >> verdict
    return dag


def build_restore_dag(config: RestorableConfig, *, config_path: str | None, args: dict[str, Any]) -> DAG:
    ids = sorted(config.databases)
    first = config.databases[ids[0]]
    params = {
        "database": Param(
            first.id,
            type="string",
            enum=ids,
            title="Database",
            description="Which configured database's backups to restore from",
        ),
        "backup_id": Param(
            "latest",
            type="string",
            title="Backup id",
            description='A backup id from the catalog (restorable list DB), or "latest"',
        ),
        # Never the source by default: blank is the chosen database's drill server.
        "target_conn_id": Param(
            "",
            type="string",
            title="Target connection id",
            description="Airflow connection of the server to restore into; blank: the database's "
            "restore_target_conn_id (its drill server), never its source",
        ),
        "target_database": Param(
            f"restored_{first.id}"[:63],
            type="string",
            pattern=DB_NAME_PATTERN,
            title="Target database",
            description="Database to create (or, with overwrite, to replace)",
        ),
        "overwrite": Param(
            False,
            type="boolean",
            title="Overwrite",
            description="Replace the target database if it is not empty (a second person approves it in the UI)",
        ),
        "i_am_restoring_over_the_source": Param(
            False,
            type="boolean",
            title="I am restoring over the source",
            description="Required, with overwrite, when the target is the backup's own source database",
        ),
    }
    common = {
        "database_id": "{{ params.database }}",
        "config_path": config_path,
        "backup_id": "{{ params.backup_id }}",
        "target_conn_id": "{{ params.target_conn_id }}",
        "target_database": "{{ params.target_database }}",
    }
    with DAG(
        dag_id="restore_database",
        description="Restore a backup into a database of your choice (manual; refuses to overwrite by default)",
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={**args, "retries": 0},
        params=params,
        tags=["restorable", "restore", "manual"],
        doc_md="Manual restore. Trigger with a config: database, backup id (or `latest`), target "
        "connection (blank: the database's drill server), target database, overwrite. A non-empty target is "
        "refused unless overwrite is set; an overwrite waits for a second person's approval in the UI "
        "(Required Actions), and replacing the backup's own source database also needs "
        "i_am_restoring_over_the_source. "
        f"Runbook: `{config.alerts.runbook_url}/restore.md`.",
    ) as dag:
        plan = PlanRestoreOperator(
            task_id="plan_restore",
            approval_task_id="approve_overwrite",
            restore_task_id="restore",
            overwrite="{{ params.overwrite }}",
            over_source_confirmed="{{ params.i_am_restoring_over_the_source }}",
            **{k: v for k, v in common.items() if k != "backup_id"},
        )
        approve = OverwriteApprovalOperator(
            task_id="approve_overwrite",
            database_id="{{ params.database }}",
            subject="Approve overwriting {{ params.target_database }} with a backup of {{ params.database }}",
            body=_APPROVAL_BODY,
            response_timeout=APPROVAL_TIMEOUT,
        )
        # Runs after the approval, or straight after the plan when nothing is overwritten.
        restored = RestoreOperator(
            task_id="restore",
            overwrite="{{ params.overwrite }}",
            trigger_rule="none_failed_min_one_success",
            **common,
        )
        validate = GreatExpectationsValidateOperator(
            task_id="validate_restore",
            **{**common, "backup_id": "{{ ti.xcom_pull(task_ids='restore')['backup_id'] }}"},
        )
        plan >> [approve, restored]
        approve >> restored
        restored >> validate
    return dag


def build_dags(
    config: RestorableConfig | str | Path | None = None,
    *,
    retries: int | None = None,
    retry_delay: timedelta | None = None,
) -> dict[str, DAG]:
    """Every DAG of the config, by dag_id (put them in a DAG file's globals).

    Task retries default to 2, first after 2 minutes, doubling up to an hour;
    ``RESTORABLE_TASK_RETRIES`` and ``RESTORABLE_RETRY_DELAY_SECONDS`` override them (tests, demo).
    """
    if retries is None:
        retries = int(os.environ.get("RESTORABLE_TASK_RETRIES", "2"))
    if retry_delay is None:
        retry_delay = timedelta(seconds=float(os.environ.get("RESTORABLE_RETRY_DELAY_SECONDS", "120")))
    config_path = None if isinstance(config, RestorableConfig) or config is None else str(config)
    if not isinstance(config, RestorableConfig):
        config = load_config(config)
    args = default_args(config, retries=retries, retry_delay=retry_delay)
    dags: dict[str, DAG] = {}
    for db in config.databases.values():
        for dag in (
            build_backup_dag(config, db, config_path=config_path, args=args),
            build_drill_dag(config, db, config_path=config_path, args=args),
        ):
            dags[dag.dag_id] = dag
        if db.physical is not None and db.physical.enabled:
            for dag in (
                build_base_backup_dag(config, db, config_path=config_path, args=args),
                build_monitor_dag(config, db, config_path=config_path, args=args),
                build_pitr_drill_dag(config, db, config_path=config_path, args=args),
            ):
                dags[dag.dag_id] = dag
        if db.binlog is not None:
            from restorable.airflow.dag_factory_binlog import build_binlog_dags

            dags.update({d.dag_id: d for d in build_binlog_dags(config, db, config_path=config_path, args=args)})
    pitr_restore = build_pitr_restore_dag(config, config_path=config_path, args=args)
    if pitr_restore is not None:
        dags[pitr_restore.dag_id] = pitr_restore
    for key, error in config.broken.items():
        dag = build_broken_entry_dag(key, error, args=args)
        dags[dag.dag_id] = dag
    restore = build_restore_dag(config, config_path=config_path, args=args)
    dags[restore.dag_id] = restore
    return dags


def build_broken_entry_dag(key: str, error: ConfigError, *, args: dict[str, Any]) -> DAG:
    """``backup__<id>`` for an entry that did not validate: it fails at once, naming file, entry and field.

    It runs once when unpaused and alerts like any failure; the other databases' DAGs are built
    and run as usual. Fixing the entry turns it back into the real backup DAG at the next parse.
    """
    with DAG(
        dag_id=f"backup__{key}",
        description=f"Configuration error: {error.message}"[:200],
        schedule="@once",
        start_date=START_DATE,
        catchup=False,
        default_args={**args, "retries": 0},
        tags=["restorable", "config-error"],
        doc_md=f"This database entry does not validate, so it is not backed up:\n\n    {error}\n",
    ) as dag:
        ConfigErrorOperator(task_id="config_error", error=str(error), database_id=key)
    return dag


def build_lifecycle_dag(config: RestorableConfig | str | Path | None = None, *, schedule: str = "0 4 * * *") -> DAG:
    """``enforce_lifecycle``: apply retention per database, then audit the bucket (daily)."""
    config_path = None if isinstance(config, RestorableConfig) or config is None else str(config)
    if not isinstance(config, RestorableConfig):
        config = load_config(config)
    args = default_args(
        config,
        retries=int(os.environ.get("RESTORABLE_TASK_RETRIES", "2")),
        retry_delay=timedelta(seconds=float(os.environ.get("RESTORABLE_RETRY_DELAY_SECONDS", "120"))),
    )
    with DAG(
        dag_id="enforce_lifecycle",
        description="Keep / transition / delete backups per retention policy, then audit the bucket",
        schedule=_cron(str((config.lifecycle or {}).get("schedule", schedule))),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=args,
        params={
            "dry_run": Param(
                False, type="boolean", title="Dry run", description="Only report what would be deleted or moved"
            )
        },
        tags=["restorable", "lifecycle"],
        doc_md="Daily retention. Never deletes the newest verified backup of a database, nor anything "
        f"under Object Lock or legal hold. Runbook: `{config.alerts.runbook_url}/lifecycle.md`.",
    ) as dag:
        enforce = EnforceLifecycleOperator(task_id="enforce", config_path=config_path, dry_run="{{ params.dry_run }}")
        audit = AuditBucketOperator(task_id="audit_bucket", config_path=config_path, trigger_rule="all_done")
        enforce >> audit
    return dag
