"""May this restore write here? The one place that decides, for the CLI, the DAGs and the drill.

A restore writes into a target database on a target server. These rules decide whether it may,
all before anything is created there:

- Never into a database the server keeps for itself (templates, the maintenance database, the
  system schemas), nor under a name longer than the server keeps whole: PostgreSQL truncates a
  long name silently, so ``--overwrite`` of one long name could replace another database.
- A target that holds objects is refused unless ``overwrite`` was asked for
  (``RestoreRefused.not_empty``: one wording, whoever refuses).
- A drill never writes to its source's server. Servers are compared by the identity the server
  reports (``Engine.server_identity``: PostgreSQL's ``system_identifier``, MySQL's server uuid),
  so another host name, address or socket for the same server is still the source. Without
  asking the servers, host:port is compared (host case-insensitive, loopback spellings as one
  host, a missing port as the engine's default): a source that cannot be reached is decided
  that way, with a warning, because a drill must still run while its source is down.
- A drill restores into a scratch database of its own (``drill_<db>_<8 hex>``), the same name
  for every task of one Airflow run, a random one for a CLI run; only such names are dropped.
- A target connection given as a URL carrying a password is refused (``--target``): argv is
  readable by every user of the machine.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from restorable.connections import ConnectionInfo, parse_connection_uri
from restorable.engines import engine_for
from restorable.exceptions import ConfigError, RestoreRefused, SourceUnreachable
from restorable.metadata import TargetState

if TYPE_CHECKING:
    from restorable.engines.base import Engine
    from restorable.services import Services

SCRATCH_PREFIX = "drill_"
#: Scratch names stay within PostgreSQL's 63 and MySQL's 64 characters.
_SCRATCH_DB_PART = 40
_DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306}
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}

log = logging.getLogger(__name__)


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
    """True when the connections' text alone shows the drill would write to the source's server:
    the same host:port, or the scratch database named like the source's database."""
    return _server(source) == _server(target) or _same_name(scratch, source.schema)


def same_server(
    engine: Engine, source: ConnectionInfo, target: ConnectionInfo, recorded_identity: str | None = None
) -> bool:
    """Whether ``target`` reaches the server of ``source``, by the identity both servers report.

    A source that cannot be reached is compared by the identity its backup recorded
    (``recorded_identity``, the manifest's ``source.server_identity``), else decided by the
    connections' text (``targets_source``) and logged: drills restore from the bucket and must
    still run while the source is down.
    """
    try:
        source_identity = engine.server_identity(source)
    except SourceUnreachable as exc:
        if recorded_identity:
            log.warning(
                "the source server cannot be reached; comparing the drill target with the identity its "
                "backup recorded source=%s target=%s error=%s",
                source.describe(),
                target.describe(),
                exc.message,
            )
            return recorded_identity == engine.server_identity(target)
        log.warning(
            "the source server cannot be reached to compare its identity with the drill target's; "
            "deciding by host and port source=%s target=%s error=%s",
            source.describe(),
            target.describe(),
            exc.message,
        )
        return False
    return source_identity == engine.server_identity(target)


def refuse_source(
    engine: Engine | None,
    source: ConnectionInfo,
    target: ConnectionInfo,
    scratch: str,
    *,
    database_id: str,
    recorded_identity: str | None = None,
) -> None:
    """Raise ``RestoreRefused`` when a drill into ``scratch`` on ``target`` would write to the
    source's server (by text first, then, with an ``engine``, by the servers' identity)."""
    if targets_source(source, target, scratch) or (
        engine is not None and same_server(engine, source, target, recorded_identity)
    ):
        raise RestoreRefused(
            f"the drill target {target.with_schema(scratch).describe()} is the source database's server "
            f"({source.describe()}): a drill never writes there",
            database=database_id,
            hint="Point restore_target_conn_id (or --target) at another server",
        )


