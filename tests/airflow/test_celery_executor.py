"""Airflow's CeleryExecutor for real: a Redis broker, two Celery workers, a scheduler, backups and a drill.

A throwaway ``redis-server`` on a free port; the API server (the workers' execution API), scheduler,
DAG processor and two workers (one task at a time each) as subprocesses on a copy of the session's
metadata DB. ``backup__shop`` and ``backup__shop2`` (a second database on the same source server,
so the same pool of one slot) are triggered together, then ``restore_drill__shop``: all green, their
tasks run by the two workers, the evidence in the bucket, and the two dumps never overlapping.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from devstack.ports import free_port, port_is_open
from tests.airflow.conftest import REPO

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

AIRFLOW = str(Path(sys.executable).parent / "airflow")


class Processes:
    """Subprocesses this test started, each in a session of its own, stopped by their ids."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        out = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        self.started[name] = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def check(self) -> None:
        for name, proc in self.started.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 40) -> str:
        return "\n".join((self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        for proc in self.started.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.started.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def redis_port(tmp_path):
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: run `make bootstrap`")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not port_is_open(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def api(port: int, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_for(what: str, check, processes: Processes, timeout: float, *, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check()
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(every)
    logs = "\n".join(f"--- {name}\n{processes.tail(name, 15)}" for name in processes.started)
    pytest.fail(f"timed out waiting for {what}\n{logs}")


def test_backups_and_a_drill_on_two_celery_workers_with_one_dump_per_source(
    restorable_env, airflow_db, redis_port, tmp_path
):
    data = yaml.safe_load(restorable_env.config_path.read_text())
    shop = next(d for d in data["databases"] if d["id"] == "shop")
    data["databases"].append({**shop, "id": "shop2"})  # the same source server: the same pool
    restorable_env.config_path.write_text(yaml.safe_dump(data, sort_keys=False))

    home = tmp_path / "home"
    (home / "plugins").mkdir(parents=True)
    shutil.copyfile(airflow_db, home / "airflow.db")  # migrated
    api_port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"redis://127.0.0.1:{redis_port}/1",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "celery-test-only",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
    processes = Processes(tmp_path)
    try:
        processes.start("api-server", [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(api_port)], env)
        processes.start("scheduler", [AIRFLOW, "scheduler"], env)
        processes.start("dag-processor", [AIRFLOW, "dag-processor"], env)
        for worker in ("w1", "w2"):
            worker_env = {
                **env,
                "RESTORABLE_TEST_WORKER": worker,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.airflow.worker_name.hostname",
            }
            args = [AIRFLOW, "celery", "worker", "--concurrency", "1", "--skip-serve-logs", "-H", f"{worker}@%h"]
            processes.start(f"worker-{worker}", args, worker_env)
        wait_for("the API server", lambda: port_is_open(api_port), processes, 120)
        dags = ("backup__shop", "backup__shop2", "restore_drill__shop")
        wait_for("the DAGs to be parsed", lambda: all(api(api_port, "GET", f"/dags/{d}") for d in dags), processes, 120)
        for dag_id in dags:
            api(api_port, "PATCH", f"/dags/{dag_id}", {"is_paused": False})
        # One slot per source server, as airflow_settings.yaml sets it in a deployment.
        pools = {p["name"]: p for p in api(api_port, "GET", "/pools")["pools"]}
        if "restorable_shop_pg" not in pools:
            api(api_port, "POST", "/pools", {"name": "restorable_shop_pg", "slots": 1, "include_deferred": False})
        assert api(api_port, "GET", "/pools/restorable_shop_pg")["slots"] == 1

        def run(dag_id: str) -> str:
            return api(api_port, "POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None})["dag_run_id"]

        def finished(dag_id: str, run_id: str) -> str | None:
            state = api(api_port, "GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None

        backups = {dag_id: run(dag_id) for dag_id in ("backup__shop", "backup__shop2")}
        for dag_id, run_id in backups.items():
            done = wait_for(dag_id, lambda d=dag_id, r=run_id: finished(d, r), processes, 240)
            assert done == "success", dag_id
        drill = run("restore_drill__shop")
        assert wait_for("the drill", lambda: finished("restore_drill__shop", drill), processes, 240) == "success"

        instances = [
            ti
            for dag_id, run_id in [*backups.items(), ("restore_drill__shop", drill)]
            for ti in api(api_port, "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        ]
    finally:
        processes.stop()

    ran = {ti["hostname"] for ti in instances if ti["state"] == "success"}
    assert ran <= {"w1", "w2"} and len(ran) == 2, ran
    dumps = sorted(
        (datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"]))
        for ti in instances
        if ti["task_id"] == "backup"
    )
    assert len(dumps) == 2 and dumps[0][1] <= dumps[1][0], dumps  # one dump of the source at a time
    catalog = restorable_env.catalog()
    (backup_id,) = catalog.backup_ids("shop")
    assert len(catalog.backup_ids("shop2")) == 1
    (record,) = [r for r in catalog.verifications("shop", backup_id) if r["kind"] == "drill"]
    assert record["ok"] and record["run"]["dag_id"] == "restore_drill__shop" and record["run"]["host"]
