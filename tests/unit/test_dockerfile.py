"""The Dockerfile: on apache/airflow:3.3.2, and every apt package it installs resolves in Debian 12.

The image's base is Debian 12 (bookworm) and so is this machine: apt here answers for the image's
apt. No Docker engine runs here, so the image itself is not built.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def apt_packages() -> list[str]:
    """The packages of every ``apt-get install`` in the Dockerfile (continuation lines joined)."""
    text = dockerfile().replace("\\\n", " ")
    found = []
    for command in re.findall(r"apt-get install ([^&\n]+)", text):
        found += [word for word in command.split() if not word.startswith("-")]
    return found


def test_the_image_is_the_official_airflow_3_3_2_with_the_package():
    text = dockerfile()
    assert re.search(r"^FROM apache/airflow:3\.3\.2(-python3\.11)?$", text, re.M)
    assert set(apt_packages()) == {"postgresql-client-15", "mariadb-client", "age", "zstd"}
    assert "COPY --chown=airflow:0 plugins/restorable /opt/restorable/src/plugins/restorable" in text
    assert '"apache-airflow==3.3.2"' in text and "-c /opt/restorable/src/requirements.txt" in text
    assert "RESTORABLE_INCLUDE_DIR=/opt/airflow/include" in text
    # The installed package brings the plugin and the provider: the entry points are declared.
    pyproject = (REPO / "pyproject.toml").read_text()
    assert "[project.entry-points.apache_airflow_provider]" in pyproject
    assert '[project.entry-points."airflow.plugins"]' in pyproject


def test_every_apt_package_resolves_in_debian_12():
    release = Path("/etc/os-release").read_text()
    if "VERSION_CODENAME=bookworm" not in release or shutil.which("apt-cache") is None:
        pytest.fail("resolving the Dockerfile's packages needs Debian 12's apt (the image's base); run it there")
    packages = apt_packages()
    for package in packages:
        policy = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True, check=True).stdout
        candidate = re.search(r"Candidate: (\S+)", policy)
        assert candidate and candidate.group(1) != "(none)", f"{package} has no candidate:\n{policy}"
        assert " bookworm" in policy, f"{package} does not come from Debian 12:\n{policy}"
    # Together, with their dependencies, as the image's RUN line installs them.
    simulated = subprocess.run(
        ["apt-get", "install", "--simulate", "--no-install-recommends", *packages],
        capture_output=True,
        text=True,
    )
    assert simulated.returncode == 0, simulated.stderr
