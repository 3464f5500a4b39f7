"""What a backup records about the data it holds, and how a live database is described.

Neutral ground between the engines (which produce these) and the repository (which stores them
in manifests) and validation (which compares them): none of those imports another for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

#: What a restore target holds now: nothing by that name, an empty database, or objects.
TargetState = Literal["absent", "empty", "non_empty"]


@dataclass
class SnapshotMetadata:
    """Facts about the data in the dump, taken in the dump's own snapshot.

    ``row_counts`` keys are ``schema.table`` (PostgreSQL) or ``table`` (MySQL: the dump is of one
    database), written by :func:`object_key`: a name that needs quoting is double-quoted, so
    ``x."y.z"`` and ``"x.y".z`` stay two keys. ``schema`` is a JSON-able description that
    ``Engine.describe`` reproduces in exactly the same shape for a restored database, so the two
    can be compared key by key.

    The schema shape is shared by all engines (values are plain JSON)::

        {
          "tables": {"<schema>.<table>": {
              "columns": [{"name": "id", "type": "bigint", "nullable": false}, ...],  # ordered
              "primary_key": ["id"]}},
          "indexes": {"<schema>.<index>": "<definition>"},
          "constraints": {"<schema>.<table>.<name>": "<definition>"},
          "sequences": {"<schema>.<sequence>": {"last_value": 42, "is_called": true}},
          "views": {"<schema>.<view>": "<definition>"},
          "functions": {"<schema>.<name>(<args>)": "<md5 of definition>"},
          # engine-specific extra sections may be added, e.g. "triggers", "events", "large_objects"
        }

    Types are the engine's own spelling (``format_type`` in PostgreSQL, ``COLUMN_TYPE`` in MySQL).
    """

    server_version: str
    row_counts: dict[str, int]
    schema: dict[str, Any]
    #: Where the snapshot sits in the server's history: exported snapshot id, LSN, binlog file/pos.
    position: dict[str, Any] = field(default_factory=dict)
    #: PostgreSQL roles the database uses (names and attributes, never passwords).
    roles: list[dict[str, Any]] = field(default_factory=list)
    #: Tool versions used for the dump, e.g. {"pg_dump": "15.20"}.
    tools: dict[str, str] = field(default_factory=dict)
    #: Seconds any lock was held to line the snapshot up (MySQL's brief global read lock).
    lock_seconds: float | None = None
    #: Values a restore needs that may be secrets (``ALTER DATABASE ... SET app.jwt_secret``): never
    #: written into the manifest, which holds their sha256 only; the backup stores them
    #: age-encrypted beside it and a restore decrypts them with the same identity as the data.
    sealed: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Description:
    """Row counts and schema of a live database, in the shape of ``SnapshotMetadata``."""

    row_counts: dict[str, int]
    schema: dict[str, Any]


# -- keys ---------------------------------------------------------------------------------------
#: A name written as it is in a key; any other is double-quoted, its quotes doubled, as SQL does.
#: The rule is ours, not the server's (no keyword list), so every server version spells keys alike.
_BARE = re.compile(r"[a-z_][a-z0-9_]*")
_PART = re.compile(r'[a-z_][a-z0-9_]*|"(?:[^"]|"")*"', re.DOTALL)


def key_part(name: str) -> str:
    """One name as a key writes it: bare when it is lowercase letters, digits and ``_``, else quoted."""
    return name if _BARE.fullmatch(name) else '"' + name.replace('"', '""') + '"'


def object_key(*names: str) -> str:
    """The key of an object named by ``names`` (``schema, table`` or ``table, index``...)."""
    return ".".join(key_part(name) for name in names)


def split_key(key: str) -> list[str] | None:
    """The names of a key written by :func:`object_key`, or None when it is not one (a key of a
    manifest written before names were quoted, such as ``sales.Order Notes``)."""
    names: list[str] = []
    at = 0
    while True:
        match = _PART.match(key, at)
        if match is None:
            return None
        part = match.group()
        names.append(part[1:-1].replace('""', '"') if part.startswith('"') else part)
        at = match.end()
        if at == len(key):
            return names
        if key[at] != ".":
            return None
        at += 1


def legacy_key(key: str) -> str:
    """How a manifest written before names were quoted spelled ``key``: its names joined as they
    are. Only the part before an argument list (``f(integer)``) is unquoted; the server wrote those."""
    head, paren, tail = _split_arguments(key)
    out: list[str] = []
    at = 0
    while at < len(head):
        if head[at] == '"':
            end = at + 1
            while end < len(head):
                if head[end] == '"' and head[end + 1 : end + 2] == '"':
                    end += 2
                elif head[end] == '"':
                    break
                else:
                    end += 1
            out.append(head[at + 1 : end].replace('""', '"'))
            at = end + 1
        else:
            out.append(head[at])
            at += 1
    return "".join(out) + paren + tail


def _split_arguments(key: str) -> tuple[str, str, str]:
    """``key`` cut at its first ``(`` outside quotes: (head, "(", rest), or (key, "", "")."""
    quoted = False
    for i, ch in enumerate(key):
        if ch == '"':
            quoted = not quoted
        elif ch == "(" and not quoted:
            return key[:i], "(", key[i + 1 :]
    return key, "", ""
