"""An Airflow home for dag.test(): SQLite metadata DB, the repo's dags/ folder, no examples.

Airflow reads its configuration when first imported, so the environment is set here, at
collection time, before any test module imports Airflow. The migrated SQLite DB is cached per
Airflow version under ~/.cache/restorable (a migration takes ~20 s; a copy takes milliseconds).

Per test, ``restorable_env`` writes the config file naming the test's own bucket, points
$RESTORABLE_CONFIG at it and the AIRFLOW_CONN_* variables at the fixture servers (set per test
only, so tests elsewhere in the suite never see this config).
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
_HOME = Path(tempfile.mkdtemp(prefix="restorable-airflow-home-"))
CONFIG_PATH = _HOME / "restorable.yaml"
_ENV = {
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(_HOME / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
    "GX_ANALYTICS_ENABLED": "False",
    # One quick retry: dag.test() waits out retry delays in real time.
    "RESTORABLE_TASK_RETRIES": "1",
    "RESTORABLE_RETRY_DELAY_SECONDS": "1",
}
os.environ.update(_ENV)
(_HOME / "plugins").mkdir(exist_ok=True)

CONN_ENV = {
    "shop_pg": "AIRFLOW_CONN_SHOP_PG",
    "drill_pg": "AIRFLOW_CONN_DRILL_PG",
    "shopdb_mysql": "AIRFLOW_CONN_SHOPDB_MYSQL",
    "drill_mysql": "AIRFLOW_CONN_DRILL_MYSQL",
    "restorable_s3": "AIRFLOW_CONN_RESTORABLE_S3",
    "restorable_age": "AIRFLOW_CONN_RESTORABLE_AGE",
    "restorable_alerts": "AIRFLOW_CONN_RESTORABLE_ALERTS",
}
POOLS = ("restorable_shop_pg", "restorable_shopdb_mysql")


def connection_json(info: Any) -> str:
    """A ConnectionInfo in Airflow's JSON connection form (what AIRFLOW_CONN_* may hold)."""
    return json.dumps(
        {
            "conn_type": info.conn_type,
            "host": info.host,
            "port": info.port,
            "login": info.login,
            "password": info.password,
            "schema": info.schema,
            "extra": dict(info.extra or {}),
        }
    )


def write_config(path: Path, *, bucket: str, recipient: str, databases: list[dict[str, Any]] | None = None) -> Path:
    config = {
        "storage": {"conn_id": "restorable_s3", "bucket": bucket, "prefix": "restorable", "part_size": "5MiB"},
        "encryption": {"recipients": [recipient], "identity_conn_id": "restorable_age"},
        "compression": {"level": 1, "threads": 0},
        "alerts": {"webhook_conn_id": "restorable_alerts", "runbook_url": "docs/runbooks"},
        "databases": databases
        or [
            {
                "id": "shop",
                "engine": "postgres",
                "conn_id": "shop_pg",
                "schedule": "0 2 * * *",
                "restore_target_conn_id": "drill_pg",
                "drill_schedule": "0 3 * * 0",
                "expectations": str(REPO / "include" / "expectations" / "shop.yaml"),
            },
            {
                "id": "shopdb",
                "engine": "mysql",
                "conn_id": "shopdb_mysql",
                "schedule": "30 2 * * *",
                "restore_target_conn_id": "drill_mysql",
                "drill_on_backup": True,
            },
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _cached_db() -> Path:
    import importlib.metadata

    version = importlib.metadata.version("apache-airflow")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "restorable"
    return cache / f"airflow-{version}-sqlite.db"


@pytest.fixture(scope="session")
def age_keys() -> tuple[str, str]:
    """A fresh age key pair for the session: (identity, recipient)."""
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


@pytest.fixture(scope="session")
def airflow_db(age_keys) -> Iterator[Path]:
    """The migrated metadata DB (copied from the cache, else migrated once and cached), with pools."""
    db = _HOME / "airflow.db"
    cached = _cached_db()
    if cached.exists():
        shutil.copyfile(cached, db)
    else:
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "db", "migrate"], check=True, env=os.environ.copy(), capture_output=True, timeout=300)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        shutil.copyfile(db, tmp)
        tmp.replace(cached)
    # A parseable config must exist before anything parses the DAG folder.
    write_config(CONFIG_PATH, bucket="not-yet-chosen", recipient=age_keys[1])
    from airflow.models.pool import Pool

    for pool in POOLS:
        Pool.create_or_update_pool(
            pool, slots=1, description="one dump at a time per source server", include_deferred=False
        )
    yield db
    shutil.rmtree(_HOME, ignore_errors=True)


