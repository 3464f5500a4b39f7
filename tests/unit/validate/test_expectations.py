"""Extra-expectation files and the type mapping, without a database."""

from __future__ import annotations

from pathlib import Path

import pytest

from restorable.connections import ConnectionInfo
from restorable.exceptions import ConfigError
from restorable.validate.expectations import expectations_path, load_expectations, parse_expectations
from restorable.validate.facts import gx_type_for
from restorable.validate.gx import sqlalchemy_url

REPO = Path(__file__).resolve().parents[3]


def test_repo_expectation_files_all_parse():
    files = sorted((REPO / "include" / "expectations").glob("*.yaml"))
    assert files
    for path in files:
        parsed = load_expectations(path)
        assert parsed and all(parsed.values()), path


def test_class_and_snake_case_names_build_gx_expectations():
    import great_expectations.expectations as gxe

    parsed = parse_expectations(
        {
            "sales.customers": [
                {"expectation": "ExpectColumnValuesToNotBeNull", "kwargs": {"column": "email"}},
                {"expectation": "expect_column_values_to_be_between", "kwargs": {"column": "n", "min_value": 0}},
            ]
        },
        "shop.yaml",
    )
    first, second = parsed["sales.customers"]
    assert isinstance(first, gxe.ExpectColumnValuesToNotBeNull) and first.column == "email"
    assert isinstance(second, gxe.ExpectColumnValuesToBeBetween) and second.min_value == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"t": [{"expectation": "ExpectNothingAtAll"}]}, r"shop.yaml: t\[0\]: 'ExpectNothingAtAll' is not"),
        (
            {"t": [{"expectation": "ExpectColumnValuesToNotBeNull", "kwargs": {"colum": "x"}}]},
            r"shop.yaml: t\[0\]: invalid arguments for ExpectColumnValuesToNotBeNull",
        ),
        ({"t": [{"kwargs": {}}]}, r"shop.yaml: t\[0\]: expected a mapping with 'expectation'"),
        ({"t": {"expectation": "X"}}, r"shop.yaml: t: expected a list"),
        ({"t": [{"expectation": "ExpectColumnValuesToNotBeNull", "kwarg": {}}]}, r"unknown field\(s\) kwarg"),
        (["t"], r"shop.yaml: expected a mapping of table"),
    ],
)
def test_mistakes_name_the_file_table_and_entry(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_expectations(data, "shop.yaml")


def test_expectations_path_configured_default_and_absent(tmp_path):
    config = tmp_path / "restorable.yaml"
    assert expectations_path("shop", None, config) is None
    (tmp_path / "expectations").mkdir()
    (tmp_path / "expectations" / "shop.yaml").write_text("{}")
    assert expectations_path("shop", None, config) == tmp_path / "expectations" / "shop.yaml"
    assert expectations_path("shop", "x/y.yaml", config) == tmp_path / "x" / "y.yaml"


@pytest.mark.parametrize(
    ("engine", "declared", "observed"),
    [
        ("postgres", "bigint", "BIGINT"),
        ("postgres", "character varying(100)", "VARCHAR(100)"),
        ("postgres", "character(2)", "CHAR(2)"),
        ("postgres", "numeric(14,2)", "NUMERIC(14, 2)"),
        ("postgres", "timestamp with time zone", "TIMESTAMP WITH TIME ZONE"),
        ("postgres", "timestamp without time zone", "TIMESTAMP"),
        ("postgres", "double precision", "DOUBLE PRECISION"),
        ("postgres", "sales.order_status", None),
        ("postgres", "integer[]", None),
        ("mysql", "int(11)", "INTEGER"),
        ("mysql", "bigint(20) unsigned", "BIGINT"),
        ("mysql", "decimal(12,2)", "DECIMAL"),
        ("mysql", "enum('a','b')", None),
    ],
)
def test_declared_types_map_to_what_gx_observes(engine, declared, observed):
    assert gx_type_for(engine, declared) == observed


def test_sqlalchemy_url_quotes_credentials():
    conn = ConnectionInfo("x", "postgres", host="127.0.0.1", port=5432, login="u@x", password="p:/@%", schema="db")
    assert sqlalchemy_url(conn, "drill_x") == "postgresql+psycopg2://u%40x:p%3A%2F%40%25@127.0.0.1:5432/drill_x"
    my = ConnectionInfo("y", "mysql", host="h", port=3306, login="root", password="pw")
    assert sqlalchemy_url(my, "shopdb").startswith("mysql+pymysql://root:pw@h:3306/shopdb")
    with pytest.raises(ConfigError):
        sqlalchemy_url(ConnectionInfo("z", "aws"), "x")
