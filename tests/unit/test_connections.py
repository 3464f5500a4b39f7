import json

import pytest

from restorable.connections import resolve_connection
from restorable.exceptions import ConfigError


def test_uri_form_with_percent_encoding_and_extras():
    env = {"AIRFLOW_CONN_SHOP_PG": "postgres://bob:p%40ss%2Fword@db.internal:6432/shop?sslmode=require"}
    conn = resolve_connection("shop_pg", env)
    assert (conn.conn_type, conn.host, conn.port, conn.login, conn.schema) == (
        "postgres",
        "db.internal",
        6432,
        "bob",
        "shop",
    )
    assert conn.password == "p@ss/word"
    assert conn.extra == {"sslmode": "require"}
    assert "p@ss" not in repr(conn) and "p@ss" not in conn.describe()


def test_json_form_with_extra():
    env = {
        "AIRFLOW_CONN_RESTORABLE_S3": json.dumps(
            {"conn_type": "aws", "login": "AK", "password": "SK", "extra": {"endpoint_url": "http://127.0.0.1:8333"}}
        )
    }
    conn = resolve_connection("restorable_s3", env)
    assert conn.conn_type == "aws" and conn.extra["endpoint_url"] == "http://127.0.0.1:8333"


def test_airflow_extra_param_and_scheme_alias():
    conn = resolve_connection("postgresql://u:p@h:5/d?__extra__=%7B%22a%22%3A+1%7D", {})
    assert conn.conn_type == "postgres" and conn.extra == {"a": 1}


def test_missing_connection_names_the_variable():
    with pytest.raises(ConfigError) as info:
        resolve_connection("drill_pg", {})
    assert "AIRFLOW_CONN_DRILL_PG" in str(info.value)


def test_bad_json_connection():
    with pytest.raises(ConfigError) as info:
        resolve_connection("x", {"AIRFLOW_CONN_X": "{not json"})
    assert "'x'" in str(info.value)
