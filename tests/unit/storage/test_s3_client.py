"""s3_client_from_connection: a boto3 client from an Airflow ``aws`` connection, no server needed."""

from __future__ import annotations

import pytest

from restorable.connections import ConnectionInfo
from restorable.exceptions import ConfigError
from restorable.storage import s3_client_from_connection


def test_client_from_connection_fields() -> None:
    conn = ConnectionInfo(
        "c",
        "aws",
        login="AKIAEXAMPLE",
        password="secret",
        extra={
            "endpoint_url": "http://127.0.0.1:1",
            "region_name": "eu-west-1",
            "config_kwargs": {"connect_timeout": 3, "s3": {"addressing_style": "virtual"}},
        },
    )
    client = s3_client_from_connection(conn)
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:1"
    assert client.meta.config.connect_timeout == 3
    assert client.meta.config.s3["addressing_style"] == "virtual"
    assert client.meta.config.retries["total_max_attempts"] == 1

    path_style = s3_client_from_connection(
        ConnectionInfo("c", "aws", login="a", password="b", extra={"endpoint_url": "http://h:9"})
    )
    assert path_style.meta.config.s3["addressing_style"] == "path"

    with pytest.raises(ConfigError, match="without a secret"):
        s3_client_from_connection(ConnectionInfo("c", "aws", login="AKIA"))
    with pytest.raises(ConfigError, match="role_arn"):
        s3_client_from_connection(ConnectionInfo("c", "aws", extra={"role_arn": "arn:aws:iam::1:role/x"}))
