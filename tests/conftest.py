"""Shared fixtures: throwaway real servers (PostgreSQL 15, MariaDB 10.11, SeaweedFS S3).

Servers start lazily, the first time a test asks for them, and stop at the end of the session.
Each listens on a free port on 127.0.0.1 with a random password. A missing program fails the
test with the package to install: there are no skips.

Markers are kept honest at collection (see ``pytest_collection_modifyitems``): a test that starts a
server must be marked ``integration`` or ``airflow``, so ``-m "not integration and not airflow"``
starts none; a test file sets ``pytestmark`` once; files under tests/integration and tests/airflow
carry their directory's marker.
"""

from __future__ import annotations

import ast
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


# -- honest markers -------------------------------------------------------------------------
#: Fixtures that start a server (a process, or a listening socket), and the markers that allow a
#: test to use them. A test's fixture closure is checked, so what is built on these (pg_sample,
#: bucket, pg_cli_chain, restorable_env, ...) counts too.
_SERVER_MARKERS = frozenset({"integration", "airflow"})
FIXTURE_MARKERS: dict[str, frozenset[str]] = {
    "pg_server": _SERVER_MARKERS,
    "pg_target_server": _SERVER_MARKERS,
    "mariadb_server": _SERVER_MARKERS,
    "mariadb_target_server": _SERVER_MARKERS,
    "seaweed": _SERVER_MARKERS,
    "seaweed_roles": _SERVER_MARKERS,  # tests/integration/lifecycle/test_apply.py
    "roles_s3": _SERVER_MARKERS,  # tests/integration/lifecycle/test_least_privilege_chain.py
    "alert_receiver": _SERVER_MARKERS,  # tests/airflow/conftest.py: a local HTTP webhook
    "webhook": _SERVER_MARKERS,  # tests/integration/test_alert_path.py: Alertmanager's receiver
    "airflow_db": frozenset({"airflow"}),  # migrates Airflow's metadata DB
    "archiving_pg": _SERVER_MARKERS,  # tests/integration/wal/conftest.py
    "own_seaweed": _SERVER_MARKERS,  # tests/integration/wal/test_faults.py
    "region_b": _SERVER_MARKERS,  # tests/integration/copies/test_copies.py
    "own_primary": _SERVER_MARKERS,  # tests/integration/copies/test_copies.py
    "openbao": _SERVER_MARKERS,  # OpenBao transit, the KMS of envelope mode
    "moto_kms": _SERVER_MARKERS,  # moto's server, for the AWS KMS API only
    "binlog_mariadb": _SERVER_MARKERS,  # tests/integration/binlog/conftest.py
    "dag_binlog_mariadb": _SERVER_MARKERS,  # tests/airflow/test_binlog_dags.py
}
#: Every test file under tests/<directory>/ carries this marker in its ``pytestmark``.
DIRECTORY_MARKERS = {"integration": "integration", "airflow": "airflow"}
_TESTS = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects anything: every file is checked on every run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problems: list[str] = []
    for path in sorted({item.path for item in items}):
        problems += _pytestmark_problems(path, items)
    for item in items:
        marks = {mark.name for mark in item.iter_markers()}
        unmarked = [f for f in item.fixturenames if f in FIXTURE_MARKERS and not marks & FIXTURE_MARKERS[f]]
        if unmarked:
            wanted = " or ".join(
                f"pytest.mark.{m}" for m in sorted(set().union(*(FIXTURE_MARKERS[f] for f in unmarked)))
            )
            fixtures = ", ".join(repr(f) for f in unmarked)
            problems.append(
                f"{item.nodeid}: uses fixture {fixtures}, which starts a server, but is not marked {wanted}"
            )
    if problems:
        raise pytest.UsageError("test markers are not honest:\n  " + "\n  ".join(problems))


def _pytestmark_problems(path: Path, items: list[pytest.Item]) -> list[str]:
    """A test file assigns ``pytestmark`` at most once, and once with its directory's marker."""
    assignments = [
        node
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign)
        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in _targets(node))
    ]
    where = path.relative_to(_TESTS.parent) if path.is_relative_to(_TESTS.parent) else path
    if len(assignments) > 1:
        lines = ", ".join(str(node.lineno) for node in assignments)
        return [f"{where}: sets pytestmark {len(assignments)} times (lines {lines}); set it once, at the top"]
    if not path.is_relative_to(_TESTS) or len(path.relative_to(_TESTS).parts) < 2:
        return []
    wanted = DIRECTORY_MARKERS.get(path.relative_to(_TESTS).parts[0])
    module = next((item.module for item in items if item.path == path and hasattr(item, "module")), None)
    declared = getattr(module, "pytestmark", [])
    declared = declared if isinstance(declared, list) else [declared]
    if wanted and wanted not in {mark.name for mark in declared}:
        return [
            f"{where}: every file under tests/{where.parts[1]}/ must set pytestmark = pytest.mark.{wanted} at the top"
        ]
    return []


def _targets(node: ast.Assign | ast.AnnAssign | ast.AugAssign) -> list[ast.expr]:
    return list(node.targets) if isinstance(node, ast.Assign) else [node.target]


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


# -- OpenBao (transit: the KMS of envelope mode) ---------------------------------------------------
@pytest.fixture(scope="session")
def openbao(localstack_dir: Path) -> Iterator:
    """OpenBao on raft storage with transit, the key ``restorable`` and a token per duty (devstack/openbao.py)."""
    from devstack.openbao import OpenBao

    server = OpenBao(localstack_dir / "openbao")
    try:
        server.start()
        _reap_if_killed(server, server.state_dir)
        server.setup_transit()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_kms(localstack_dir: Path) -> Iterator:
    """moto's server for the AWS KMS API (no key policies, no real rotation: see devstack/moto_kms.py)."""
    from devstack.moto_kms import MotoKms

    server = MotoKms(localstack_dir / "moto")
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


@pytest.fixture(autouse=True)
def _no_airflow_task_context_left() -> Iterator[None]:
    """Airflow's task runner sets ``AIRFLOW_CTX_*`` in ``os.environ`` while a task runs under
    dag.test() and leaves them there; a CLI started by a later test in the same process would
    inherit a DAG run's id as its own correlation id. Each test starts and ends without them."""
    yield
    for name in [n for n in os.environ if n.startswith("AIRFLOW_CTX_")]:
        del os.environ[name]
