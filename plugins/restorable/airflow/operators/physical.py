"""Point-in-time recovery's operators: the base backup chain's preflight and backup, and the WAL monitor.

Verification and the Asset event reuse ``backup.py``'s operators (a base backup is a backup with
a manifest like any other). The rules are in the core: ``commands.physical_preflight``,
``commands.base_backup`` and ``commands.wal_monitor``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.branch import BranchMixIn

from restorable.airflow.operators.backup import deterministic_backup_id
from restorable.airflow.operators.base import RestorableOperator, as_bool, run_info


class PhysicalPreflightOperator(RestorableOperator):
    """Server settings (through the replication connection), the WAL archiver alive and current, the bucket."""

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.commands.physical_preflight import preflight_base_backup

        result = preflight_base_backup(self.services, self.database_id)
        self.log.info(
            "physical preflight ok database=%s server=%s timeline=%s archiver_pid=%s queue_files=%s",
            self.database_id,
            result["server"],
            result["timeline"],
            result["archiver"]["pid"],
            result["archiver"]["queue_files"],
        )
        return result


class BaseBackupOperator(RestorableOperator):
    """Take one base backup (``pg_basebackup``), wait for its WAL in the bucket, commit it."""

    ui_color = "#cfe8d5"

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.commands.base_backup import run_base_backup
        from restorable.metrics import backup_figures

        # Same DAG run, same id: a retry finds its committed base backup instead of taking another.
        backup_id = deterministic_backup_id(context)
        self.resolved_backup_id = backup_id
        with self.observed(context, "base_backup") as run:
            manifest = run_base_backup(self.services, self.database_id, backup_id=backup_id, run=run_info(context))
            run.figures.update(backup_figures(manifest))
        summary = manifest.summary()
        self.log.info(
            "base backup committed database=%s backup=%s stored_bytes=%s stop_lsn=%s seconds=%s",
            self.database_id,
            backup_id,
            summary["stored_bytes"],
            summary.get("stop_lsn"),
            summary["seconds"],
        )
        return summary


class WalMonitorOperator(RestorableOperator):
    """Measure the WAL archive against ``physical.monitor``; alert once per breach; record the figures.

    A new breach is alerted here, through the same webhook as failures, with the figure, the
    objective and the runbook. While any breach is open the task fails with
    ``ObjectiveBreached`` (the run is red in the grid) but sends no failure alert: the breach
    was alerted when it opened. A failure to measure at all (the bucket unreachable) fails the
    task like any other, and alerts.
    """

    ui_color = "#fdf2d0"

    def __init__(self, *, webhook_conn_id: str | None, runbook_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.webhook_conn_id = webhook_conn_id
        self.runbook_url = runbook_url

    #: What the breach error names (the binlog monitor subclasses this operator).
    monitored = "WAL"

    def _monitor(self) -> tuple[Any, Any]:
        """(evaluate, record) of the monitor's core (``commands.wal_monitor``)."""
        from restorable.commands.wal_monitor import evaluate, record

        return evaluate, record

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.airflow.notifiers import breach_payload, post_alert
        from restorable.exceptions import ObjectiveBreached

        evaluate, record = self._monitor()
        ti = context["ti"]
        report = evaluate(self.services, self.database_id)
        delivered = {}
        for breach in report.to_alert:
            payload = breach_payload(
                self.database_id, asdict(breach), dag_id=ti.dag_id, run_id=ti.run_id, runbook_url=self.runbook_url
            )
            delivered[breach.check] = post_alert(self.webhook_conn_id, payload)
            self.log.warning("breach alerted=%s %s", delivered[breach.check], payload["text"])
        key = record(self.services, report, delivered, run=run_info(context))
        summary = {**report.summary(), "state_key": key}
        for check in report.cleared:
            self.log.info("breach cleared database=%s check=%s", self.database_id, check)
        if report.breaches:
            ti.xcom_push(key="figures", value=summary)
            checks = ", ".join(f"{b.check} ({b.measured}, objective {b.objective})" for b in report.breaches)
            # Every open breach alerted (now or when it opened): the failure itself sends nothing more.
            alerted = all(
                delivered.get(b.check) or (report.previous.get(b.check) or {}).get("alerted") for b in report.breaches
            )
            raise ObjectiveBreached(
                f"{self.monitored} monitor objectives breached: {checks}",
                database=self.database_id,
                alerted=alerted,
                hint="Alerted when each breach opened; follow the runbook in the alert",
            )
        self.log.info(
            "%s monitor ok database=%s rpo=%s queue_files=%s backup_age=%s",
            self.monitored,
            self.database_id,
            report.figures["rpo_seconds"],
            report.figures["queue_files"],
            report.figures.get("base_backup_age_seconds", report.figures.get("backup_age_seconds")),
        )
        return summary


