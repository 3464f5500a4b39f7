"""The declarative config (``include/restorable.yaml``), validated at load.

Every error names the file, the database entry and the field, so a mistake is fixed in one
read. Strings may reference the environment as ``${NAME}`` (for example the demo's age
recipient); a missing variable is an error naming the field, never a silent empty string.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from restorable.engines import ENGINES
from restorable.exceptions import ConfigError
from restorable.repository.layout import DATABASE_ID_RE

if TYPE_CHECKING:
    from restorable.config_copies import CopyDestination
    from restorable.config_keys import EnvelopeConfig
    from restorable.config_report import ReportConfig

LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's floor for every part but the last
#: A database id is a directory of the bucket layout, so the layout defines what it may be.
_ID_RE = DATABASE_ID_RE
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
_CRON_RE = re.compile(r"^(@(hourly|daily|weekly|monthly|yearly|once))$|^(\S+\s+){4}\S+$")


@dataclass(frozen=True)
class StorageConfig:
    conn_id: str
    bucket: str
    prefix: str = "restorable"
    part_size: int = 16 * 1024 * 1024
    max_in_flight: int = 4
    max_attempts: int = 5
    #: Object Lock for every stored object: mode and days of retention (None: no lock).
    lock_mode: str | None = None
    lock_days: int | None = None
    #: Least-privilege connections per duty; each defaults to ``conn_id``.
    lifecycle_conn_id: str | None = None
    restore_conn_id: str | None = None
    #: ``storage.copies``: where each backup is copied (``config_copies``).
    copies: tuple[CopyDestination, ...] = ()


@dataclass(frozen=True)
class EncryptionConfig:
    recipients: tuple[str, ...]
    identity_conn_id: str = "restorable_age"
    #: Envelope mode (``config_keys``): a fresh identity per backup, wrapped by a KMS; None: static recipients only.
    envelope: EnvelopeConfig | None = None


@dataclass(frozen=True)
class CompressionConfig:
    level: int = 1
    threads: int = 2


@dataclass(frozen=True)
class AlertsConfig:
    webhook_conn_id: str | None = None
    runbook_url: str = "docs/runbooks"


@dataclass(frozen=True)
class MetricsConfig:
    """``metrics``: where runs push their figures, and the freshness objectives the exporter publishes."""

    #: A Prometheus Pushgateway (``http://host:9091``); None: runs push nothing.
    pushgateway_url: str | None = None
    job: str = "restorable"
    push_timeout_seconds: int = 5
    #: ``restorable exporter`` reads the bucket at most once per this many seconds (a scrape storm hits the cache).
    cache_seconds: int = 30
    #: Objectives the alert rules compare the exporter's ages with (per database, as gauges).
    max_backup_age: timedelta = timedelta(hours=26)
    max_verified_age: timedelta = timedelta(hours=26)
    max_drill_age: timedelta = timedelta(days=8)


@dataclass(frozen=True)
class SmokeQuery:
    """A query the application runs, run by the drill as the application's role on the restored copy."""

    sql: str
    #: An empty result fails the drill (the query is expected to find rows).
    expect_rows: bool = True


@dataclass(frozen=True)
class AppCheck:
    """``drill: {app_role, app_conn_id, smoke_queries}``: the application can log in and work."""

    role: str
    #: The connection whose password is the role's (its login, host and port are not used: the
    #: drill logs in to the restored copy on the drill server).
    conn_id: str
    queries: tuple[SmokeQuery, ...]


WAL_MODES = ("archive", "stream")


@dataclass(frozen=True)
class WalConfig:
    """``physical.wal``: how WAL reaches the bucket (read by ``restorable wal-archiver``)."""

    #: ``archive``: PostgreSQL's ``archive_command``/``archive_library`` drops each finished segment
    #: into ``spool_dir`` and the archiver uploads it. ``stream``: the archiver runs ``pg_receivewal``
    #: on a replication slot into ``spool_dir`` and also uploads the growing ``.partial``.
    mode: str
    spool_dir: Path
    #: Above this the spool is full: the archiver alarms and (archive mode) PostgreSQL's
    #: archive step fails, so WAL stays in pg_wal instead of being lost.
    spool_max_bytes: int = 8 * 1024**3
    #: The spool holding more than this raises an alarm, long before ``spool_max_bytes``.
    spool_alarm_bytes: int = 1024**3
    upload_concurrency: int = 4
    #: Seconds between heartbeat commits in the source (an idle database still has moments to recover to).
    heartbeat_interval: int = 10
    #: Stream mode: seconds between uploads of the current ``.partial`` segment.
    partial_interval: int = 5
    #: Stream mode: the replication slot ``pg_receivewal`` uses.
    slot: str | None = None


