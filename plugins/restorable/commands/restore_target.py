"""May this restore write here? The one place that decides, for the CLI, the DAGs and the drill.

A restore writes into a target database on a target server. Three rules decide whether it may:

- A target that holds objects is refused unless ``overwrite`` was asked for
  (``RestoreRefused.not_empty``: one wording, whoever refuses).
- A drill never writes to its source: not the source's database, and not a scratch database
  that happens to carry the source's name, on the source's server. Servers are compared as
  host:port with the host case-insensitive, loopback spellings as one host and a missing port as
  the engine's default; database names case-insensitively (MySQL may fold case, and refusing
  too much is cheap where restoring over production is not).
- A drill restores into a scratch database of its own (``drill_<db>_<8 hex>``), the same name
  for every task of one Airflow run, a random one for a CLI run; only such names are dropped.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from restorable.connections import ConnectionInfo
from restorable.exceptions import ConfigError, RestoreRefused
from restorable.metadata import TargetState

if TYPE_CHECKING:
    from restorable.engines.base import Engine
    from restorable.services import Services

SCRATCH_PREFIX = "drill_"
#: Scratch names stay within PostgreSQL's 63 and MySQL's 64 characters.
_SCRATCH_DB_PART = 40
_DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306}
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


def scratch_database_name(database_id: str, run_key: str | None = None) -> str:
    """``drill_<db>_<8 hex>``: derived from ``run_key`` (Airflow's ``dag_id/run_id``) so every
    task of a run names the same database, random when there is no run (a CLI drill)."""
    suffix = hashlib.sha256(run_key.encode()).hexdigest()[:8] if run_key else secrets.token_hex(4)
    return f"{SCRATCH_PREFIX}{database_id[:_SCRATCH_DB_PART]}_{suffix}"


def is_scratch_name(database: str) -> bool:
    """Whether ``database`` is named like a drill's scratch database (the only kind a drill drops)."""
    return database.startswith(SCRATCH_PREFIX) and len(database) > len(SCRATCH_PREFIX)


def _server(conn: ConnectionInfo) -> tuple[str, int | None]:
    host = str(conn.host or "").strip().lower()
    host = "localhost" if host in _LOOPBACK or not host else host
    return host, conn.port or _DEFAULT_PORTS.get(conn.conn_type)


def _same_name(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and str(a).lower() == str(b).lower()


def targets_source(source: ConnectionInfo, target: ConnectionInfo, scratch: str) -> bool:
    """True when the drill would write to the source: same server, and the target connection's
    database or the scratch database is the source's database."""
    if _server(source) != _server(target):
        return False
    return _same_name(target.schema, source.schema) or _same_name(scratch, source.schema)


def refuse_source(source: ConnectionInfo, target: ConnectionInfo, scratch: str, *, database_id: str) -> None:
    """Raise ``RestoreRefused`` when a drill into ``scratch`` on ``target`` would write to the source."""
    if targets_source(source, target, scratch):
        raise RestoreRefused(
            f"the drill target {target.with_schema(scratch).describe()} is the source database {source.describe()}",
            database=database_id,
            hint="Point restore_target_conn_id (or --target) at another server, or at least another database",
        )


def check_target(
    engine: Engine,
    target: ConnectionInfo,
    database: str,
    *,
    overwrite: bool,
    source: ConnectionInfo | None = None,
    database_id: str | None = None,
    backup_id: str | None = None,
) -> TargetState:
    """Decide whether a restore may write ``database`` on ``target``; return what it holds now.

    ``source`` is given by drills: a target that is the source is refused whatever it holds.
    A non-empty target is refused unless ``overwrite``. Nothing is written either way.
    """
    if source is not None:
        refuse_source(source, target, database, database_id=database_id or database)
    state = engine.target_state(target, database)
    if not overwrite and state == "non_empty":
        raise RestoreRefused.not_empty(database, target.describe(), database_id=database_id, backup_id=backup_id)
    return state


@dataclass(frozen=True)
class DrillTarget:
    """Where a drill restores: the drill server, the scratch database on it, and the source it must not be."""

    source: ConnectionInfo
    server: ConnectionInfo
    scratch: str

    @property
    def conn(self) -> ConnectionInfo:
        """The scratch database itself (for describing and validating the restored copy)."""
        return self.server.with_schema(self.scratch)


def drill_target(
    services: Services, database_id: str, scratch: str, *, target_conn_id: str | None = None
) -> DrillTarget:
    """The drill's target: ``target_conn_id``, else the database's ``restore_target_conn_id``;
    refused when it is the source or ``scratch`` is not a scratch name."""
    db = services.config.database(database_id)
    conn_id = target_conn_id or db.restore_target_conn_id
    if not conn_id:
        raise ConfigError(
            f"database {db.id!r} has no restore_target_conn_id; a drill needs an isolated server",
            database=db.id,
            hint="Set restore_target_conn_id in the config to a connection on a scratch server (or pass --target)",
        )
    if not is_scratch_name(scratch):
        raise RestoreRefused(
            f"{scratch!r} is not a scratch database name (drills restore into and drop {SCRATCH_PREFIX}* only)",
            database=db.id,
            hint=f"Leave the scratch name to Restorable, or start it with {SCRATCH_PREFIX}",
        )
    source = services.resolve(db.conn_id)
    server = services.resolve(conn_id)
    refuse_source(source, server, scratch, database_id=db.id)
    return DrillTarget(source, server, scratch)


def blank(value: Any) -> bool:
    """An unset parameter: None, empty, or what a template renders None as."""
    return value is None or (isinstance(value, str) and value.strip() in ("", "None"))


def restore_target(
    services: Services,
    database_id: str,
    *,
    target_conn_id: str | None,
    target_database: str | None,
    scratch: str,
) -> tuple[ConnectionInfo, str]:
    """Where a DAG's restore goes, from its (possibly blank) parameters: the named connection,
    else the database's drill server; the named database, else the run's scratch database."""
    conn_id = None if blank(target_conn_id) else str(target_conn_id).strip()
    conn_id = conn_id or services.config.database(database_id).restore_target_conn_id
    if not conn_id:
        raise ConfigError(
            f"no target connection for database {database_id!r}",
            database=database_id,
            hint="Give target_conn_id, or set restore_target_conn_id in the config",
        )
    database = None if blank(target_database) else str(target_database).strip()
    return services.resolve(conn_id), database or scratch
