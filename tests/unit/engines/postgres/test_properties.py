"""How recorded ALTER DATABASE ... SET values are written back (no server needed to render SQL)."""

from __future__ import annotations

import pytest
from psycopg import sql

from restorable.engines.compare import digest_setting, seal_view
from restorable.engines.postgres.properties import _set_statement, apply_database_properties, seal_settings

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


def test_settings_are_sealed_and_compared_by_digest() -> None:
    props = {
        "owner": "app",
        "settings": ["app.jwt_secret=hunter2-very-secret", "work_mem=7MB"],
        "role_settings": {"reader": ["statement_timeout=5s"]},
    }
    sealed = seal_settings(props)
    assert sealed == {
        "settings": ["app.jwt_secret=hunter2-very-secret", "work_mem=7MB"],
        "role_settings": {"reader": ["statement_timeout=5s"]},
    }
    assert "hunter2" not in repr(props)  # what goes into the manifest
    assert props["settings"][0].startswith("app.jwt_secret=sha256:")
    # A restored database holds the values; seen through the manifest's digests, it matches.
    found = {"owner": "app", **sealed}
    assert seal_view(found, props) == props
    assert seal_view({**found, "settings": ["work_mem=7MB"]}, props)["settings"] != props["settings"]
    # Manifests with plain values (none sealed) compare as they are.
    assert seal_view(found, {"settings": ["work_mem=7MB"]}) == found


def test_a_digest_is_never_written_back_as_a_value() -> None:
    assert render(digest_setting("app.jwt_secret=x")) is None
    assert render("app.note=sha256:not-a-digest") is not None