@dataclass
class AlertReceiver:
    """A local HTTP endpoint standing in for the Slack webhook."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def clear(self) -> None:
        self.received.clear()


@pytest.fixture(scope="session")
def alert_receiver() -> Iterator[AlertReceiver]:
    receiver = AlertReceiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            receiver.received.append(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/restorable"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class RestorableEnv:
    config_path: Path
    bucket: str
    seaweed: Any
    source: Any
    target_server: Any
    alerts: AlertReceiver

    def services(self):
        from restorable.config import load_config
        from restorable.services import Services

        return Services(load_config(self.config_path))

    def catalog(self):
        return self.services().catalog("restore")


@pytest.fixture
def restorable_env(
    airflow_db, age_keys, seaweed, bucket, pg_sample, pg_target_server, alert_receiver, monkeypatch
) -> RestorableEnv:
    """Config + connections for the Postgres DAGs of one test (its own bucket and sample database)."""
    identity, recipient = age_keys
    config_path = write_config(CONFIG_PATH, bucket=bucket, recipient=recipient)
    from restorable.connections import ConnectionInfo

    monkeypatch.setenv("RESTORABLE_CONFIG", str(config_path))
    monkeypatch.setenv(CONN_ENV["shop_pg"], connection_json(pg_sample))
    monkeypatch.setenv(CONN_ENV["drill_pg"], connection_json(pg_target_server.connection("postgres")))
    monkeypatch.setenv(CONN_ENV["restorable_s3"], connection_json(seaweed.connection("restorable_s3")))
    monkeypatch.setenv(
        CONN_ENV["restorable_age"], connection_json(ConnectionInfo("restorable_age", "generic", password=identity))
    )
    monkeypatch.setenv(CONN_ENV["restorable_alerts"], json.dumps({"conn_type": "http", "host": alert_receiver.url}))
    alert_receiver.clear()
    return RestorableEnv(config_path, bucket, seaweed, pg_sample, pg_target_server, alert_receiver)


@pytest.fixture
def default_config(airflow_db, age_keys, monkeypatch) -> Path:
    """The default test config, rewritten (an earlier test may have changed it), as $RESTORABLE_CONFIG."""
    monkeypatch.setenv("RESTORABLE_CONFIG", str(CONFIG_PATH))
    return write_config(CONFIG_PATH, bucket="not-yet-chosen", recipient=age_keys[1])


@pytest.fixture(scope="session")
def dags(airflow_db, age_keys) -> dict[str, Any]:
    """The DAGs as the DAG processor sees them (parsed from the repo's dags/ folder), from the default
    test config: a test that ran before in this process may have rewritten it with other databases."""
    from airflow.dag_processing.dagbag import DagBag

    write_config(CONFIG_PATH, bucket="not-yet-chosen", recipient=age_keys[1])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RESTORABLE_CONFIG", str(CONFIG_PATH))
        bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags


@pytest.fixture(scope="session", autouse=True)
def _deadlines_in_dag_test():
    """Make dag.test() run a DAG that has a ``deadline`` (Airflow 3.3.2).

    dag.test() builds its scheduler DAG from an in-memory serialization, whose ``deadline`` holds
    the encoded DeadlineAlerts; the scheduler's copy (from the DB) holds the UUIDs of their rows.
    When the run ends, ``DagRun.update_state`` looks each one up by id and fails on a dict. Here
    the scheduler DAG gets the stored UUIDs before its run is created, as the scheduler's has.
    """
    import airflow.models.dagrun as dagrun_module

    original = dagrun_module.get_or_create_dagrun

    def with_stored_deadlines(*, dag: Any, **kwargs: Any):
        if dag.deadline and not isinstance(dag.deadline[0], str):
            from airflow.models.serialized_dag import SerializedDagModel
            from airflow.utils.session import create_session
            from sqlalchemy import select

            with create_session() as session:
                row = session.scalar(
                    select(SerializedDagModel)
                    .where(SerializedDagModel.dag_id == dag.dag_id)
                    .order_by(SerializedDagModel.created_at.desc())
                    .limit(1)
                )
                dag.deadline = row.data["dag"].get("deadline") if row is not None else None
        return original(dag=dag, **kwargs)

    dagrun_module.get_or_create_dagrun = with_stored_deadlines
    yield
    dagrun_module.get_or_create_dagrun = original


def run_dag(dag: Any, **kwargs: Any):
    """dag.test() and return the DagRun (state, and its task instances)."""
    return dag.test(**kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        return {ti.task_id: str(ti.state.value if hasattr(ti.state, "value") else ti.state) for ti in tis}


@pytest.fixture
def set_connection(monkeypatch):
    """``set_connection(conn_id, ConnectionInfo)``: define an Airflow connection for this test only."""

    def setter(conn_id: str, info: Any) -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_json(info))

    return setter


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)
