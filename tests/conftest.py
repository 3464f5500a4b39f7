"""Shared fixtures: throwaway real servers (PostgreSQL 15, MariaDB 10.11, SeaweedFS S3).

Servers start lazily, the first time a test asks for them, and stop at the end of the session.
Each listens on a free port on 127.0.0.1 with a random password. A missing program fails the
test with the package to install: there are no skips.
"""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from restorable.connections import ConnectionInfo


def pytest_configure(config: pytest.Config) -> None:
    # A SIGTERM (a CI step's timeout, `kill`) would end pytest without teardown and leave the
    # servers running: treat it like Ctrl-C, which tears fixtures down.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
    # pyproject declares these too; registering here keeps a bare `pytest tests/...` strict-clean.
    config.addinivalue_line("markers", "integration: needs the local stack (PostgreSQL, MariaDB, SeaweedFS)")
    config.addinivalue_line("markers", "airflow: runs DAGs with dag.test() on a SQLite metadata DB")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _reap_if_killed(server, *paths, sig: int = signal.SIGTERM) -> None:
    """Should this pytest process die without teardown (SIGKILL), a watcher stops ``server``."""
    from devstack import start_reaper

    start_reaper(os.getpid(), server.pid, [p for p in paths if p], sig=sig)


def _unique_name(request: pytest.FixtureRequest, prefix: str, limit: int) -> str:
    """A unique, readable lowercase name (test name + random suffix) for buckets and databases."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    suffix = uuid.uuid4().hex[:8]
    room = limit - len(prefix) - len(suffix) - 2
    return f"{prefix}-{base[:room].strip('-')}-{suffix}".replace("--", "-")


@pytest.fixture(scope="session")
def localstack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("localstack")


# -- PostgreSQL ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_server(localstack_dir: Path) -> Iterator:
    from devstack.postgres import PostgresServer

    server = PostgresServer(localstack_dir, name="pg_source")
    try:
        server.start()
        _reap_if_killed(server, server.base_dir, sig=signal.SIGQUIT)  # immediate shutdown
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_target_server(localstack_dir: Path) -> Iterator:
    from devstack.postgres import PostgresServer

    server = PostgresServer(localstack_dir, name="pg_target")
    try:
        server.start()
        _reap_if_killed(server, server.base_dir, sig=signal.SIGQUIT)  # immediate shutdown
        yield server
    finally:
        server.stop()


_PG_TEMPLATE = "sample_template"


@pytest.fixture(scope="session")
def _pg_sample_template(pg_server) -> str:
    """The sample database, generated once per session and copied per test."""
    from devstack.sample_postgres import create_sample_database

    create_sample_database(pg_server.connection(_PG_TEMPLATE), scale_mb=3.0, seed=1)
    return _PG_TEMPLATE


@pytest.fixture
def pg_sample(pg_server, _pg_sample_template: str, request: pytest.FixtureRequest) -> Iterator[ConnectionInfo]:
    """A fresh sample "shop" database (~3 MB) on ``pg_server``, dropped after the test."""
    name = _unique_name(request, "shop", 63).replace("-", "_")
    conn = pg_server.create_database(name, template=_pg_sample_template)
    yield conn
    pg_server.drop_database(name)


# -- MariaDB ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def mariadb_server(localstack_dir: Path) -> Iterator:
    from devstack.mariadb import MariaDBServer

    server = MariaDBServer(localstack_dir, name="mariadb_source")
    try:
        server.start()
        _reap_if_killed(server, server.base_dir)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb_target_server(localstack_dir: Path) -> Iterator:
    from devstack.mariadb import MariaDBServer

    server = MariaDBServer(localstack_dir, name="mariadb_target")
    try:
        server.start()
        _reap_if_killed(server, server.base_dir)
        yield server
    finally:
        server.stop()


@pytest.fixture
def mariadb_sample(mariadb_server, request: pytest.FixtureRequest) -> Iterator[ConnectionInfo]:
    """A fresh sample "shopdb" database (~3 MB) on ``mariadb_server``, dropped after the test."""
    from devstack.sample_mariadb import create_sample_database

    name = _unique_name(request, "shopdb", 64).replace("-", "_")
    conn = mariadb_server.connection(name)
    create_sample_database(conn, scale_mb=3.0, seed=1)
    yield conn
    mariadb_server.drop_database(name)


# -- SeaweedFS -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def seaweed(localstack_dir: Path) -> Iterator:
    from devstack.seaweedfs import SeaweedS3

    server = SeaweedS3(localstack_dir / "seaweedfs")
    try:
        server.start()
        _reap_if_killed(server, server.state_dir)
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(seaweed, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh bucket on ``seaweed`` with versioning and Object Lock enabled."""
    name = _unique_name(request, "t", 63)
    seaweed.create_bucket(name, object_lock=True, versioning=True)
    yield name
    # Each bucket holds a volume of its own: give it back (best effort; locked objects may stay).
    try:
        seaweed.delete_bucket(name)
    except Exception:  # a paused or killed server in a fault test must not fail teardown
        pass
