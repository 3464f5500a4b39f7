"""SIGTERM to a running Restorable task, as Airflow 3 stops one (a timeout, "mark failed", a
worker shutdown; SIGKILL follows 5 s later).

The task runner answers SIGTERM by calling the operator's ``on_kill()`` from its signal handler
and raises nothing itself. The test runs ``dag.test()`` in a subprocess, so the installed task
runner's own handler is the one that receives the signal; the task's operator is a
``RestorableOperator`` whose ``execute`` waits on a child process and cleans up the way the core
does (``except BaseException``: ``stop_process``, then re-raise).
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.airflow.conftest import CONFIG_PATH

pytestmark = pytest.mark.airflow

_DAG_FILE = """
import datetime, subprocess
from airflow.sdk import DAG
from restorable.airflow.operators.base import RestorableOperator
from restorable.engines.process import stop_process

class WaitsOnAChild(RestorableOperator):
    def execute(self, context):
        child = subprocess.Popen(["sleep", "60"])
        print(f"child={child.pid}", flush=True)
        try:
            child.wait()
        except BaseException as exc:
            stop_process(child)
            print(f"cleaned-up={type(exc).__name__}", flush=True)
            raise

with DAG("on_kill_probe", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
    WaitsOnAChild(task_id="wait", database_id="shop", retries=0)
"""
# dag.test() runs DAGs that Airflow parsed from its DAG folder: the probe gets a folder of its own.
_SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("on_kill_probe", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
run = module.dag.test()
print(f"state={run.state}", flush=True)
"""


def test_the_task_runner_calls_on_kill_from_its_sigterm_handler():
    """What the operators rely on: if Airflow changes this, this test says so first."""
    from airflow.sdk.execution_time import task_runner

    source = inspect.getsource(task_runner._run_task_and_map_outcome)
    assert "signal.signal(signal.SIGTERM, _on_term)" in source
    assert "ti.task.on_kill()" in source


def test_sigterm_to_a_running_task_stops_its_child_and_fails_the_task(airflow_db, tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "on_kill_probe.py").write_text(_DAG_FILE)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(dags / "on_kill_probe.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "RESTORABLE_CONFIG": str(CONFIG_PATH),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        },
        cwd=tmp_path,
    )
    lines: list[str] = []
    child = None
    try:
        deadline = time.monotonic() + 120
        while child is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("child="):
                child = int(line.strip().split("=")[1])
        assert child is not None, "".join(lines[-40:])
        time.sleep(0.5)  # inside child.wait()
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        stopped_after = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    output = "".join(lines) + rest
    assert "cleaned-up=Interrupted" in output, output[-4000:]
    assert "state=failed" in output, output[-4000:]
    assert not Path(f"/proc/{child}").exists() or "sleep" not in Path(f"/proc/{child}/cmdline").read_text()
    assert stopped_after < 5 + 10, output[-2000:]  # cleanup itself is immediate; dag.test's own teardown follows
