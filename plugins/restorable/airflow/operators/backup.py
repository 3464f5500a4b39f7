"""The backup chain's operators: preflight, backup, checksum verification, the Asset event."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from restorable.airflow.operators.base import RestorableOperator, run_info, run_key, run_time


def deterministic_backup_id(context: Any) -> str:
    """Same DAG run, same id: a retried run finds its own committed backup instead of making another."""
    from restorable.repository.manifest import new_backup_id

    return new_backup_id(run_time(context), run_key(context))


class PreflightOperator(RestorableOperator):
    """Source reachable with working tools, bucket reachable: fail early, before any dump starts."""

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.commands.backup import check_bucket
        from restorable.engines import engine_for

        services = self.services
        db = self.database
        started = time.monotonic()
        source = services.resolve(db.conn_id)
        tools = engine_for(db.engine).preflight(source)
        check_bucket(services, db.id)
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
        from restorable.metrics import backup_figures

        backup_id = deterministic_backup_id(context)
        self.resolved_backup_id = backup_id
        with self.observed(context, "backup") as run:
            manifest = run_backup(self.services, self.database_id, backup_id=backup_id, run=run_info(context))
            run.figures.update(backup_figures(manifest))
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
        from restorable.metrics import verify_figures

        self.resolved_backup_id = self.backup_id
        with self.observed(context, "verify") as run:
            result = verify_backup(self.services, self.database_id, self.backup_id, deep=self.deep)
            run.figures.update(verify_figures(result))
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
