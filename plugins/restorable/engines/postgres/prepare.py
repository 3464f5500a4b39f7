"""Preparing a target server for a logical restore: the database, with the source's encoding and
locale, and the roles the dump's objects belong to.

Missing roles are created NOLOGIN and NOSUPERUSER: a restore must not hand anyone a way in or
more power than the objects need. Only ``INHERIT`` and ``CREATEDB`` are kept from the source;
every other attribute is dropped and logged. Memberships are granted only to roles created
here, since existing roles on the target are its own business.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from restorable.exceptions import ToolError
from restorable.metadata import SnapshotMetadata

log = logging.getLogger(__name__)

#: Role attributes a restore keeps when it creates a missing role; everything else (LOGIN,
#: SUPERUSER, CREATEROLE, REPLICATION, BYPASSRLS) is dropped and logged.
SAFE_ROLE_ATTRIBUTES = {"rolinherit": ("INHERIT", "NOINHERIT"), "rolcreatedb": ("CREATEDB", "NOCREATEDB")}
DROPPED_ROLE_ATTRIBUTES = ("rolsuper", "rolcreaterole", "rolreplication", "rolbypassrls", "rolcanlogin")


def create_database(admin: psycopg.Connection, database: str, metadata: SnapshotMetadata) -> None:
    """``CREATE DATABASE`` from template0 with the encoding and locale the source recorded."""
    props = metadata.schema.get("database") or {}
    query = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(database))
    if props.get("encoding"):
        query += sql.SQL(" ENCODING {}").format(sql.Literal(props["encoding"]))
    if props.get("collate"):
        query += sql.SQL(" LC_COLLATE {}").format(sql.Literal(props["collate"]))
    if props.get("ctype"):
        query += sql.SQL(" LC_CTYPE {}").format(sql.Literal(props["ctype"]))
    try:
        admin.execute(query)
    except psycopg.Error as exc:
        raise ToolError(
            f"cannot create database {database!r}: {str(exc).strip()}",
            database=database,
            hint=(
                "The target server must support the source's encoding and locale "
                f"({props}); install the locale or create the database by hand"
            ),
        ) from None


def ensure_roles(admin: psycopg.Connection, roles: list[dict[str, Any]], database: str) -> list[str]:
    """Create the roles the dump refers to that the target server lacks; return their names."""
    existing = {name for (name,) in admin.execute("SELECT rolname FROM pg_roles").fetchall()}
    created: list[str] = []
    for role in roles:
        name = role["name"]
        if name in existing or name.startswith("pg_"):
            continue
        options = [sql.SQL("NOLOGIN"), sql.SQL("NOSUPERUSER")]
        for attr, (yes, no) in SAFE_ROLE_ATTRIBUTES.items():
            if attr in role:
                options.append(sql.SQL(yes if role[attr] else no))
        dropped = [attr for attr in DROPPED_ROLE_ATTRIBUTES if role.get(attr)]
        try:
            admin.execute(sql.SQL("CREATE ROLE {} ").format(sql.Identifier(name)) + sql.SQL(" ").join(options))
        except psycopg.Error as exc:
            raise ToolError(
                f"cannot create role {name!r} that the dump's objects belong to: {str(exc).strip()}",
                database=database,
                hint="Restore as a role with CREATEROLE, or create the role on the target first",
            ) from None
        created.append(name)
        log.info("created role=%s for database=%s dropped_attributes=%s", name, database, ",".join(dropped))
    _grant_memberships(admin, [role for role in roles if role["name"] in created])
    return created


def _grant_memberships(admin: psycopg.Connection, roles: list[dict[str, Any]]) -> None:
    # A membership that cannot be granted (its parent is missing) costs a privilege, not the
    # restore: it is logged and the restore goes on.
    for role in roles:
        for membership in role.get("member_of", []):
            parent = membership["role"]
            grant = sql.SQL("GRANT {} TO {}").format(sql.Identifier(parent), sql.Identifier(role["name"]))
            if membership.get("admin_option"):
                grant += sql.SQL(" WITH ADMIN OPTION")
            try:
                admin.execute(grant)
            except psycopg.Error as exc:
                log.warning(
                    "membership not restored role=%s member_of=%s error=%r",
                    role["name"],
                    parent,
                    str(exc).strip(),
                )
