"""The yearly ``rotate_keys`` DAG under dag.test(), against real OpenBao and SeaweedFS."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.airflow.conftest import CONFIG_PATH, REPO, run_dag, task_states

pytestmark = pytest.mark.airflow


def test_rotate_keys_dag_makes_a_new_version_and_rewraps_every_backup(restorable_env, openbao, set_connection):
    from airflow.dag_processing.dagbag import DagBag

    from restorable.commands.backup import run_backup
    from restorable.keys.rotation import key_status

    config = yaml.safe_load(CONFIG_PATH.read_text())
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
    services = restorable_env.services()
    manifest = run_backup(services, "shop")
    before = int(openbao.key_info()["latest_version"])

    bag = DagBag(dag_folder=str(REPO / "dags" / "rotate_keys.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["rotate_keys"]
    assert dag.timetable.expression == "0 5 1 1 *"
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"rotate_keys": "success", "audit_encryption": "success"}, task_states(dag_run)

    assert int(openbao.key_info()["latest_version"]) == before + 1
    shop = key_status(services)["databases"]["shop"]
    assert [(v["key_version"], v["backups"]) for v in shop["key_versions"]] == [(before + 1, 1)]
    records = services.catalog().layout.rewrapped_prefix("shop", manifest.backup_id)
    (rewrapped,) = list(services.store().list_objects(records))
    assert json.loads(services.store().get_bytes(rewrapped.key))["key_version"] == before + 1
