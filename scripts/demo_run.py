"""Drive the demo through Airflow's REST API: unpause, trigger, wait, summarise.

Runs the backup DAG, then the restore drill, for the sample PostgreSQL database, and prints
what an operator wants to see: backup id, size, throughput, verification, drill verdict and
restore time, plus where the UI is and how to log in.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

BASE = f"http://127.0.0.1:{os.environ.get('AIRFLOW__API__PORT', '8080')}"
HOME = Path(os.environ["AIRFLOW_HOME"])
DATABASE = os.environ.get("DEMO_DATABASE", "shop")


def call(method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read()
        return json.loads(text) if text else {}


def admin_password() -> str:
    for _ in range(120):
        path = HOME / "simple_auth_manager_passwords.json.generated"
        if path.exists():
            return json.loads(path.read_text())["admin"]
        time.sleep(1)
    sys.exit("the admin password file never appeared; see .state/airflow/standalone.log")


def wait_for_api() -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            call("GET", "/api/v2/monitor/health")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(2)
    sys.exit("Airflow's API did not come up in 4 minutes; see .state/airflow/standalone.log")


def wait_for_dag(dag_id: str, token: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            call("GET", f"/api/v2/dags/{dag_id}", token=token)
            return
        except urllib.error.HTTPError:
            time.sleep(3)
    errors = call("GET", "/api/v2/importErrors", token=token)
    sys.exit(f"DAG {dag_id} was not parsed in 3 minutes; import errors: {json.dumps(errors)[:2000]}")


def run_dag(dag_id: str, token: str) -> dict:
    wait_for_dag(dag_id, token)
    call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}, token)
    run = call(
        "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": datetime.now(UTC).isoformat(), "conf": {}}, token
    )
    run_id = run["dag_run_id"]
    print(f"    triggered {dag_id} run {run_id}", flush=True)
    started = time.monotonic()
    while True:
        run = call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", token=token)
        if run["state"] in ("success", "failed"):
            print(f"    {dag_id}: {run['state']} after {time.monotonic() - started:.0f} s", flush=True)
            return run
        if time.monotonic() - started > 900:
            sys.exit(f"{dag_id} did not finish in 15 minutes")
        time.sleep(3)


def xcom(dag_id: str, run_id: str, task_id: str, token: str) -> object:
    try:
        entry = call(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
            token=token,
        )
    except urllib.error.HTTPError:
        return None
    return entry.get("value")


def main() -> None:
    print("==> waiting for Airflow's API", flush=True)
    wait_for_api()
    password = admin_password()
    token = call("POST", "/auth/token", {"username": "admin", "password": password})["access_token"]
    print(f"==> backup__{DATABASE}", flush=True)
    backup = run_dag(f"backup__{DATABASE}", token)
    print(f"==> restore_drill__{DATABASE}", flush=True)
    drill = run_dag(f"restore_drill__{DATABASE}", token)

    # The bucket is the catalog: read the result from there, as an auditor would.
    from restorable.config import load_config
    from restorable.services import Services

    catalog = Services(load_config()).catalog("restore")
    entry = catalog.entries(DATABASE)[-1]
    s = entry.manifest.summary()
    drills = [v for v in entry.verifications if v.get("kind") == "drill"]
    checks = [v for v in entry.verifications if v.get("kind") == "checksum"]
    print("\n==================== Restorable demo ====================")
    print(f"backup DAG run     {backup['dag_run_id']}: {backup['state']}")
    print(f"backup id          {s['backup_id']}")
    print(
        f"dump / stored      {s['plain_bytes'] / 1e6:.1f} MB / {s['stored_bytes'] / 1e6:.1f} MB "
        f"({s['tables']} tables, {s['rows']} rows)"
    )
    print(f"throughput         {s['mb_per_s']} MB/s over {s['seconds']} s")
    print(f"verify (checksum)  {'ok' if checks and checks[-1].get('ok') else 'NOT OK'}  sha256 {s['stored_sha256']}")
    print(f"drill DAG run      {drill['dag_run_id']}: {drill['state']}")
    if drills:
        d = drills[-1]
        v = d.get("validation") or {}
        print(
            f"drill verdict      {'PASSED' if d.get('ok') else 'FAILED'}: {v.get('expectations')} Great Expectations "
            f"checks on {v.get('tables')} tables, {v.get('found_rows')} of {v.get('expected_rows')} rows, "
            f"{v.get('schema_differences')} schema differences"
        )
        print(f"restore time (RTO) {d.get('rto_seconds')} s (phases: {d.get('phases_seconds')})")
        print(f"backup age at drill {d.get('backup_age_seconds')} s")
    evidence = f"s3://{catalog.store.bucket}/{catalog.layout.verifications_prefix(DATABASE, s['backup_id'])}"
    print(f"evidence           {evidence}")
    print(f"\nAirflow UI         {BASE}   login: admin / {password}")
    print("stop everything    make stop")
    print("=========================================================")
    if backup["state"] != "success" or drill["state"] != "success":
        sys.exit(1)


if __name__ == "__main__":
    main()
