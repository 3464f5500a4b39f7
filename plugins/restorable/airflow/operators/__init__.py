"""Thin operators over the Restorable core, one module per duty.

Each operator turns Airflow connections into core settings (``airflow_services``), calls one
core function, and pushes small results to XCom: ids, sizes, hashes, timings, never a secret
and never a schema. Heavy imports (boto3, GX, engines) happen inside ``execute`` so parsing
the DAG file stays cheap.
"""

from restorable.airflow.operators.backup import (
    BackupOperator,
    PreflightOperator,
    PublishBackupOperator,
    VerifyChecksumOperator,
)
from restorable.airflow.operators.base import ConfigErrorOperator, RestorableOperator
from restorable.airflow.operators.drill import (
    DrillVerdictOperator,
    DropScratchDatabaseOperator,
    PickBackupOperator,
    RecordDrillEvidenceOperator,
)
from restorable.airflow.operators.lifecycle import AuditBucketOperator, EnforceLifecycleOperator
from restorable.airflow.operators.restore import GreatExpectationsValidateOperator, RestoreOperator

__all__ = [
    "AuditBucketOperator",
    "BackupOperator",
    "ConfigErrorOperator",
    "DrillVerdictOperator",
    "DropScratchDatabaseOperator",
    "EnforceLifecycleOperator",
    "GreatExpectationsValidateOperator",
    "PickBackupOperator",
    "PreflightOperator",
    "PublishBackupOperator",
    "RecordDrillEvidenceOperator",
    "RestorableOperator",
    "RestoreOperator",
    "VerifyChecksumOperator",
]
