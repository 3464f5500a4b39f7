"""Restore and validate: into a drill's scratch database, or into the target a manual run names
(planned first, and approved by a second person when it overwrites)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.operators.branch import BranchMixIn
from airflow.providers.standard.operators.hitl import ApprovalOperator

from restorable.airflow.operators.base import RestorableOperator, as_bool


class _TargetedOperator(RestorableOperator):
    """An operator writing or reading a restore target: the named one, else the drill's scratch."""

    def __init__(
        self, *, backup_id: str, target_conn_id: str | None = None, target_database: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.backup_id = backup_id
        self.target_conn_id = target_conn_id
        self.target_database = target_database

    def resolve_target(self, context: Any):
        from restorable.commands.restore_target import restore_target

        return restore_target(
            self.services,
            self.database_id,
            target_conn_id=self.target_conn_id,
            target_database=self.target_database,
            scratch=self.scratch_name(context),
        )


class RestoreOperator(_TargetedOperator):
    """Stream a backup into a database; check both hashes on the way.

    Drills restore into their own scratch database (``overwrite`` is implied: the name is the
    run's own) and never into their source. Manual restores name a target; a non-empty one is
    refused unless ``overwrite``.
    """

    template_fields: Sequence[str] = ("database_id", "backup_id", "target_conn_id", "target_database", "overwrite")
    ui_color = "#d6e4f5"

    def __init__(self, *, overwrite: Any = False, scratch: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.overwrite = overwrite
        self.scratch = scratch

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.commands.drill import restore_into

        backup_id = str(self.backup_id).strip() or "latest"
        self.resolved_backup_id = None if backup_id == "latest" else backup_id
        target, database = self.resolve_target(context)
        result = restore_into(
            self.services,
            self.database_id,
            backup_id,
            target=target,
            database=database,
            overwrite=True if self.scratch else as_bool(self.overwrite),
            source=self.services.resolve(self.database.conn_id) if self.scratch else None,
        )
        self.resolved_backup_id = result["backup_id"]
        context["ti"].xcom_push(key="summary", value=result)
        return result


class GreatExpectationsValidateOperator(_TargetedOperator):
    """Validate a restored database against its manifest with Great Expectations (+ schema objects).

    The summary goes to XCom (key ``summary``) before a mismatch fails the task, so the evidence
    task downstream can record what differed.
    """

    template_fields: Sequence[str] = ("database_id", "backup_id", "target_conn_id", "target_database")
    ui_color = "#f5e6cc"

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.commands.drill import validate_restore, validation_error

        backup_id = self.resolved_backup_id = str(self.backup_id).strip()
        target, database = self.resolve_target(context)
        result = validate_restore(self.services, self.database_id, backup_id, target=target, database=database)
        self.resolved_backup_id = result["backup_id"]
        context["ti"].xcom_push(key="summary", value=result)
        if not result["ok"]:
            raise validation_error(result, self.database_id)
        return result


class PlanRestoreOperator(_TargetedOperator, BranchMixIn):
    """Decide a manual restore before it writes: its target (never the source by default), the
    confirmation an overwrite of the source database needs; then branch to the approval when
    ``overwrite`` is set, straight to the restore when not."""

    template_fields: Sequence[str] = (
        "database_id",
        "target_conn_id",
        "target_database",
        "overwrite",
        "over_source_confirmed",
    )
    inherits_from_skipmixin = True
    ui_color = "#f5d6d6"

    def __init__(
        self, *, approval_task_id: str, restore_task_id: str, overwrite: Any, over_source_confirmed: Any, **kwargs: Any
    ) -> None:
        super().__init__(backup_id="", **kwargs)
        self.approval_task_id = approval_task_id
        self.restore_task_id = restore_task_id
        self.overwrite = overwrite
        self.over_source_confirmed = over_source_confirmed

    def execute(self, context: Any) -> Any:
        from restorable.commands.restore_target import plan_manual_restore

        plan = plan_manual_restore(
            self.services,
            self.database_id,
            target_conn_id=self.target_conn_id,
            target_database=self.target_database,
            overwrite=as_bool(self.overwrite),
            over_source_confirmed=as_bool(self.over_source_confirmed),
        )
        context["ti"].xcom_push(key="plan", value=plan.summary())
        return self.do_branch(context, self.approval_task_id if plan.needs_approval else self.restore_task_id)


class OverwriteApprovalOperator(ApprovalOperator):
    """A second person approves an overwrite in the Airflow UI: Reject, or no answer within
    ``response_timeout``, fails the run; so does an approval by the user who triggered it."""

    def __init__(self, *, database_id: str, **kwargs: Any) -> None:
        super().__init__(defaults=ApprovalOperator.REJECT, fail_on_reject=True, **kwargs)
        self.database_id = database_id

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from restorable.commands.restore_target import check_approval

        result = super().execute_complete(context, event)
        user = event.get("responded_by_user") or {}
        approver = user.get("name")
        triggered_by = getattr(context.get("dag_run"), "triggering_user_name", None)
        check_approval(triggered_by, approver, approver_id=user.get("id"), database_id=self.database_id)
        self.log.info("overwrite approved by %s (triggered by %s)", approver, triggered_by)
        return result