class PitrDrillOperator(RestorableOperator):
    """Restore the base backup current at the run's date to a moment between two heartbeats, prove
    exactness, record the evidence (``physical.drill.run_pitr_drill``); fails on any mismatch."""

    template_fields = ("database_id", "target_time")
    ui_color = "#e3dcf5"

    def __init__(self, *, target_time: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_time = target_time

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.physical.drill import run_pitr_drill
        from restorable.physical.targets import parse_target

        wanted = None
        if self.target_time and str(self.target_time).strip() not in ("", "None"):
            wanted = parse_target(time=str(self.target_time), lsn=None, xid=None, name=None, immediate=False).time
        from restorable.metrics import pitr_drill_figures
        from restorable.physical.drill import as_of_for_run
        from restorable.repository.manifest import utcnow

        # A backfilled run (or one triggered for a past date) drills the base backup current at its
        # date; a run dated about now, scheduled or manual, the newest moment.
        physical = self.services.config.database(self.database_id).physical
        objective = physical.monitor.rpo_objective if physical else timedelta(minutes=5)
        as_of = None if wanted is not None else as_of_for_run(context.get("logical_date"), utcnow(), objective)

        with self.observed(context, "pitr_drill") as run:
            result = run_pitr_drill(
                self.services, self.database_id, identity=self.services.identity(), target_time=wanted, as_of=as_of
            )
            run.figures.update(pitr_drill_figures(result.figures, result.ok))
        self.log.info(
            "pitr drill passed database=%s base=%s target=%s rto_seconds=%s evidence=%s",
            self.database_id,
            result.base_backup,
            result.target,
            result.figures.get("rto_seconds"),
            result.evidence_key,
        )
        return result.to_dict()


def _pitr_request(op: Any) -> Any:
    """The point-in-time restore the rendered Params describe (core objects; refusals are ConfigError)."""
    from pathlib import Path

    from restorable.exceptions import ConfigError
    from restorable.physical.restore import PhysicalRestore
    from restorable.physical.targets import parse_target

    def given(value: Any) -> str | None:
        text = "" if value is None else str(value).strip()
        return None if text in ("", "None") else text

    target_dir = given(op.target_dir)
    if target_dir is None or not target_dir.startswith("/"):
        raise ConfigError(f"target_dir {op.target_dir!r} must be an absolute directory on the worker")
    target = parse_target(
        time=given(op.target_time),
        lsn=given(op.target_lsn),
        xid=None,
        name=given(op.restore_point),
        immediate=as_bool(op.immediate),
    )
    return PhysicalRestore(
        database_id=op.database_id,
        target=target,
        target_dir=Path(target_dir),
        base_id=given(op.base_backup),
        start=as_bool(op.start) or as_bool(op.promote),
        promote=as_bool(op.promote),
    )


class _PitrParams:
    template_fields = (
        "database_id",
        "target_time",
        "target_lsn",
        "restore_point",
        "immediate",
        "target_dir",
        "base_backup",
        "start",
        "promote",
    )

    def _keep(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        for name in self.template_fields[1:]:
            setattr(self, name, kwargs.pop(name, None))
        return kwargs


class PlanPitrRestoreOperator(_PitrParams, RestorableOperator, BranchMixIn):
    """Decide a point-in-time restore before it writes (base backup, archive reach, an empty
    directory); branch to the approval when the copy is to be promoted (a writable server that could
    be taken for production), straight to the restore when not."""

    inherits_from_skipmixin = True
    ui_color = "#f5d6d6"

    def __init__(self, *, approval_task_id: str, restore_task_id: str, **kwargs: Any) -> None:
        super().__init__(**self._keep(kwargs))
        self.approval_task_id = approval_task_id
        self.restore_task_id = restore_task_id

    def execute(self, context: Any) -> Any:
        from restorable.physical.restore import plan_restore_to_point

        request = _pitr_request(self)
        plan = plan_restore_to_point(self.services, request, identity=self.services.identity())
        context["ti"].xcom_push(key="plan", value=plan)
        return self.do_branch(context, self.approval_task_id if request.promote else self.restore_task_id)


class RestoreToPointOperator(_PitrParams, RestorableOperator):
    """Restore the chosen base backup into the directory and recover it to the target (``--start``)."""

    ui_color = "#f0e0c8"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**self._keep(kwargs))

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.physical.restore import restore_to_point

        report = restore_to_point(self.services, _pitr_request(self), identity=self.services.identity())
        recovery = report.get("recovery") or {}
        self.log.info(
            "point-in-time restore done database=%s base=%s target_dir=%s last_commit=%s port=%s",
            self.database_id,
            report["base_backup"],
            report["target_dir"],
            recovery.get("last_replayed_commit"),
            report["port"],
        )
        return report
