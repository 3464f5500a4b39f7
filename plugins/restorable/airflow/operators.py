"""Thin operators over the Restorable core.

Each operator turns Airflow connections into core settings (``airflow_services``), calls one
core function, and pushes small results to XCom: ids, sizes, hashes, timings, never a secret
and never a schema. Heavy imports (boto3, GX, engines) happen inside ``execute`` so parsing
the DAG file stays cheap.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from airflow.sdk import BaseOperator

SCRATCH_PREFIX = "drill_"


# --- helpers shared by operators ---------------------------------------------------------------


def run_info(context: Any) -> dict[str, Any]:
    """The Airflow run doing the work, as recorded in manifests and evidence."""
    from restorable.repository.manifest import iso

    ti = context["ti"]
    logical = context.get("logical_date")
    dag_run = context.get("dag_run")
    run_after = getattr(dag_run, "run_after", None)
    return {
        "by": "airflow",
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "logical_date": iso(logical) if logical else None,
        "run_after": iso(run_after) if run_after else None,
        "try_number": ti.try_number,
        "host": socket.gethostname(),
    }


def run_time(context: Any) -> datetime:
    """The run's point in time: its logical date, else (asset-triggered, manual) its run_after."""
    logical = context.get("logical_date")
    if logical:
        return logical
    dag_run = context.get("dag_run")
    return getattr(dag_run, "run_after", None) or datetime.now().astimezone()


def deterministic_backup_id(context: Any) -> str:
    """Same DAG run, same id: a retried run finds its own committed backup instead of making another."""
    from restorable.repository.manifest import new_backup_id

    ti = context["ti"]
    return new_backup_id(run_time(context), f"{ti.dag_id}/{ti.run_id}")


def scratch_database_name(database_id: str, dag_id: str, run_id: str) -> str:
    """``drill_<db>_<8 hex of the run>``: unique per run, the same for every task of the run."""
    digest = hashlib.sha256(f"{dag_id}/{run_id}".encode()).hexdigest()[:8]
    return f"{SCRATCH_PREFIX}{database_id[:40]}_{digest}"


def targets_source(source: Any, target: Any, scratch: str) -> bool:
    """True when the drill target resolves to the source's host:port:database (or the scratch name is it)."""
    same_server = (str(target.host or "").lower(), target.port) == (str(source.host or "").lower(), source.port)
    return same_server and (target.schema == source.schema or scratch == source.schema)


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in ("", "None"))


