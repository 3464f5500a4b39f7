"""docker-compose.yaml: Airflow 3 in the official CeleryExecutor file's shape, on the Dockerfile's image, plus
Restorable's services, wired to the config."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def test_airflow_services_share_the_common_anchor():
    services = compose()["services"]
    airflow = {
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "airflow-init",
    }
    assert airflow <= set(services)
    assert {"postgres", "seaweedfs", "seaweedfs-init", "shop-postgres", "drill-postgres"} <= set(services)
    commands = {name: services[name].get("command") for name in airflow - {"airflow-init"}}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker",
    }
    for name in airflow:
        # Built from the Dockerfile (FROM apache/airflow:3.3.2), not the bare image without pg_dump or age.
        assert services[name]["build"] == {"context": ".", "dockerfile": "Dockerfile"}, name
        assert services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name


def test_celery_layout_redis_broker_workers_and_flower():
    services = compose()["services"]
    env = compose()["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@redis:6379/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://airflow:airflow@postgres/")
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]
    for name in ("airflow-scheduler", "airflow-worker", "airflow-apiserver"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
    worker = services["airflow-worker"]
    assert (
        "inspect ping" in " ".join(worker["healthcheck"]["test"]) and worker["environment"]["DUMB_INIT_SETSID"] == "0"
    )
    assert services["flower"]["command"] == "celery flower" and services["flower"]["profiles"] == ["flower"]
    # The long-running services run on the same image, from the installed package.
    for name, command in (("wal-archiver-shop", "wal-archiver shop"), ("restorable-exporter", "exporter")):
        assert services[name]["image"] == services["airflow-worker"]["image"], name
        assert f"restorable.cli {command}" in " ".join(services[name]["command"]), name
        assert "PYTHONPATH" not in services[name].get("environment", {}), name
    # The identity connection uses the provider's connection type (the form with one private-key field).
    assert '"conn_type": "restorable_age"' in env["AIRFLOW_CONN_RESTORABLE_AGE"]


def test_project_folders_are_mounted():
    volumes = compose()["x-airflow-common"]["volumes"]
    targets = {}
    for volume in volumes:
        spec = re.sub(r":(ro|rw)$", "", volume)
        source, target = spec.rsplit(":", 1)
        targets[target] = source
    for folder in ("dags", "include"):
        assert targets[f"/opt/airflow/{folder}"].endswith(f"/{folder}"), folder
    # The plugin comes from the installed package: a mounted copy would register it twice.
    assert "/opt/airflow/plugins" not in targets
    assert "/opt/airflow/airflow_settings.yaml" in targets


def test_every_connection_of_the_config_is_defined_and_the_config_is_found():
    env = compose()["x-airflow-common"]["environment"]
    config = yaml.safe_load((REPO / "include" / "restorable.yaml").read_text())
    conn_ids = {
        config["storage"]["conn_id"],
        config["encryption"]["identity_conn_id"],
        config["alerts"]["webhook_conn_id"],
    }
    for db in config["databases"]:
        conn_ids |= {db["conn_id"], db["restore_target_conn_id"]}
    settings = yaml.safe_load((REPO / "airflow_settings.yaml").read_text())["airflow"]
    from_settings = {c["conn_id"] for c in settings["connections"]}
    missing = [c for c in conn_ids if f"AIRFLOW_CONN_{c.upper()}" not in env and c not in from_settings]
    assert not missing
    assert env["RESTORABLE_CONFIG"] == "/opt/airflow/include/restorable.yaml"
    assert "endpoint_url=http%3A%2F%2Fseaweedfs%3A8333" in env["AIRFLOW_CONN_RESTORABLE_S3"]
    # The private age key comes from .env, never from the file itself.
    assert not re.search(r"AGE-SECRET-KEY-1[0-9A-Z]{20,}", (REPO / "docker-compose.yaml").read_text())


def test_storage_and_init():
    services = compose()["services"]
    seaweed = services["seaweedfs"]["command"]
    assert "-s3" in seaweed and "-master.telemetry=false" in seaweed
    init = " ".join(services["seaweedfs-init"]["command"])
    assert "--object-lock-enabled-for-bucket" in init and "restorable-backups" in init
    airflow_init = " ".join(services["airflow-init"]["command"])
    assert "restorable.airflow.settings_loader" in airflow_init
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    deps = services["airflow-scheduler"]["depends_on"]
    assert deps["airflow-init"]["condition"] == "service_completed_successfully"


def test_the_wal_archiver_service_shares_the_spool_and_bound_of_shop_postgres_archive_step():
    from restorable.config import parse_size

    services = compose()["services"]
    config = yaml.safe_load((REPO / "include" / "restorable.yaml").read_text())
    shop = next(db for db in config["databases"] if db["id"] == "shop")
    wal = shop["physical"]["wal"]
    archiver = services["wal-archiver-shop"]
    assert "restorable.cli wal-archiver shop" in " ".join(archiver["command"])
    assert "wal-spool:/spool" in archiver["volumes"] and "wal-spool:/spool" in services["shop-postgres"]["volumes"]
    start = " ".join(services["shop-postgres"]["entrypoint"])
    assert "archive_mode=on" in start
    # The archive step writes where the archiver reads, and refuses at the bound the archiver alarms on.
    assert f"spool-archive.sh %p %f {wal['spool_dir']} {parse_size(wal['spool_max'], 'spool_max')}" in start
    script = "plugins/restorable/wal/spool-archive.sh:/opt/restorable/spool-archive.sh:ro"
    assert any(v.endswith(script) for v in services["shop-postgres"]["volumes"])
    assert archiver["stop_grace_period"] == "60s"
