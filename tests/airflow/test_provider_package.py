"""The package installed into a fresh virtual environment with Airflow, no plugins/ folder copied.

Why a real fresh venv: what is proven is that the installed distribution's entry points alone give
Airflow the provider, the age identity connection form and the Backups page. uv builds the venv from
its cache in a few seconds here (Airflow pinned by requirements.txt; the package built from this
checkout, not editable), so nothing is borrowed from the development venv. The migrated SQLite
metadata database is copied from the session's (same Airflow version).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.airflow.conftest import REPO

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not installed: run `make venv` (it installs uv)")
    venv = tmp_path_factory.mktemp("provider") / "venv"
    python = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "python"
    started = time.monotonic()
    subprocess.run(
        [uv, "venv", "-q", "--python", str(python if python.exists() else "python3.11"), str(venv)], check=True
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            "-c",
            str(REPO / "requirements.txt"),
            "apache-airflow==3.3.2",
            str(REPO),
        ],
        check=True,
        env=env,
        timeout=600,
    )
    print(f"fresh venv with Airflow and the package in {time.monotonic() - started:.1f} s")
    return venv


def test_installed_package_brings_the_provider_the_age_form_and_the_backups_page(
    fresh_venv, restorable_env, airflow_db, tmp_path
):
    home = tmp_path / "airflow-home"
    for name in ("plugins", "dags"):
        (home / name).mkdir(parents=True)
    shutil.copyfile(airflow_db, home / "airflow.db")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(home / "plugins"),  # empty: the plugin must come from the package
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        # Every request is an admin's: what is tested is what the page shows, not the login (test_plugin does).
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
    )
    done = subprocess.run(
        [
            str(fresh_venv / "bin" / "python"),
            str(REPO / "tests" / "airflow" / "provider_probe.py"),
            str(tmp_path / "found.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads((tmp_path / "found.json").read_text())
    assert found["restorable_file"].startswith(str(fresh_venv))  # the installed copy, not plugins/
    assert found["provider"]["package-name"] == "restorable" and found["provider_version"] == "0.1.0"
    assert found["hook"] == "restorable.airflow.hooks.AgeIdentityHook"
    assert found["behaviour"]["relabeling"] == {"password": "Age identity (private key)"}
    assert {"host", "port", "schema", "login"} <= set(found["behaviour"]["hidden_fields"])
    assert found["plugins"]["restorable"].startswith("restorable==")  # loaded through the entry point
    (form,) = found["age_form"]
    assert form["hook_name"] == "Restorable age identity"
    assert form["standard_fields"]["password"]["title"] == "Age identity (private key)"
    assert all(form["standard_fields"][f]["hidden"] for f in ("host", "port", "login"))
    assert not form["standard_fields"]["password"]["hidden"]
    views = [v for p in found["plugins_api"]["plugins"] for v in p.get("external_views", [])]
    assert any(v["name"] == "Backups" and v["href"] == "/restorable/" for v in views)
    # The installed plugin serves the status board. Its rows are those of the DAGs the user may read
    # (whatever earlier tests registered in the copied metadata DB): tests/airflow/test_plugin.py checks rows.
    assert found["page_status"] == 200 and "<title>Restorable: backups</title>" in found["page"]
    assert "No database you may see." in found["page"] or "</table>" in found["page"]
