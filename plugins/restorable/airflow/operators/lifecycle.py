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
        from restorable.exceptions import StorageError
        from restorable.lifecycle import enforce, parse_duration, policy_from_config, scan_bucket

        services = self.services()
        config = services.config
        settings = dict(config.lifecycle or {})
        policies = {
            db.id: policy_from_config(db.retention, where=f"{config.path}: databases[{db.id}].retention")
            for db in config.databases.values()
            if db.retention is not None
        }
        store = services.store("lifecycle")
        dry_run = as_bool(self.dry_run)
        report = enforce(
            store,
            scan_bucket(store, config.storage.prefix),
            policies,
            run_time(context),
            dry_run=dry_run,
            orphan_min_age=parse_duration(
                str(settings.get("orphan_min_age", "1d")), where=f"{config.path}: lifecycle.orphan_min_age"
            ),
            purge_versions=bool(settings.get("purge_versions", False)),
        )
        summary = {
            "dry_run": dry_run,
            "counts": report.counts(),
            "bytes_deleted": report.to_dict()["bytes_deleted"],
            "deleted": [f"{o.database}/{o.backup_id}" for o in report.deleted][:50],
        }
        if not report.ok:
            errors = "; ".join(f"{o.database}/{o.backup_id}: {o.reason}" for o in report.errors[:10])
            context["ti"].xcom_push(key="summary", value=summary)
            raise StorageError(
                f"lifecycle finished with {len(report.errors)} error(s): {errors}",
                hint="See docs/runbooks/lifecycle.md",
            )
        return summary


class AuditBucketOperator(_LifecycleBase):
    """Check the bucket's versioning, Object Lock, encryption and lifecycle rules; fail on real drift."""

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.exceptions import StorageError
        from restorable.lifecycle import BucketExpectations, audit_bucket

        services = self.services()
        storage = services.config.storage
        store = services.store("lifecycle")
        drifts = audit_bucket(
            store, BucketExpectations(prefix=storage.prefix + "/" if storage.prefix else ""), fix=False
        )
        found = [d.to_dict() for d in drifts]
        real = [d for d in drifts if not d.unsupported]
        summary = {"bucket": storage.bucket, "drifts": found, "unsupported": len(drifts) - len(real)}
        if real:
            context["ti"].xcom_push(key="summary", value=summary)
            raise StorageError(
                f"bucket {storage.bucket} drifted from its expected settings: "
                + "; ".join(f"{d.setting} expected {d.expected}, found {d.found}" for d in real),
                hint="See docs/runbooks/lifecycle.md; `restorable lifecycle audit --fix` sets what can be set",
            )
        return summary
