"""A MariaDB 10.11 server with the binary log on (one per module: these tests flush and purge its
binlogs), a bucket, and a Restorable config archiving the server's binlogs."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from devstack.binlog import BinlogChain, make_binlog_chain
from devstack.mariadb import MariaDBServer


@pytest.fixture(scope="module")
def binlog_mariadb(tmp_path_factory) -> Iterator[MariaDBServer]:
    yield from mariadb_with_binlog(tmp_path_factory)


def mariadb_with_binlog(tmp_path_factory) -> Iterator[MariaDBServer]:
    """A throwaway MariaDB (binlog on, ROW, server_id 1) for the fixture that yields from this."""
    from tests.conftest import _reap_if_killed

    server = MariaDBServer(tmp_path_factory.mktemp("blmaria"), name="mariadb_binlog")
    try:
        server.start()
        _reap_if_killed(server, server.base_dir)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def binlog_chain(tmp_path_factory, binlog_mariadb, mariadb_target_server, seaweed) -> BinlogChain:
    bucket = f"t-binlog-{uuid.uuid4().hex[:10]}"
    seaweed.create_bucket(bucket, object_lock=True, versioning=True)
    binlog_mariadb.execute("CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4")
    # The archiver reads the binlogs with the least rights the README documents, nothing more.
    password = uuid.uuid4().hex
    binlog_mariadb.execute("CREATE USER 'restorable_repl'@'127.0.0.1' IDENTIFIED BY %s", (password,))
    binlog_mariadb.execute("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'restorable_repl'@'127.0.0.1'")
    repl = binlog_mariadb.connection("shop", login="restorable_repl", password=password)
    spool = tmp_path_factory.mktemp("blspool")
    return make_binlog_chain(
        tmp_path_factory.mktemp("blchain"),
        source=binlog_mariadb.connection("shop"),
        target=mariadb_target_server.connection("mysql"),
        s3=seaweed.connection(),
        bucket=bucket,
        spool_dir=spool,
        extra_connections={"repl": repl},
    )


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def gtid_seq(server: MariaDBServer) -> int:
    return int(server.query("SELECT @@gtid_binlog_pos")[0][0].split("-")[-1])


def archived_through(chain: BinlogChain, seq: int) -> bool:
    return int(chain.state().get("archived_gtid_seq", {}).get("0", -1)) >= seq


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)
