"""Envelope mode under dag.test(), against real OpenBao and SeaweedFS: ``backup__shop`` wraps the backup's key,
the yearly ``rotate_keys`` DAG makes a new KMS key version and rewraps it; no XCom holds the identity."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.airflow.conftest import CONFIG_PATH, REPO, run_dag, task_states

pytestmark = pytest.mark.airflow


def _all_xcom_values(dag_run) -> str:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
        return "\n".join(json.dumps(row.value, default=str) for row in rows)


@pytest.fixture
def envelope_config(restorable_env):
    """The test config in envelope mode; put back afterwards (the session's DagBag may be parsed later)."""
    original = CONFIG_PATH.read_text()
    yield restorable_env
    CONFIG_PATH.write_text(original)


def test_envelope_backup_dag_then_rotate_keys_dag(envelope_config, openbao, set_connection):
    from airflow.dag_processing.dagbag import DagBag

    from restorable.keys.envelope import EnvelopeProvider, kms_for
    from restorable.keys.rotation import key_status

    restorable_env = envelope_config
    config = yaml.safe_load(CONFIG_PATH.read_text())
    config["databases"] = config["databases"][:1]  # shop only
    config["encryption"]["envelope"] = {
        "kms": "openbao_transit",
        "key": "restorable",
        "encrypt_conn_id": "restorable_kms_backup",
        "decrypt_conn_id": "restorable_kms_restore",
        "rotate_conn_id": "restorable_kms_rotate",
    }
    CONFIG_PATH.write_text(yaml.safe_dump(config, sort_keys=False))
    for duty in ("backup", "restore", "rotate"):
        set_connection(f"restorable_kms_{duty}", openbao.connection(duty))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    before = int(openbao.key_info()["latest_version"])

    backup_run = run_dag(bag.dags["backup__shop"])
    assert backup_run.state == "success", task_states(backup_run)
    services = restorable_env.services()
    manifest = services.catalog().read_manifest("shop", "latest")
    assert manifest.encryption["provider"] == "envelope" and manifest.encryption["key_version"] == before

    rotate = bag.dags["rotate_keys"]
    assert rotate.timetable.expression == "0 5 1 1 *"
    rotate_run = run_dag(rotate)
    assert task_states(rotate_run) == {"rotate_keys": "success", "audit_encryption": "success"}, task_states(rotate_run)

    assert int(openbao.key_info()["latest_version"]) == before + 1
    shop = key_status(services)["databases"]["shop"]
    assert [(v["key_version"], v["backups"]) for v in shop["key_versions"]] == [(before + 1, 1)]
    rewrapped_prefix = services.catalog().layout.rewrapped_prefix("shop", manifest.backup_id)
    (rewrapped,) = list(services.store().list_objects(rewrapped_prefix))
    assert json.loads(services.store().get_bytes(rewrapped.key))["key_version"] == before + 1

    _, identity = EnvelopeProvider(services).unwrap_current(
        services.store(), manifest, kms_for(services, "restorable_kms_restore")
    )
    xcoms = _all_xcom_values(backup_run) + _all_xcom_values(rotate_run)
    assert xcoms and identity not in xcoms and "AGE-SECRET-KEY" not in xcoms