@dataclass(frozen=True)
class MonitorConfig:
    """``physical.monitor``: how often ``monitor__<db>`` measures, and the objectives it alerts on."""

    schedule: str = "*/5 * * * *"
    #: The newest recoverable moment (the newest archived heartbeat) may be at most this old.
    rpo_objective: timedelta = timedelta(minutes=5)
    #: More WAL files than this waiting in the spool is a breach (the archiver cannot keep up).
    max_queue_files: int = 64
    #: The newest base backup may be at most this old (a daily schedule plus its run time).
    max_base_backup_age: timedelta = timedelta(hours=26)


@dataclass(frozen=True)
class PhysicalConfig:
    """``physical``: base backups plus continuous WAL, for point-in-time recovery (PostgreSQL)."""

    enabled: bool
    schedule: str | None
    #: A connection whose role has REPLICATION (``pg_basebackup``, ``pg_receivewal``); default the source's.
    replication_conn_id: str
    wal: WalConfig
    #: Every moment of the last ``pitr_window`` stays recoverable: the lifecycle keeps the base
    #: backup before the window's start and all WAL from it on.
    pitr_window: timedelta = timedelta(days=7)
    #: How long a base backup waits for the WAL it needs to reach the bucket before it gives up
    #: (uncommitted): the archiver must be running.
    wal_wait: timedelta = timedelta(minutes=10)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    #: Where a cluster with tablespaces is staged (pg_basebackup cannot stream those); default $TMPDIR.
    staging_dir: Path | None = None
    #: The point-in-time drill's schedule (``pitr_drill__<db>``); None: triggered by hand only.
    drill_schedule: str | None = "0 5 * * 0"


@dataclass(frozen=True)
class DatabaseConfig:
    id: str
    engine: str
    conn_id: str
    schedule: str | None
    restore_target_conn_id: str | None
    drill_schedule: str | None = "0 3 * * 0"
    drill_on_backup: bool = False
    restore_jobs: int = 1
    #: The source server's pool name: concurrent dumps on one server are limited by it.
    pool: str | None = None
    compression: CompressionConfig = field(default_factory=CompressionConfig)
    retention: Mapping[str, Any] | None = None
    expectations: str | None = None
    app_check: AppCheck | None = None
    physical: PhysicalConfig | None = None
    #: ``backup_deadline``: a scheduled ``backup__<db>`` or ``base_backup__<db>`` run still running
    #: this long after its scheduled time alerts (it may be stuck), before the next one is due.
    backup_deadline: timedelta = timedelta(hours=2)
    #: ``binlog``: continuous binlog archiving (MariaDB/MySQL), a ``config_binlog.BinlogConfig``.
    binlog: Any = None


@dataclass(frozen=True)
class RestorableConfig:
    path: Path
    storage: StorageConfig
    encryption: EncryptionConfig
    databases: dict[str, DatabaseConfig]
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    lifecycle: Mapping[str, Any] = field(default_factory=dict)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    #: The audit evidence report's objectives (``config_report``); None reads as the defaults.
    report: ReportConfig | None = None
    #: Database entries that did not validate, by their id (or ``databases_<index>`` when the id
    #: itself is unusable). One mistake must not take the other databases' backups down: these
    #: are left out of ``databases`` and each becomes a DAG that fails with its error.
    broken: dict[str, ConfigError] = field(default_factory=dict)

    def object_lock_for(self, database_id: str) -> tuple[str, int] | None:
        """(mode, days) of Object Lock for a database's objects: its retention policy's
        ``object_lock`` when set, else ``storage.object_lock``; None when neither is."""
        db = self.database(database_id)
        if db.retention and db.retention.get("object_lock"):
            from restorable.lifecycle.policy import policy_from_config

            lock = policy_from_config(db.retention, where=f"{self.path}: databases[{db.id}].retention").object_lock
            if lock is not None:
                return lock.mode, lock.days
        if self.storage.lock_mode and self.storage.lock_days:
            return self.storage.lock_mode, self.storage.lock_days
        return None

    def database(self, database_id: str) -> DatabaseConfig:
        if database_id in self.broken:
            raise self.broken[database_id]
        try:
            return self.databases[database_id]
        except KeyError:
            known = ", ".join(sorted(self.databases)) or "none"
            raise ConfigError(
                f"{self.path}: no database with id {database_id!r}",
                hint=f"Configured databases: {known}",
            ) from None


