"""Key rotation and the encryption audit (the ``rotate_keys`` DAG): thin over ``restorable.keys.rotation``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from restorable.airflow.operators.base import as_bool


class _KeysBase(BaseOperator):
    def __init__(self, *, config_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path

    def services(self):
        from restorable.airflow.connections import airflow_services

        return airflow_services(self.config_path)


class RotateKeysOperator(_KeysBase):
    """Rewrap every envelope backup's key under the KMS key's newest version (optionally make one first).

    XCom gets counts and versions only; a backup whose key could not be rewrapped fails the task.
    """

    template_fields: Sequence[str] = ("rotate_kms_key",)

    def __init__(self, *, rotate_kms_key: Any = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rotate_kms_key = rotate_kms_key

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.exceptions import IntegrityError
        from restorable.keys.rotation import rotate_keys

        report = rotate_keys(self.services(), rotate_kms_key=as_bool(self.rotate_kms_key))
        summary = {
            "key_name": report.key_name,
            "latest_version": report.latest_version,
            "rotated": len(report.rotated),
            "current": len(report.current),
            "failed": report.failed,
            "static": report.static,
            "record_key": report.record_key,
        }
        if not report.ok:
            context["ti"].xcom_push(key="summary", value=summary)
            raise IntegrityError(
                f"{len(report.failed)} backup key(s) could not be rewrapped: "
                + "; ".join(f"{f['database_id']}/{f['backup_id']}: {f['error']}" for f in report.failed[:5]),
                hint="Do not retire old KMS key versions until this task passes",
            )
        return summary


class AuditEncryptionOperator(_KeysBase):
    """Every object under the prefix that is not age ciphertext fails the task, named."""

    def execute(self, context: Any) -> dict[str, Any]:
        from restorable.commands.audit_encryption import audit_encryption, audit_failure

        audit = audit_encryption(self.services(), None)
        failure = audit_failure(audit)
        if failure is not None:
            raise failure
        return {"scanned": audit.scanned, "ciphertext": audit.ciphertext, "metadata": audit.metadata}
