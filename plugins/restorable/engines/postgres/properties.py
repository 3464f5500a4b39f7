"""Give a restored PostgreSQL database the properties pg_dump keeps only with ``--create``.

A dump made without ``--create`` (the only kind that restores under another name, as drills and
side-by-side restores need) carries no owner, comment, connection limit, privileges or
``ALTER DATABASE ... SET`` settings of the database itself. The capture records them (section
``database_properties``); after pg_restore has finished, they are applied here, in the order that
keeps each step valid: owner first (the default privileges depend on it), then privileges,
comment, connection limit and settings. Settings come last so that one such as
``default_transaction_read_only`` cannot stop the restore itself.

Nothing here fails the restore: the data is in place and worth keeping. Each property that cannot
be applied (a role the target lacks, too few rights) is logged and returned as a note, and the
comparison with the manifest then reports the difference by name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from restorable.engines.compare import digest_setting, is_digest

log = logging.getLogger(__name__)

#: Settings whose stored value is an already quoted list (pg_dump's variable_is_guc_list_quote):
#: they are written back as they are, not as one string literal.
LIST_SETTINGS = frozenset(
    {
        "local_preload_libraries",
        "search_path",
        "session_preload_libraries",
        "shared_preload_libraries",
        "temp_tablespaces",
        "unix_socket_directories",
    }
)
#: A list value as PostgreSQL stores it: plain or double-quoted names, separated by commas.
_LIST_VALUE = re.compile(r'^\s*(?:"(?:[^"]|"")*"|[\w$.\-/]+)\s*(?:,\s*(?:"(?:[^"]|"")*"|[\w$.\-/]+)\s*)*$')
_PRIVILEGES = {"CONNECT", "CREATE", "TEMPORARY"}
_CURRENT_PRIVILEGES = """
select distinct case a.grantee when 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end,
       a.privilege_type, a.is_grantable
from pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
where d.datname = %s
"""


def seal_settings(props: dict[str, Any] | None) -> dict[str, Any]:
    """Replace the setting values in ``props`` with their sha256 (in place); return the values.

    A database setting can hold a secret (PostgREST's ``app.jwt_secret`` is the classic one); the
    manifest is not encrypted, so it keeps digests, and the values travel age-encrypted beside it.
    """
    if not props:
        return {}
    sealed = {"settings": list(props.get("settings") or []), "role_settings": dict(props.get("role_settings") or {})}
    props["settings"] = [digest_setting(s) for s in sealed["settings"]]
    props["role_settings"] = {
        role: [digest_setting(s) for s in settings] for role, settings in sealed["role_settings"].items()
    }
    return sealed


def apply_database_properties(
    admin: psycopg.Connection,
    database: str,
    props: dict[str, Any] | None,
    sealed: dict[str, Any] | None = None,
) -> list[str]:
    """Apply recorded ``props`` to ``database`` through ``admin`` (autocommit); return what was not applied.

    ``sealed`` holds the setting values the manifest keeps only as digests (``seal_settings``).
    """
    if not props:
        return []  # a backup made before these were recorded
    if sealed:
        props = {**props, **sealed}
    notes: list[str] = []
    target = sql.Identifier(database)
    roles = {name for (name,) in admin.execute("select rolname from pg_roles").fetchall()}

    def run(what: str, statement: sql.Composable) -> None:
        try:
            admin.execute(statement)
        except psycopg.Error as exc:
            notes.append(f"{what}: {str(exc).strip()}")

    owner = props.get("owner")
    if owner and owner in roles:
        run(f"owner {owner}", sql.SQL("ALTER DATABASE {} OWNER TO {}").format(target, sql.Identifier(owner)))
    elif owner:
        notes.append(f"owner {owner}: no such role on the target server")

    if "privileges" in props:
        _apply_privileges(admin, database, props["privileges"], roles, run, notes)

    run(
        "comment",
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(target, sql.Literal(props.get("comment"))),
    )
    if props.get("connection_limit") is not None:
        run(
            "connection limit",
            sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(
                target, sql.Literal(int(props["connection_limit"]))
            ),
        )
    for setting in props.get("settings") or []:
        statement = _set_statement(sql.SQL("ALTER DATABASE {}").format(target), setting)
        if statement is None:
            notes.append(f"setting {setting!r}: not a name=value pair this restore can write back")
        else:
            run(f"setting {setting!r}", statement)
    for role, settings in sorted((props.get("role_settings") or {}).items()):
        if role not in roles:
            notes.append(f"settings of role {role}: no such role on the target server")
            continue
        prefix = sql.SQL("ALTER ROLE {} IN DATABASE {}").format(sql.Identifier(role), target)
        for setting in settings:
            statement = _set_statement(prefix, setting)
            if statement is None:
                notes.append(f"setting {setting!r} of role {role}: not a name=value pair")
            else:
                run(f"setting {setting!r} of role {role}", statement)

    for note in notes:
        log.warning("database property not restored database=%s detail=%r", database, note)
    return notes


def _apply_privileges(
    admin: psycopg.Connection,
    database: str,
    recorded: list[str],
    roles: set[str],
    run: Callable[[str, sql.Composable], None],
    notes: list[str],
) -> None:
    """Grant what was recorded and is missing; revoke what the target has and was not recorded."""
    wanted: set[tuple[str, str, bool]] = set()
    for item in recorded:
        grantee, _, rest = item.partition(":")
        privilege, _, grantable = rest.partition(":")
        if privilege not in _PRIVILEGES:
            notes.append(f"privilege {item!r}: not a database privilege")
        elif grantee != "PUBLIC" and grantee not in roles:
            notes.append(f"privilege {item!r}: no such role on the target server")
        else:
            wanted.add((grantee, privilege, grantable == "grantable"))
    current = {(g, p, bool(o)) for g, p, o in admin.execute(_CURRENT_PRIVILEGES, (database,)).fetchall()}
    target = sql.Identifier(database)

    def who(grantee: str) -> sql.Composable:
        return sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)

    for grantee, privilege, _grantable in sorted(current - wanted):
        if not any(w[0] == grantee and w[1] == privilege for w in wanted):
            run(
                f"revoke {privilege} from {grantee}",
                sql.SQL("REVOKE {} ON DATABASE {} FROM {}").format(sql.SQL(privilege), target, who(grantee)),
            )
    for grantee, privilege, grantable in sorted(wanted - current):
        statement = sql.SQL("GRANT {} ON DATABASE {} TO {}").format(sql.SQL(privilege), target, who(grantee))
        if grantable:
            statement += sql.SQL(" WITH GRANT OPTION")
        run(f"grant {privilege} to {grantee}", statement)


def _set_statement(prefix: sql.Composable, setting: str) -> sql.Composable | None:
    """``<prefix> SET name TO value`` for one stored ``name=value``; None when it cannot be written safely."""
    name, sep, value = setting.partition("=")
    if is_digest(value):
        return None  # only a digest: the sealed values did not reach this restore
    if not sep or not re.fullmatch(r"[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)*", name):
        return None
    quoted_name = sql.SQL(".").join(sql.Identifier(part) for part in name.split("."))
    if name.lower() in LIST_SETTINGS:
        if not _LIST_VALUE.match(value):
            return None
        rendered: sql.Composable = sql.SQL(value)
    else:
        rendered = sql.Literal(value)
    return prefix + sql.SQL(" SET {} TO {}").format(quoted_name, rendered)