def refuse_reserved(
    engine: Engine, target: ConnectionInfo, database: str, *, database_id: str | None, backup_id: str | None = None
) -> None:
    """Raise ``RestoreRefused`` for a database the server keeps for itself, or a name longer than
    the server keeps whole."""
    if database.lower() in engine.reserved_databases(target):
        raise RestoreRefused(
            f"database {database!r} on {target.describe()} belongs to the server (a template, maintenance or "
            "system database); a restore never writes into it",
            database=database_id or database,
            backup_id=backup_id,
            hint="Restore into a database of its own name",
        )
    length = engine.database_name_length(database)
    if length > engine.max_database_name:
        raise RestoreRefused(
            f"database name {database!r} is {length} {engine.database_name_unit} long; the server keeps "
            f"{engine.max_database_name} (a longer name could be cut down to another database's)",
            database=database_id or database,
            backup_id=backup_id,
            hint=f"Choose a name of at most {engine.max_database_name} {engine.database_name_unit}",
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
    recorded_identity: str | None = None,
) -> TargetState:
    """Decide whether a restore may write ``database`` on ``target``; return what it holds now.

    ``source`` is given by drills: a target on the source's server is refused whatever it holds
    (``recorded_identity``, the source server's identity at backup time, decides when the source
    cannot be reached).
    Reserved and over-long names are refused; a non-empty target is refused unless ``overwrite``.
    Nothing is written either way.
    """
    if source is not None:
        refuse_source(
            engine,
            source,
            target,
            database,
            database_id=database_id or database,
            recorded_identity=recorded_identity,
        )
    refuse_reserved(engine, target, database, database_id=database_id, backup_id=backup_id)
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
    services: Services,
    database_id: str,
    scratch: str,
    *,
    target_conn_id: str | None = None,
    engine: Engine | None = None,
) -> DrillTarget:
    """The drill's target: ``target_conn_id``, else the database's ``restore_target_conn_id``;
    refused when it is on the source's server or ``scratch`` is not a scratch name. ``engine``
    (tests) stands in for the database's engine, which asks both servers who they are."""
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
    refuse_source(engine or engine_for(db.engine), source, server, scratch, database_id=db.id)
    return DrillTarget(source, server, scratch)


def target_connection(services: Services, value: str) -> ConnectionInfo:
    """A ``--target``: a connection id, or a URL that carries no password."""
    if "://" in value and parse_connection_uri("target", value).password:
        raise ConfigError(
            "--target is a URL holding a password, which every user of this machine can read in the "
            "process list; it was not used",
            hint="Pass a connection id instead: export AIRFLOW_CONN_<ID> holding the URL (or its JSON form) "
            "and give --target <id>",
        )
    return services.resolve(value)


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


@dataclass(frozen=True)
class ManualRestorePlan:
    """What a manual restore (the ``restore_database`` DAG) will do, decided before it does it."""

    target: ConnectionInfo
    database: str
    overwrite: bool
    #: The target is the backup's own source database (by server identity and name).
    over_source: bool

    @property
    def needs_approval(self) -> bool:
        """An overwrite replaces what the target holds: a second person approves it."""
        return self.overwrite

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target.describe(),
            "database": self.database,
            "overwrite": self.overwrite,
            "over_source": self.over_source,
            "needs_approval": self.needs_approval,
        }


def plan_manual_restore(
    services: Services,
    database_id: str,
    *,
    target_conn_id: str | None,
    target_database: str | None,
    overwrite: bool,
    over_source_confirmed: bool,
    engine: Engine | None = None,
) -> ManualRestorePlan:
    """Decide a manual restore's target; refuse an overwrite of the backup's own source database
    unless ``over_source_confirmed`` (the ``i_am_restoring_over_the_source`` field), and log it
    when it is. A blank target is the database's drill server, never its source."""
    db = services.config.database(database_id)
    target, database = restore_target(
        services, database_id, target_conn_id=target_conn_id, target_database=target_database, scratch=""
    )
    if not database:
        raise ConfigError("the manual restore names no target database", database=database_id)
    source = services.resolve(db.conn_id)
    engine = engine or engine_for(db.engine)
    over_source = _same_name(database, source.schema) and (
        _server(source) == _server(target) or same_server(engine, source, target)
    )
    if over_source and not (overwrite and over_source_confirmed):
        raise RestoreRefused(
            f"the target {target.with_schema(database).describe()} is the backup's own source database",
            database=database_id,
            hint="To replace production with this backup, set overwrite and i_am_restoring_over_the_source; "
            "otherwise restore into another database or server",
        )
    if over_source:
        log.warning(
            "RESTORING OVER THE SOURCE: the backup's own source database will be replaced database=%s target=%s",
            database_id,
            target.with_schema(database).describe(),
        )
    return ManualRestorePlan(target, database, overwrite, over_source)


def check_approval(
    triggered_by: str | None, approved_by: str | None, *, approver_id: str | None = None, database_id: str
) -> None:
    """An overwrite is approved by someone other than the user who asked for it (compared by the
    approver's name and id: auth managers differ in which one they put in the run)."""
    if not approved_by:
        raise RestoreRefused("the overwrite was not approved by a named user", database=database_id)
    same = {str(v).strip().lower() for v in (approved_by, approver_id) if v}
    if triggered_by and triggered_by.strip().lower() in same:
        raise RestoreRefused(
            f"the overwrite was approved by {approved_by!r}, who triggered the restore",
            database=database_id,
            hint="A second person must approve an overwrite; trigger the restore again and ask them",
        )
