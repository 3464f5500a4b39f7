"""A PostgreSQL 15 server archiving into a spool (one per module) and a bucket for its WAL."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator

import pytest

from devstack.postgres import PostgresServer
from devstack.wal import enable_archiving

#: The spool bound the archive step enforces on the module's server.
SPOOL_MAX_BYTES = 56 * 1024 * 1024  # three 16 MiB segments and change


@pytest.fixture(scope="module")
def archiving_pg(tmp_path_factory) -> Iterator[PostgresServer]:
    from tests.conftest import _reap_if_killed

    server = PostgresServer(tmp_path_factory.mktemp("walpg"), name="pg_wal")
    try:
        server.start()
        _reap_if_killed(server, server.base_dir, sig=signal.SIGQUIT)
        enable_archiving(server, server.base_dir / "spool", SPOOL_MAX_BYTES)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def wal_bucket(seaweed) -> Iterator[str]:
    name = f"t-wal-{uuid.uuid4().hex[:10]}"
    seaweed.create_bucket(name, object_lock=True, versioning=True)
    yield name
    try:
        seaweed.delete_bucket(name)
    except Exception:
        pass