def default_config_path() -> Path:
    """``$RESTORABLE_CONFIG``, else ``include/restorable.yaml`` of this project."""
    if env := os.environ.get("RESTORABLE_CONFIG"):
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "include" / "restorable.yaml"
        if candidate.exists():
            return candidate
    return Path("include/restorable.yaml")


def parse_size(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE_RE.match(str(value))
    if not match:
        raise ConfigError(f"{where}: {value!r} is not a size", hint="Write it like 16MiB, 64 MiB or 8388608")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


class _Fields:
    """Reads one mapping of the config, naming ``where`` in every error."""

    def __init__(self, data: Any, where: str, environ: Mapping[str, str]) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping, found {type(data).__name__}")
        self.data = data
        self.where = where
        self.environ = environ
        self.used: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}"

    def raw(self, key: str, default: Any = ..., *, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if required or default is ...:
                raise ConfigError(f"{self._name(key)} is required but missing")
            return default
        return self.data[key]

    def text(self, key: str, default: Any = ..., *, required: bool = False) -> Any:
        value = self.raw(key, default, required=required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{self._name(key)}: expected a string, found {value!r}")
        return self.expand(value, key)

    def expand(self, value: str, key: str) -> str:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.environ:
                raise ConfigError(f"{self._name(key)} refers to ${{{name}}}, which is not set in the environment")
            return self.environ[name]

        return _ENV_RE.sub(sub, value)

    def integer(self, key: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        value = self.raw(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{self._name(key)}: expected an integer, found {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise ConfigError(f"{self._name(key)}: {value} is out of range; it must be {bounds}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self._name(key)}: expected true or false, found {value!r}")
        return value

    def check_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(
                f"{self.where}: unknown field(s) {', '.join(unknown)}",
                hint="Check the spelling against the README's config reference",
            )


def _schedule(fields: _Fields, key: str, default: str | None) -> str | None:
    value = fields.text(key, default)
    if value is None or value == "":
        return None
    if not _CRON_RE.match(value.strip()):
        raise ConfigError(
            f"{fields._name(key)}: {value!r} is not a cron expression",
            hint='Use five fields like "0 2 * * *", or @daily/@weekly, or null for manual only',
        )
    return value.strip()


def _storage(data: Any, where: str, env: Mapping[str, str]) -> StorageConfig:
    from restorable.config_copies import parse_copies

    f = _Fields(data, where, env)
    conn_id = f.text("conn_id", required=True)
    bucket = f.text("bucket", required=True)
    if not re.match(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$", bucket):
        raise ConfigError(f"{where}.bucket: {bucket!r} is not a valid S3 bucket name")
    prefix = f.text("prefix", "restorable").strip("/")
    part_size = parse_size(f.raw("part_size", 16 * 1024 * 1024), f"{where}.part_size")
    if part_size < MIN_PART_SIZE:
        raise ConfigError(f"{where}.part_size: {part_size} bytes is below S3's minimum part size of 5 MiB")
    lock = f.raw("object_lock", None)
    lock_mode = lock_days = None
    if lock is not None:
        lf = _Fields(lock, f"{where}.object_lock", env)
        lock_mode = str(lf.text("mode", "GOVERNANCE")).upper()
        if lock_mode not in LOCK_MODES:
            raise ConfigError(f"{where}.object_lock.mode: {lock_mode!r} must be GOVERNANCE or COMPLIANCE")
        lock_days = lf.integer("days", 0, minimum=1)
        lf.check_unknown()
    storage = StorageConfig(
        conn_id=conn_id,
        bucket=bucket,
        prefix=prefix,
        part_size=part_size,
        max_in_flight=f.integer("max_in_flight", 4, minimum=1, maximum=64),
        max_attempts=f.integer("max_attempts", 5, minimum=1, maximum=20),
        lock_mode=lock_mode,
        lock_days=lock_days,
        lifecycle_conn_id=f.text("lifecycle_conn_id", None),
        restore_conn_id=f.text("restore_conn_id", None),
        copies=parse_copies(f.raw("copies", None), f"{where}.copies", env, primary=(conn_id, bucket, prefix)),
    )
    f.check_unknown()
    return storage


def _encryption(data: Any, where: str, env: Mapping[str, str]) -> EncryptionConfig:
    f = _Fields(data, where, env)
    recipients = f.raw("recipients", required=True)
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, list) or not recipients:
        raise ConfigError(f"{where}.recipients: expected a non-empty list of age public keys (age1...)")
    expanded = []
    for i, recipient in enumerate(recipients):
        if not isinstance(recipient, str):
            raise ConfigError(f"{where}.recipients[{i}]: expected a string, found {recipient!r}")
        value = f.expand(recipient, f"recipients[{i}]").strip()
        if value.startswith("AGE-SECRET-KEY-"):
            raise ConfigError(
                f"{where}.recipients[{i}] is a private age identity, not a public key",
                hint="Put only public keys (age1...) here; the identity belongs in the identity connection",
            )
        if not re.match(r"^age1[02-9ac-hj-np-z]{58}$", value):
            raise ConfigError(
                f"{where}.recipients[{i}]: {value[:12]}... is not an age X25519 public key (age1 + 58 chars)"
            )
        expanded.append(value)
    from restorable.config_keys import parse_envelope

    envelope = parse_envelope(f.raw("envelope", None), f"{where}.envelope", env)
    enc = EncryptionConfig(tuple(expanded), f.text("identity_conn_id", "restorable_age"), envelope)
    f.check_unknown()
    return enc


def _compression(data: Any, where: str, env: Mapping[str, str], base: CompressionConfig) -> CompressionConfig:
    if data is None:
        return base
    f = _Fields(data, where, env)
    comp = CompressionConfig(
        level=f.integer("level", base.level, minimum=1, maximum=19),
        threads=f.integer("threads", base.threads, minimum=0, maximum=64),
    )
    f.check_unknown()
    return comp


def _database(data: Any, where: str, env: Mapping[str, str], comp: CompressionConfig) -> DatabaseConfig:
    from restorable.config_binlog import parse_binlog
    from restorable.config_physical import parse_physical

    f = _Fields(data, where, env)
    db_id = f.text("id", required=True)
    if not _ID_RE.match(db_id):
        raise ConfigError(
            f"{where}.id: {db_id!r} is not a valid id",
            hint="Use lowercase letters, digits and underscores, starting with a letter (it names DAGs and keys)",
        )
    where = f"{where.rsplit('[', 1)[0]}[{db_id}]"
    f.where = where
    engine = f.text("engine", required=True)
    if engine not in ENGINES:
        raise ConfigError(f"{where}.engine: {engine!r} is not supported", hint=f"Use one of: {', '.join(ENGINES)}")
    conn_id = f.text("conn_id", required=True)
    target = f.text("restore_target_conn_id", None)
    if target is not None and target == conn_id:
        raise ConfigError(
            f"{where}.restore_target_conn_id is the source connection {conn_id!r}",
            hint="Drills restore into an isolated server: give a different connection",
        )
    retention = f.raw("retention", None)
    if retention is not None:
        from restorable.lifecycle.policy import policy_from_config

        policy_from_config(retention, where=f"{where}.retention")  # validate now, not at 3 a.m.
    db = DatabaseConfig(
        id=db_id,
        engine=engine,
        conn_id=conn_id,
        schedule=_schedule(f, "schedule", None),
        restore_target_conn_id=target,
        drill_schedule=_schedule(f, "drill_schedule", "0 3 * * 0"),
        drill_on_backup=f.boolean("drill_on_backup", False),
        restore_jobs=f.integer("restore_jobs", 1, minimum=1, maximum=64),
        pool=f.text("pool", None),
        compression=_compression(f.raw("compression", None), f"{where}.compression", env, comp),
        retention=retention,
        expectations=f.text("expectations", None),
        app_check=_app_check(f.raw("drill", None), f"{where}.drill", env),
        physical=parse_physical(f.raw("physical", None), f"{where}.physical", env, engine, db_id, conn_id),
        backup_deadline=_positive_duration(f, "backup_deadline", "2h"),
        binlog=parse_binlog(f.raw("binlog", None), f"{where}.binlog", env, engine, conn_id),
    )
    f.check_unknown()
    return db


def _positive_duration(fields: _Fields, key: str, default: str) -> timedelta:
    from restorable.lifecycle.policy import parse_duration

    value = parse_duration(fields.text(key, default), where=fields._name(key))
    if value <= timedelta(0):
        raise ConfigError(f"{fields._name(key)}: must be longer than zero", hint=f'For example "{default}"')
    return value


def _app_check(data: Any, where: str, env: Mapping[str, str]) -> AppCheck | None:
    if data is None:
        return None
    f = _Fields(data, where, env)
    role = f.text("app_role", required=True)
    conn_id = f.text("app_conn_id", required=True)
    entries = f.raw("smoke_queries", required=True)
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            f"{where}.smoke_queries must be a non-empty list",
            hint='Give the queries the application depends on, e.g. ["SELECT 1 FROM sales.orders LIMIT 1"]',
        )
    queries = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = {"sql": entry}
        q = _Fields(entry, f"{where}.smoke_queries[{i}]", env)
        queries.append(SmokeQuery(q.text("sql", required=True), q.boolean("expect_rows", True)))
        q.check_unknown()
    f.check_unknown()
    return AppCheck(role, conn_id, tuple(queries))


#: The backup task's ``execution_timeout`` (the DAG factory sets it): no backup streams for longer.
BACKUP_EXECUTION_TIMEOUT = timedelta(hours=12)
#: The lifecycle's default ``orphan_min_age``.
DEFAULT_ORPHAN_MIN_AGE = "1d"


def _check_orphan_min_age(lifecycle: Any, path: Path) -> None:
    """Refuse an ``orphan_min_age`` that could take a backup still streaming for an orphan."""
    if not isinstance(lifecycle, Mapping):
        raise ConfigError(f"{path}: lifecycle must be a mapping")
    from restorable.lifecycle.policy import format_duration, parse_duration

    where = f"{path}: lifecycle.orphan_min_age"
    age = parse_duration(lifecycle.get("orphan_min_age", DEFAULT_ORPHAN_MIN_AGE), where=where)
    if age < BACKUP_EXECUTION_TIMEOUT:
        raise ConfigError(
            f"{where}: {format_duration(age)} is shorter than the backup's execution timeout "
            f"({format_duration(BACKUP_EXECUTION_TIMEOUT)}): the lifecycle could abort a backup still uploading",
            hint=f'Set it to at least "{format_duration(BACKUP_EXECUTION_TIMEOUT)}" (the default is "1d")',
        )


def parse_config(data: Any, path: Path, environ: Mapping[str, str] | None = None) -> RestorableConfig:
    env = os.environ if environ is None else environ
    top = _Fields(data if data is not None else {}, str(path), env)
    storage = _storage(top.raw("storage", required=True), f"{path}: storage", env)
    encryption = _encryption(top.raw("encryption", required=True), f"{path}: encryption", env)
    compression = _compression(top.raw("compression", None), f"{path}: compression", env, CompressionConfig())
    alerts_data = top.raw("alerts", None)
    alerts = AlertsConfig()
    if alerts_data is not None:
        af = _Fields(alerts_data, f"{path}: alerts", env)
        alerts = AlertsConfig(af.text("webhook_conn_id", None), af.text("runbook_url", "docs/runbooks"))
        af.check_unknown()
    lifecycle = top.raw("lifecycle", {}) or {}
    _check_orphan_min_age(lifecycle, path)
    from restorable.config_metrics import parse_metrics

    metrics = parse_metrics(top.raw("metrics", None), f"{path}: metrics", env)
    from restorable.config_report import parse_report

    report = parse_report(top.raw("report", None), f"{path}: report", env)
    entries = top.raw("databases", required=True)
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: databases must be a non-empty list")
    databases: dict[str, DatabaseConfig] = {}
    broken: dict[str, ConfigError] = {}
    for i, entry in enumerate(entries):
        try:
            db = _database(entry, f"{path}: databases[{i}]", env, compression)
            if db.id in databases or db.id in broken:
                raise ConfigError(f"{path}: databases[{i}].id: {db.id!r} is used twice; ids must be unique")
        except ConfigError as exc:
            broken[_broken_key(entry, i, databases, broken)] = exc
            continue
        databases[db.id] = db
    top.check_unknown()
    return RestorableConfig(
        path, storage, encryption, databases, alerts, lifecycle, metrics=metrics, report=report, broken=broken
    )


def _broken_key(entry: Any, index: int, databases: Mapping[str, Any], broken: Mapping[str, Any]) -> str:
    """The name a broken entry goes by: its id when that is usable and free, else its position."""
    db_id = entry.get("id") if isinstance(entry, Mapping) else None
    if isinstance(db_id, str) and _ID_RE.match(db_id) and db_id not in databases and db_id not in broken:
        return db_id
    return f"databases_{index}"


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> RestorableConfig:
    """Read and validate the config file; raise ConfigError naming file, entry and field."""
    path = Path(path) if path else default_config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", hint="Pass --config or set RESTORABLE_CONFIG") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    return parse_config(data, path, environ)
