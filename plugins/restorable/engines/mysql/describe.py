"""Row counts and schema description of one MariaDB/MySQL database, in the shared shape.

``capture`` (inside the dump's snapshot) and ``describe`` (on a restored copy) both call
:func:`describe_schema` and :func:`count_rows`, which run the SQL of ``include/sql/mysql``, so the
recorded and the found descriptions cannot drift apart. Keys are unqualified (``table``,
``table.index``): the dump is of one database and is restored under another name. They are
written by ``metadata.object_key``: ``"a.b".e`` and ``a."b.e"`` are two keys.
"""

from __future__ import annotations

from typing import Any

from restorable.engines.mysql.tools import quote_ident
from restorable.engines.sql_files import sql_with_identifiers
from restorable.metadata import object_key

BASE_TABLE_TYPES = ("BASE TABLE", "SYSTEM VERSIONED")


def load_sql(name: str) -> str:
    from restorable.engines.sql_files import load_sql as _load

    return _load("mysql", name)


def _rows(cur: Any, name: str, db: str) -> list[tuple]:
    cur.execute(load_sql(name), {"db": db})
    return list(cur.fetchall())


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else value


def table_kinds(cur: Any, db: str) -> list[tuple[str, str, str | None, str | None]]:
    """(name, TABLE_TYPE, ENGINE, TABLE_COLLATION) of every table-like object."""
    return [tuple(_text(v) for v in row) for row in _rows(cur, "tables", db)]


def base_tables(kinds: list[tuple]) -> list[str]:
    return [name for name, kind, *_ in kinds if kind in BASE_TABLE_TYPES]


def count_rows(cur: Any, db: str, tables: list[str]) -> dict[str, int]:
    """Exact ``COUNT(*)`` of each table, in the transaction ``cur`` runs in."""
    counts: dict[str, int] = {}
    for table in tables:
        cur.execute(sql_with_identifiers("mysql", "count_rows", table=f"{quote_ident(db)}.{quote_ident(table)}"))
        counts[object_key(table)] = int(cur.fetchone()[0])
    return counts


def _index_part(column: str | None, sub_part: Any, collation: str | None) -> str:
    text = quote_ident(column) if column is not None else "(expression)"
    if sub_part:
        text += f"({int(sub_part)})"
    if collation == "D":
        text += " DESC"
    return text


