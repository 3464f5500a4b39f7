"""What a backup records about the data it holds, and how a live database is described.

Neutral ground between the engines (which produce these) and the repository (which stores them
in manifests) and validation (which compares them): none of those imports another for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: What a restore target holds now: nothing by that name, an empty database, or objects.
TargetState = Literal["absent", "empty", "non_empty"]


@dataclass
class SnapshotMetadata:
    """Facts about the data in the dump, taken in the dump's own snapshot.

    ``row_counts`` keys are ``"schema.table"`` (PostgreSQL) or ``"table"`` (MySQL: the dump is
    of one database). ``schema`` is a JSON-able description that ``Engine.describe`` reproduces
    in exactly the same shape for a restored database, so the two can be compared key by key.

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
