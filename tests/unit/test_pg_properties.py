"""How recorded ALTER DATABASE ... SET values are written back (no server needed to render SQL)."""

from __future__ import annotations

import pytest
from psycopg import sql

from restorable.engines.pg_properties import _set_statement, apply_database_properties

PREFIX = sql.SQL("ALTER DATABASE {}").format(sql.Identifier("shop"))


def render(setting: str) -> str | None:
    statement = _set_statement(PREFIX, setting)
    return None if statement is None else statement.as_string(None)


def test_plain_values_become_literals() -> None:
    assert render("work_mem=7MB") == """ALTER DATABASE "shop" SET "work_mem" TO '7MB'"""
    assert render("DateStyle=ISO, MDY") == """ALTER DATABASE "shop" SET "DateStyle" TO 'ISO, MDY'"""
    # A quote in the value stays inside the literal.
    assert render("application_name=it's") == """ALTER DATABASE "shop" SET "application_name" TO 'it''s'"""
    # Custom (dotted) settings keep their two parts.
    assert render("app.tenant=acme") == """ALTER DATABASE "shop" SET "app"."tenant" TO 'acme'"""


def test_list_settings_are_written_as_stored() -> None:
    # As one literal, search_path would become a single schema named 'sales, "$user", public'.
    assert render('search_path=sales, "$user", public') == (
        """ALTER DATABASE "shop" SET "search_path" TO sales, "$user", public"""
    )
    assert render('search_path="we""ird", public') == """ALTER DATABASE "shop" SET "search_path" TO "we""ird", public"""


@pytest.mark.parametrize(
    "setting",
    [
        "no equals sign",
        "bad name=1",
        "x;drop table t=1",
        "search_path=public; drop table t",  # a list value that is not a list of names
        "search_path=public' or '1",
    ],
)
def test_what_cannot_be_written_safely_is_refused(setting: str) -> None:
    assert render(setting) is None


def test_backups_made_before_properties_were_recorded_apply_nothing() -> None:
    assert apply_database_properties(None, "shop", None) == []  # type: ignore[arg-type]
    assert apply_database_properties(None, "shop", {}) == []  # type: ignore[arg-type]
