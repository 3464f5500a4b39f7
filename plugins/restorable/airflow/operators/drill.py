"""The drill DAG's own tasks: pick the backup, record the evidence, drop the scratch, the verdict.

Restore and validation are ``restore.py``'s operators; every rule (which backup, which target,
what the evidence holds) is in ``restorable.commands.drill``.
"""

from __future__ import annotations

from typing import Any

from restorable.airflow.operators.base import RestorableOperator, run_info, run_time

#: The XCom key under which ``pick_backup`` leaves why it skipped the drill.
SKIPPED = "skipped"


class PickBackupOperator(RestorableOperator):
    """The newest verified backup at or before the run's logical date (so backfills re-drill the past)."""

    def __init__(self, *, verified_only: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.verified_only = verified_only

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from restorable.commands.drill import before_first_backup, pick_backup
        from restorable.exceptions import NotFound

        at = run_time(context)
        try:
            picked = pick_backup(
                self.services,
                self.database_id,
                scratch=self.scratch_name(context),
                at_or_before=at,
                verified_only=self.verified_only,
            )
        except NotFound:
            reason = before_first_backup(self.services, self.database_id, at)
            if reason is None:
                raise
            # The verdict task reads the reason, so the run ends skipped rather than "no evidence".
            context["ti"].xcom_push(key=SKIPPED, value=reason)
            raise AirflowSkipException(reason) from None
        self.resolved_backup_id = picked.manifest.backup_id
        return picked.summary()


class RecordDrillEvidenceOperator(RestorableOperator):
    """Append the drill's evidence beside the backup, pass or fail (runs with trigger_rule all_done)."""

    def __init__(
        self,
        *,
        pick_task_id: str = "pick_backup",
        restore_task_id: str = "restore_scratch",
        validate_task_id: str = "validate",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.pick_task_id = pick_task_id
        self.restore_task_id = restore_task_id
        self.validate_task_id = validate_task_id

    def execute(self, context: Any) -> dict[str, Any] | None:
        from restorable.commands.drill import record_evidence
        from restorable.metrics import drill_figures

        ti = context["ti"]
        picked = ti.xcom_pull(task_ids=self.pick_task_id)
        if not picked:
            self.log.warning("no backup was picked; nothing to record database=%s", self.database_id)
            return None
        self.resolved_backup_id = picked["backup_id"]
        validation = ti.xcom_pull(task_ids=self.validate_task_id, key="summary")
        # The drill's verdict and figures are reported here, where its evidence is complete.
        with self.observed(context, "drill") as run:
            evidence = record_evidence(
                self.services,
                self.database_id,
                picked,
                ti.xcom_pull(task_ids=self.restore_task_id, key="summary"),
                validation,
                run=run_info(context),
                restore_step=self.restore_task_id,
                validate_step=self.validate_task_id,
            )
            run.figures.update(drill_figures(evidence, validation))
            run.failed = not evidence["ok"]
        return evidence


class DropScratchDatabaseOperator(RestorableOperator):
    """Drop the drill's scratch database, whatever happened before (trigger_rule all_done)."""

    ui_color = "#eeeeee"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.commands.drill import drop_scratch

        return drop_scratch(self.services, self.database_id, self.scratch_name(context))


class DrillVerdictOperator(RestorableOperator):
    """Fail the run when the drill did not prove the backup (the scratch drop alone would pass it)."""

    def __init__(
        self, *, evidence_task_id: str = "record_evidence", pick_task_id: str = "pick_backup", **kwargs: Any
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.evidence_task_id = evidence_task_id
        self.pick_task_id = pick_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from restorable.commands.drill import drill_verdict

        ti = context["ti"]
        evidence = ti.xcom_pull(task_ids=self.evidence_task_id)
        skipped = ti.xcom_pull(task_ids=self.pick_task_id, key=SKIPPED)
        if not evidence and skipped:
            raise AirflowSkipException(skipped)
        return drill_verdict(evidence, self.database_id)
