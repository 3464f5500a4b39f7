"""Retention and bucket audit operators (the ``enforce_lifecycle`` DAG)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from restorable.airflow.operators.base import as_bool, run_time


class _LifecycleBase(BaseOperator):
    template_fields: Sequence[str] = ("dry_run",)

    def __init__(self, *, config_path: str | None = None, dry_run: Any = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path
        self.dry_run = dry_run

    def services(self):
        from restorable.airflow.connections import airflow_services

        return airflow_services(self.config_path)


class EnforceLifecycleOperator(_LifecycleBase):
    """Plan keep/transition/delete per database policy and apply it (or only report, ``dry_run``).

    The config's top-level ``lifecycle`` mapping may set ``orphan_min_age`` (default "1d") and
    ``purge_versions`` (default false). Databases without ``retention`` keep everything.
    """

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.copies.lifecycle import enforce_everywhere

        # The primary, then each copy of storage.copies by the same policies (copies/lifecycle.py).
        summary, failure = enforce_everywhere(self.services(), run_time(context), dry_run=as_bool(self.dry_run))
        if failure is not None:
            context["ti"].xcom_push(key="summary", value=summary)
            raise failure
        return summary


class AuditBucketOperator(_LifecycleBase):
    """Check the bucket's versioning, Object Lock, encryption and lifecycle rules; fail on real drift."""

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.commands.lifecycle import audit_failure, run_audit
        from restorable.copies.lifecycle import audit_copies

        services = self.services()
        drifts = run_audit(services, fix=False)
        bucket = services.config.storage.bucket
        real = [d for d in drifts if not d.unsupported]
        summary = {"bucket": bucket, "drifts": [d.to_dict() for d in drifts], "unsupported": len(drifts) - len(real)}
        failure = audit_failure(bucket, drifts)
        if services.config.storage.copies:  # each destination's bucket is held to the same settings
            summary["copies"], failures = audit_copies(services)
            failure = failure or (failures[0] if failures else None)
        if failure is not None:
            context["ti"].xcom_push(key="summary", value=summary)
            raise failure
        return summary
