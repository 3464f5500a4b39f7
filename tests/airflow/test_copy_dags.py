"""``storage.copies`` in Airflow: a ``copy__<name>`` task per destination after ``verify_checksum``,
beside ``publish`` (a region that is down delays no drill), run end to end with dag.test()."""

from __future__ import annotations

import uuid

import pytest
import yaml

from tests.airflow.conftest import REPO, connection_json
from tests.airflow.test_postgres_dags import states, xcom

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


@pytest.fixture
def copy_bucket(seaweed):
    name = f"copy-{uuid.uuid4().hex[:12]}"
    seaweed.create_bucket(name, object_lock=False, versioning=True)
    yield name
    seaweed.delete_bucket(name)


def test_backup_dag_copies_each_verified_backup_to_every_destination(restorable_env, copy_bucket, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    env = restorable_env
    data = yaml.safe_load(env.config_path.read_text())
    data["storage"]["copies"] = [
        {"name": "eu", "conn_id": "s3_eu", "bucket": copy_bucket, "storage_class": "STANDARD_IA"},
        {"name": "us", "conn_id": "s3_us", "bucket": copy_bucket, "prefix": "us"},
    ]
    env.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("AIRFLOW_CONN_S3_EU", connection_json(env.seaweed.connection("s3_eu")))
    monkeypatch.setenv("AIRFLOW_CONN_S3_US", connection_json(env.seaweed.connection("s3_us")))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["backup__shop"]
    assert dag.get_task("verify_checksum").downstream_task_ids == {"publish", "copy__eu", "copy__us"}
    assert dag.get_task("copy__eu").downstream_task_ids == set()

    run = dag.test()
    assert run.state == "success", states(run)
    backup_id = xcom(run, "backup")["backup_id"]
    for name in ("eu", "us"):
        copied = xcom(run, f"copy__{name}")
        assert copied["ok"] and copied["backup_id"] == backup_id and copied["how"] == ["server-side"]
    from restorable.copies import copy_services

    for name in ("eu", "us"):
        (entry,) = copy_services(env.services(), name).catalog("restore").entries("shop")
        assert entry.backup_id == backup_id and entry.verified
