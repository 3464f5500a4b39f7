"""The backup chain's copy step: one task per destination of ``storage.copies``, each retried on its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from restorable.airflow.operators.base import RestorableOperator


class CopyBackupOperator(RestorableOperator):
    """Copy the verified backup to one destination, read the copy back, record it (``commands/copy.py``)."""

    template_fields: Sequence[str] = ("database_id", "backup_id")
    ui_color = "#d5e3f0"

    def __init__(self, *, backup_id: str, copy_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backup_id = backup_id
        self.copy_name = copy_name

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.commands.copy import copy_backup

        self.resolved_backup_id = self.backup_id
        (result,) = copy_backup(self.services, self.database_id, self.backup_id, names=[self.copy_name])
        self.log.info(
            "copy verified database=%s backup=%s destination=%s objects=%d already=%s seconds=%s",
            self.database_id,
            result.backup_id,
            result.destination,
            len(result.objects),
            result.already,
            result.seconds,
        )
        return {
            "backup_id": result.backup_id,
            "destination": result.destination,
            "bucket": result.bucket,
            "prefix": result.prefix,
            "ok": result.ok,
            "already": result.already,
            "objects": len(result.objects),
            "how": sorted({o["how"] for o in result.objects if o.get("how")}) or ["re-read"],
            "seconds": result.seconds,
        }