class RestorableOperator(BaseOperator):
    """Base: one configured database, core services backed by Airflow connections."""

    template_fields: Sequence[str] = ("database_id",)
    ui_color = "#e8f4ea"

    def __init__(self, *, database_id: str, config_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.database_id = database_id
        self.config_path = config_path
        self._services = None

    @property
    def services(self):
        if self._services is None:
            from restorable.airflow.connections import airflow_services

            self._services = airflow_services(self.config_path)
        return self._services

    @property
    def database(self):
        return self.services.config.database(self.database_id)

    def scratch_name(self, context: Any) -> str:
        ti = context["ti"]
        return scratch_database_name(self.database_id, ti.dag_id, ti.run_id)


# --- backup chain ------------------------------------------------------------------------------


class PreflightOperator(RestorableOperator):
    """Source reachable with working tools, bucket reachable: fail early, before any dump starts."""

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.engines import engine_for

        services = self.services
        db = self.database
        started = time.monotonic()
        source = services.resolve(db.conn_id)
        tools = engine_for(db.engine).preflight(source)
        store = services.store("backup")
        if hasattr(store, "head_bucket"):
            store.head_bucket()
        else:
            next(iter(store.list_objects(services.catalog("backup").database_prefix(db.id))), None)
        result = {
            "database_id": db.id,
            "source": source.describe(),
            "bucket": services.config.storage.bucket,
            "tools": tools,
            "seconds": round(time.monotonic() - started, 3),
        }
        self.log.info("preflight ok database=%s source=%s tools=%s", db.id, result["source"], tools)
        return result


class BackupOperator(RestorableOperator):
    """Capture, compress, encrypt and upload one backup; commit it with its manifest."""

    ui_color = "#cfe8d5"

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.commands.backup import run_backup

        backup_id = deterministic_backup_id(context)
        self.resolved_backup_id = backup_id
        manifest = run_backup(self.services, self.database_id, backup_id=backup_id, run=run_info(context))
        summary = manifest.summary()
        self.log.info(
            "backup committed database=%s backup=%s plain_bytes=%s stored_bytes=%s seconds=%s",
            self.database_id,
            backup_id,
            summary["plain_bytes"],
            summary["stored_bytes"],
            summary["seconds"],
        )
        return summary


class VerifyChecksumOperator(RestorableOperator):
    """Re-read the stored object and compare its sha256 with the manifest (recorded either way)."""

    template_fields: Sequence[str] = ("database_id", "backup_id")

    def __init__(self, *, backup_id: str, deep: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backup_id = backup_id
        self.deep = deep

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.commands.verify import verify_backup

        self.resolved_backup_id = self.backup_id
        result = verify_backup(self.services, self.database_id, self.backup_id, deep=self.deep)
        return {
            k: result.get(k)
            for k in ("backup_id", "kind", "ok", "found_stored_sha256", "stored_bytes", "seconds", "record_key")
        }


class PublishBackupOperator(RestorableOperator):
    """Emit the database's backup Asset event with the manifest summary in its extra."""

    template_fields: Sequence[str] = ("database_id", "backup_task_id")

    def __init__(self, *, asset: Any, backup_task_id: str = "backup", **kwargs: Any) -> None:
        super().__init__(outlets=[asset], **kwargs)
        self.asset = asset
        self.backup_task_id = backup_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        summary = context["ti"].xcom_pull(task_ids=self.backup_task_id) or {}
        self.resolved_backup_id = summary.get("backup_id")
        extra = {**summary, "verified": True}
        context["outlet_events"][self.asset].extra = extra
        self.log.info("asset event asset=%s backup=%s", self.asset.name, summary.get("backup_id"))
        return extra


# --- restores and drills -----------------------------------------------------------------------


class PickBackupOperator(RestorableOperator):
    """The newest verified backup at or before the run's logical date (so backfills re-drill the past)."""

    def __init__(self, *, verified_only: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.verified_only = verified_only

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.exceptions import ConfigError, RestoreRefused
        from restorable.repository.manifest import iso

        started = time.monotonic()
        services = self.services
        db = self.database
        if not db.restore_target_conn_id:
            raise ConfigError(
                f"database {db.id!r} has no restore_target_conn_id; a drill needs an isolated server",
                database=db.id,
                hint="Set restore_target_conn_id in the config to a connection on a scratch server",
            )
        source = services.resolve(db.conn_id)
        target = services.resolve(db.restore_target_conn_id)
        scratch = self.scratch_name(context)
        if targets_source(source, target, scratch):
            raise RestoreRefused(
                f"the drill target {target.describe()} is the source database {source.describe()}",
                database=db.id,
                hint="Point restore_target_conn_id at another server (or at least another database)",
            )
        when = run_time(context)
        entry = services.catalog("restore").pick(db.id, at_or_before=when, verified_only=self.verified_only)
        manifest = entry.manifest
        self.resolved_backup_id = manifest.backup_id
        result = {
            "backup_id": manifest.backup_id,
            "created_at": manifest.created_at,
            "at_or_before": iso(when),
            "stored_bytes": manifest.data.stored_bytes,
            "scratch_database": scratch,
            "target": target.describe(),
            "seconds": round(time.monotonic() - started, 3),
        }
        self.log.info("picked database=%s backup=%s at_or_before=%s", db.id, manifest.backup_id, iso(when))
        return result


class _TargetMixin:
    """Where a restore goes: an explicit connection and database, else the drill's scratch database."""

    def resolve_target(self, context: Any):
        conn_id = None if blank(self.target_conn_id) else self.target_conn_id
        conn_id = conn_id or self.database.restore_target_conn_id
        if not conn_id:
            from restorable.exceptions import ConfigError

            raise ConfigError(
                f"no target connection for database {self.database_id!r}",
                database=self.database_id,
                hint="Give target_conn_id",
            )
        database = None if blank(self.target_database) else str(self.target_database).strip()
        return self.services.resolve(conn_id), database or self.scratch_name(context)


class RestoreOperator(_TargetMixin, RestorableOperator):
    """Stream a backup into a database; check both hashes on the way.

    Drills restore into their own scratch database (``overwrite`` is implied: the name is the
    run's own). Manual restores name a target; a non-empty one is refused unless ``overwrite``.
    """

    template_fields: Sequence[str] = ("database_id", "backup_id", "target_conn_id", "target_database", "overwrite")
    ui_color = "#d6e4f5"

    def __init__(
        self,
        *,
        backup_id: str,
        target_conn_id: str | None = None,
        target_database: str | None = None,
        overwrite: Any = False,
        scratch: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.backup_id = backup_id
        self.target_conn_id = target_conn_id
        self.target_database = target_database
        self.overwrite = overwrite
        self.scratch = scratch

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.commands.restore import restore_stream
        from restorable.engines import engine_for
        from restorable.exceptions import RestorableError

        services = self.services
        catalog = services.catalog("restore")
        manifest = catalog.read_manifest(self.database_id, str(self.backup_id).strip() or "latest")
        self.resolved_backup_id = manifest.backup_id
        target, database = self.resolve_target(context)
        overwrite = True if self.scratch else as_bool(self.overwrite)
        engine = engine_for(manifest.engine)
        self.log.info(
            "restore starting database=%s backup=%s target=%s into=%s overwrite=%s",
            self.database_id,
            manifest.backup_id,
            target.describe(),
            database,
            overwrite,
        )
        started = time.monotonic()
        try:
            digests = restore_stream(
                engine,
                catalog.store,
                manifest,
                target,
                database,
                identity=services.identity(),
                overwrite=overwrite,
                jobs=self.database.restore_jobs,
            )
        except RestorableError as exc:
            exc.database, exc.backup_id = exc.database or self.database_id, exc.backup_id or manifest.backup_id
            raise
        seconds = round(time.monotonic() - started, 3)
        result = {
            "backup_id": manifest.backup_id,
            "target": target.describe(),
            "database": database,
            "overwrite": overwrite,
            "plain_bytes": digests.plain_bytes,
            "stored_sha256": digests.stored_sha256,
            "plain_sha256": digests.plain_sha256,
            "restore_seconds": seconds,
            "seconds": seconds,
        }
        context["ti"].xcom_push(key="summary", value=result)
        self.log.info(
            "restore finished database=%s backup=%s seconds=%s", self.database_id, manifest.backup_id, seconds
        )
        return result


class GreatExpectationsValidateOperator(_TargetMixin, RestorableOperator):
    """Validate a restored database against its manifest with Great Expectations (+ schema objects).

    The summary goes to XCom (key ``summary``) before a mismatch fails the task, so the evidence
    task downstream can record what differed.
    """

    template_fields: Sequence[str] = ("database_id", "backup_id", "target_conn_id", "target_database")
    ui_color = "#f5e6cc"

    def __init__(
        self, *, backup_id: str, target_conn_id: str | None = None, target_database: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.backup_id = backup_id
        self.target_conn_id = target_conn_id
        self.target_database = target_database

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.engines import engine_for
        from restorable.exceptions import ValidationFailed
        from restorable.validate.expectations import expectations_path
        from restorable.validate.gx import sqlalchemy_url, validate_restored

        services = self.services
        db = self.database
        manifest = services.catalog("restore").read_manifest(self.database_id, str(self.backup_id).strip())
        self.resolved_backup_id = manifest.backup_id
        target, database = self.resolve_target(context)
        conn = target.with_schema(database)
        started = time.monotonic()
        found = engine_for(manifest.engine).describe(conn)
        summary = validate_restored(
            sqlalchemy_url(conn),
            manifest.metadata,
            engine=manifest.engine,
            extra_expectations_path=expectations_path(db.id, db.expectations, services.config.path),
            found=found,
        )
        result = {
            **summary.to_dict(),
            "backup_id": manifest.backup_id,
            "database": database,
            "expected_rows": sum(manifest.metadata.row_counts.values()),
            "found_rows": sum(found.row_counts.values()),
            "found_tables": len(found.row_counts),
            "seconds": round(time.monotonic() - started, 3),
        }
        context["ti"].xcom_push(key="summary", value=result)
        if not summary.ok:
            diffs = summary.differences
            shown = "; ".join(diffs[:10]) + (f"; ... and {len(diffs) - 10} more" if len(diffs) > 10 else "")
            raise ValidationFailed(
                f"restored database {database!r} differs from the manifest in {len(diffs)} place(s): {shown}",
                differences=diffs,
                database=self.database_id,
                backup_id=manifest.backup_id,
                hint="Do not rely on this backup: see docs/runbooks/drill-failed.md",
            )
        self.log.info(
            "validation passed database=%s backup=%s tables=%s expectations=%s seconds=%s",
            self.database_id,
            manifest.backup_id,
            summary.tables,
            summary.expectations,
            result["seconds"],
        )
        return result


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
        from restorable.repository.evidence import drill_record, record_drill, summarize

        ti = context["ti"]
        picked = ti.xcom_pull(task_ids=self.pick_task_id)
        if not picked:
            self.log.warning("no backup was picked; nothing to record database=%s", self.database_id)
            return None
        self.resolved_backup_id = picked["backup_id"]
        restored = ti.xcom_pull(task_ids=self.restore_task_id, key="summary")
        validation = ti.xcom_pull(task_ids=self.validate_task_id, key="summary")
        failed_step = error = None
        if not restored:
            failed_step, error = self.restore_task_id, "the restore did not complete"
        elif not validation:
            failed_step, error = self.validate_task_id, "the validation did not complete"
        elif not validation.get("ok"):
            failed_step, error = self.validate_task_id, "; ".join(validation.get("differences", [])[:10])
        catalog = self.services.catalog("restore")
        manifest = catalog.read_manifest(self.database_id, picked["backup_id"])
        restore_info = {**(restored or {}), **{k: (validation or {}).get(k) for k in ("found_rows", "found_tables")}}
        record = drill_record(
            manifest,
            restore=restore_info if restored else None,
            validation={k: v for k, v in (validation or {}).items() if k not in ("backup_id", "database")} or None,
            phases={
                "pick": picked.get("seconds"),
                "restore": (restored or {}).get("seconds"),
                "validate": (validation or {}).get("seconds"),
            },
            run=run_info(context),
            failed_step=failed_step,
            error=error,
        )
        # Evidence is written with the backup writer's connection (put, no delete); reading used the reader's.
        key = record_drill(self.services.catalog("backup"), manifest, record)
        summary = summarize(record, key)
        self.log.info(
            "drill evidence recorded database=%s backup=%s ok=%s key=%s",
            self.database_id,
            manifest.backup_id,
            record["ok"],
            key,
        )
        return summary


class DropScratchDatabaseOperator(RestorableOperator):
    """Drop the drill's scratch database, whatever happened before (trigger_rule all_done)."""

    ui_color = "#eeeeee"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.engines import engine_for

        db = self.database
        if not db.restore_target_conn_id:
            return {"dropped": None}
        target = self.services.resolve(db.restore_target_conn_id)
        scratch = self.scratch_name(context)
        if targets_source(self.services.resolve(db.conn_id), target, scratch):
            self.log.warning("drill target is the source; nothing dropped database=%s", db.id)
            return {"dropped": None, "target": target.describe()}
        engine_for(db.engine).drop_database(target, scratch)
        self.log.info("scratch dropped database=%s scratch=%s target=%s", db.id, scratch, target.describe())
        return {"dropped": scratch, "target": target.describe()}


class DrillVerdictOperator(RestorableOperator):
    """Fail the run when the drill did not prove the backup (the scratch drop alone would pass it)."""

    def __init__(self, *, evidence_task_id: str = "record_evidence", **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.evidence_task_id = evidence_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.exceptions import ValidationFailed

        evidence = context["ti"].xcom_pull(task_ids=self.evidence_task_id)
        if not evidence:
            raise ValidationFailed(
                f"no drill evidence was recorded for {self.database_id}; see the failed task", database=self.database_id
            )
        if not evidence.get("ok"):
            raise ValidationFailed(
                f"the drill failed at {evidence.get('failed_step')}; evidence at {evidence.get('record_key')}",
                database=self.database_id,
                backup_id=evidence.get("backup_id"),
            )
        return evidence


# --- lifecycle ---------------------------------------------------------------------------------


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
            store.client,
            storage.bucket,
            BucketExpectations(prefix=storage.prefix + "/" if storage.prefix else ""),
            fix=False,
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
