"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from devstack.chain import make_chain


@pytest.fixture
def pg_cli_chain(tmp_path, pg_sample, pg_target_server, seaweed, bucket):
    """The sample PostgreSQL database, a drill/restore server and a bucket, configured for the CLI."""
    return make_chain(
        tmp_path,
        source=pg_sample,
        engine="postgres",
        s3=seaweed.connection(),
        bucket=bucket,
        target=pg_target_server.connection("postgres"),
    )


@pytest.fixture
def mariadb_cli_chain(tmp_path, mariadb_sample, mariadb_target_server, seaweed, bucket):
    """The sample MariaDB database, a drill/restore server and a bucket, configured for the CLI."""
    return make_chain(
        tmp_path,
        source=mariadb_sample,
        engine="mysql",
        s3=seaweed.connection(),
        bucket=bucket,
        target=mariadb_target_server.connection("mysql"),
    )