def describe_schema(cur: Any, db: str, flavour: str, kinds: list[tuple] | None = None) -> dict[str, Any]:
    """The shared-shape schema description of database ``db``."""
    kinds = kinds if kinds is not None else table_kinds(cur, db)
    bases = set(base_tables(kinds))
    tables: dict[str, dict[str, Any]] = {name: {"columns": [], "primary_key": []} for name in sorted(bases)}
    for table, column, ctype, nullable in _rows(cur, "columns", db):
        if _text(table) not in bases:
            continue
        tables[_text(table)]["columns"].append(
            {"name": _text(column), "type": _text(ctype), "nullable": _text(nullable) == "YES"}
        )

    index_parts: dict[tuple[str, str], dict[str, Any]] = {}
    for table, index, non_unique, itype, _seq, column, sub_part, collation in _rows(cur, "indexes", db):
        table, index = _text(table), _text(index)
        if table not in bases:
            continue
        entry = index_parts.setdefault(
            (table, index), {"unique": not int(non_unique), "type": _text(itype), "parts": []}
        )
        entry["parts"].append(_index_part(_text(column), sub_part, _text(collation)))
        if index == "PRIMARY":
            tables[table]["primary_key"].append(_text(column))
    indexes = {
        object_key(table, index): f"{'UNIQUE ' if e['unique'] else ''}{e['type']} ({', '.join(e['parts'])})"
        for (table, index), e in sorted(index_parts.items())
    }

    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for table, name, ctype, column, ref_schema, ref_table, ref_column, on_update, on_delete in _rows(
        cur, "constraints", db
    ):
        key = (_text(table), _text(name))
        entry = grouped.setdefault(
            key,
            {
                "type": _text(ctype),
                "cols": [],
                "ref_schema": _text(ref_schema),
                "ref_table": _text(ref_table),
                "ref_cols": [],
                "on_update": _text(on_update),
                "on_delete": _text(on_delete),
            },
        )
        if column is not None:
            entry["cols"].append(quote_ident(_text(column)))
        if ref_column is not None:
            entry["ref_cols"].append(quote_ident(_text(ref_column)))
    constraints: dict[str, str] = {}
    for (table, name), e in sorted(grouped.items()):
        text = f"{e['type']} ({', '.join(e['cols'])})"
        if e["type"] == "FOREIGN KEY":
            target = quote_ident(e["ref_table"] or "")
            if e["ref_schema"]:
                target = f"{quote_ident(e['ref_schema'])}.{target}"
            text += f" REFERENCES {target} ({', '.join(e['ref_cols'])})"
            text += f" ON UPDATE {e['on_update']} ON DELETE {e['on_delete']}"
        constraints[object_key(table, name)] = text
    checks = "check_constraints_mariadb" if flavour == "mariadb" else "check_constraints_mysql"
    for table, name, clause in _rows(cur, checks, db):
        constraints[object_key(_text(table), _text(name))] = f"CHECK ({_text(clause)})"

    views = {
        object_key(_text(name)): f"{_text(definition)} [check_option={_text(check)} security={_text(security)}]"
        for name, definition, check, security in _rows(cur, "views", db)
    }
    schema: dict[str, Any] = {
        "tables": {object_key(name): table for name, table in tables.items()},
        "indexes": dict(sorted(indexes.items())),
        "constraints": dict(sorted(constraints.items())),
        "views": views,
        "routines": {
            f"{_text(kind)} {object_key(_text(name))}": _text(digest)
            for kind, name, digest in _rows(cur, "routines", db)
        },
        "triggers": {object_key(_text(name)): _text(digest) for name, digest in _rows(cur, "triggers", db)},
        "events": {object_key(_text(name)): _text(digest) for name, digest in _rows(cur, "events", db)},
        "table_options": {
            object_key(name): {"engine": engine, "collation": collation}
            for name, kind, engine, collation in kinds
            if kind in BASE_TABLE_TYPES
        },
    }
    sequences = sorted(name for name, kind, *_ in kinds if kind == "SEQUENCE")
    if sequences:
        schema["sequences"] = _describe_sequences(cur, db, sequences)
    return schema


def _describe_sequences(cur: Any, db: str, names: list[str]) -> dict[str, Any]:
    """MariaDB sequences in the shape ``compare`` understands (``last_value``/``is_called``).

    The recorded value is the next value not yet handed out by the server's cache; the dump
    reads it a moment later (``SETVAL(seq, n, 0)``), so a restored one may be ahead, never behind.
    """
    out: dict[str, Any] = {}
    for name in names:
        cur.execute(sql_with_identifiers("mysql", "sequence_state", sequence=f"{quote_ident(db)}.{quote_ident(name)}"))
        nxt, minimum, maximum, start, increment, cache, cycle = cur.fetchone()
        out[object_key(name)] = {
            "last_value": int(nxt),
            "is_called": False,
            "increment": int(increment),
            "minimum": int(minimum),
            "maximum": int(maximum),
            "start": int(start),
            "cache": int(cache),
            "cycle": bool(cycle),
        }
    return out


def definers(cur: Any, db: str) -> list[dict[str, Any]]:
    """Accounts that the database's views/routines/triggers/events run as, with their objects."""
    by_account: dict[str, list[str]] = {}
    for kind, name, definer in _rows(cur, "definers", db):
        by_account.setdefault(_text(definer), []).append(f"{_text(kind)} {_text(name)}")
    return [{"definer": account, "objects": objects} for account, objects in sorted(by_account.items())]
