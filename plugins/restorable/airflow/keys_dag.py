"""``rotate_keys``: the yearly key rotation of envelope mode, then an audit that every stored byte is ciphertext.

Built only when ``encryption.envelope`` is configured. Its own module (not ``dag_factory``): the factory
builds per-database DAGs, this one is per repository like ``enforce_lifecycle``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from airflow.sdk import DAG, Param

from restorable.airflow.dag_factory import START_DATE, _cron, default_args
from restorable.airflow.operators.keys import AuditEncryptionOperator, RotateKeysOperator
from restorable.config import RestorableConfig, load_config

#: Once a year (1 January, 05:00 UTC): the seed's annual rotation.
SCHEDULE = "0 5 1 1 *"


def build_rotate_keys_dag(config: RestorableConfig | str | Path | None = None, *, schedule: str = SCHEDULE):
    """The DAG, or None when backups are not in envelope mode (nothing to rotate)."""
    config_path = None if isinstance(config, RestorableConfig) or config is None else str(config)
    if not isinstance(config, RestorableConfig):
        config = load_config(config)
    if config.encryption.envelope is None:
        return None
    args = default_args(
        config,
        retries=int(os.environ.get("RESTORABLE_TASK_RETRIES", "2")),
        retry_delay=timedelta(seconds=float(os.environ.get("RESTORABLE_RETRY_DELAY_SECONDS", "120"))),
    )
    with DAG(
        dag_id="rotate_keys",
        description="Yearly: a new KMS key version, every backup's key rewrapped under it, then the encryption audit",
        schedule=_cron(schedule),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=args,
        params={
            "rotate_kms_key": Param(
                True,
                type="boolean",
                title="Make a new KMS key version first",
                description="Off: only rewrap under the newest version (when the KMS rotates the key itself)",
            )
        },
        tags=["restorable", "keys"],
        doc_md="Rewraps every envelope backup's key object under the KMS key's newest version; the data is not "
        "touched. Retire old key versions (min_decryption_version) only after a run passed. "
        f"Runbook: `{config.alerts.runbook_url}/keys.md`.",
    ) as dag:
        rotate = RotateKeysOperator(
            task_id="rotate_keys", config_path=config_path, rotate_kms_key="{{ params.rotate_kms_key }}"
        )
        audit = AuditEncryptionOperator(task_id="audit_encryption", config_path=config_path, trigger_rule="all_done")
        rotate >> audit
    return dag
