"""The bucket layout: the only module that builds or parses object keys.

::

    <prefix>/
      <db>/                                     one configured database (id: [a-z][a-z0-9_]*)
        <backup_id>/                            one backup (id: 20261203T083903Z-1a2b3c4d)
          lease.json                            while the backup streams: who, and until when (renewed)
          summary.json                          what listing and picking need, written just before the manifest
          manifest.json                         written last: its presence is the commit
          data.<suffix>.zst.age                 a stored object the manifest lists in objects[]
          sealed.json.age                       values kept out of the manifest, age-encrypted
          key.json                              envelope mode: this backup's age identity, wrapped by the KMS
          keys/<ts>-v<N>.json                   the same identity rewrapped under KMS key version N (rotation)
          verifications/<ts>-<kind>.json        append-only check records (checksum, deep, drill; copy)
        wal/<timeline>/<walfile>.zst.age        PostgreSQL WAL archive: segments, .partial, .backup, .history
        monitor/wal.json                        the WAL monitor: open breaches (rewritten on a change, daily else)
        binlog/<file>.zst.age                   MariaDB/MySQL binlog archive: closed files (written once)
        binlog/<file>.partial.zst.age           the live file's newest snapshot (overwritten)
      _keys/...                                 reserved: key-wrapping objects (KMS envelopes)
      _reports/<from>--<to>/audit-report.<fmt>  the audit evidence report of a period (html, pdf, json)

Anything else under ``<prefix>/`` is *unknown*: written by another tool, another version or a
person. Nothing here deletes what it cannot classify: the lifecycle's orphan cleaner only ever
considers keys that ``parse`` says are objects of a backup (manifest, summary, lease, data, sealed,
wrapped key, verification, or another file inside a ``<backup_id>/`` directory), and spares a backup whose lease
has not expired (it is still streaming), so archives, key objects and unknown keys
survive any ``orphan_min_age``.

Nothing else is needed to find and restore a backup: no Airflow metadata, no local state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
LEASE = "lease.json"
SEALED = "sealed.json.age"
WRAPPED_KEY = "key.json"
REWRAPPED_KEYS = "keys"
VERIFICATIONS = "verifications"
WAL = "wal"
BINLOG = "binlog"
MONITOR = "monitor"
KEYS = "_keys"
REPORTS = "_reports"

BACKUP_ID_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
DATABASE_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: A file PostgreSQL archives: a segment (``000000010000000A000000FE``), its ``.partial`` (from
#: ``pg_receivewal``), a backup label (``<segment>.00000028.backup``) or a timeline history
#: (``00000002.history``). The first 8 hex digits are always the timeline.
WAL_FILE_RE = re.compile(
    r"^(?P<timeline>[0-9A-F]{8})"
    r"(?:(?P<segment>[0-9A-F]{16})(?P<suffix>\.partial|\.[0-9A-F]{8}\.backup)?|(?P<history>\.history))$"
)
WAL_OBJECT_SUFFIX = ".zst.age"
#: A binary log file as the server names it (``mariadb-bin.000042``), or its live snapshot (``.partial``).
BINLOG_FILE_RE = re.compile(
    r"^(?P<base>[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*?)\.(?P<number>\d{6,})(?P<partial>\.partial)?$"
)
#: Names under ``<db>/`` that are never a backup and never an orphan.
RESERVED_UNDER_DATABASE = (WAL, BINLOG, MONITOR)


class KeyKind(StrEnum):
    MANIFEST = "manifest"
    SUMMARY = "summary"
    LEASE = "lease"
    DATA = "data"
    SEALED = "sealed"
    VERIFICATION = "verification"
    #: A backup's wrapped identity (envelope mode): KMS ciphertext, not age.
    WRAPPED_KEY = "wrapped_key"
    #: Another file inside a backup directory (e.g. a part left by a crashed upload of a newer kind).
    BACKUP_OTHER = "backup_other"
    WAL = "wal"
    BINLOG = "binlog"
    KEY = "key"
    REPORT = "report"
    UNKNOWN = "unknown"


#: Kinds that belong to one backup: the orphan cleaner may remove these, and only these.
BACKUP_OBJECT_KINDS = frozenset(
    {
        KeyKind.MANIFEST,
        KeyKind.SUMMARY,
        KeyKind.LEASE,
        KeyKind.DATA,
        KeyKind.SEALED,
        KeyKind.VERIFICATION,
        KeyKind.WRAPPED_KEY,
        KeyKind.BACKUP_OTHER,
    }
)


@dataclass(frozen=True)
class ParsedKey:
    key: str
    kind: KeyKind
    database: str | None = None
    backup_id: str | None = None
    #: The path inside the backup directory or the archive (``verifications/<ts>-drill.json``).
    name: str = ""

    @property
    def is_backup_object(self) -> bool:
        return self.kind in BACKUP_OBJECT_KINDS


def is_backup_id(text: str) -> bool:
    return BACKUP_ID_RE.fullmatch(text) is not None


class Layout:
    """Keys of one repository: a bucket and a prefix within it (``""`` for the bucket root)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.strip("/")

    def __repr__(self) -> str:
        return f"Layout(prefix={self.prefix!r})"

    # --- building ---------------------------------------------------------------------------
    @property
    def root(self) -> str:
        """The listing prefix of the whole repository (``""`` or ``"<prefix>/"``)."""
        return f"{self.prefix}/" if self.prefix else ""

    def database_prefix(self, database_id: str) -> str:
        return f"{self.root}{database_id}/"

    def backup_prefix(self, database_id: str, backup_id: str) -> str:
        return f"{self.database_prefix(database_id)}{backup_id}/"

    def manifest_key(self, database_id: str, backup_id: str) -> str:
        return self.backup_prefix(database_id, backup_id) + MANIFEST

    def summary_key(self, database_id: str, backup_id: str) -> str:
        return self.backup_prefix(database_id, backup_id) + SUMMARY

    def lease_key(self, database_id: str, backup_id: str) -> str:
        return self.backup_prefix(database_id, backup_id) + LEASE

    def data_key(self, database_id: str, backup_id: str, suffix: str) -> str:
        return f"{self.backup_prefix(database_id, backup_id)}data.{suffix}.zst.age"

    def sealed_key(self, database_id: str, backup_id: str) -> str:
        return self.backup_prefix(database_id, backup_id) + SEALED

    def wrapped_key(self, database_id: str, backup_id: str) -> str:
        """The key object the backup wrote: its age identity wrapped by the KMS."""
        return self.backup_prefix(database_id, backup_id) + WRAPPED_KEY

    def rewrapped_prefix(self, database_id: str, backup_id: str) -> str:
        return f"{self.backup_prefix(database_id, backup_id)}{REWRAPPED_KEYS}/"

    def rewrapped_key(self, database_id: str, backup_id: str, stamp: str, version: int) -> str:
        """A rotation's key object: append-only beside the first (WORM-friendly), newest stamp wins."""
        return f"{self.rewrapped_prefix(database_id, backup_id)}{stamp}-v{version}.json"

    def verifications_prefix(self, database_id: str, backup_id: str) -> str:
        return f"{self.backup_prefix(database_id, backup_id)}{VERIFICATIONS}/"

    def verification_key(self, database_id: str, backup_id: str, stamp: str, kind: str) -> str:
        return f"{self.verifications_prefix(database_id, backup_id)}{stamp}-{kind}.json"

    def wal_prefix(self, database_id: str) -> str:
        return f"{self.database_prefix(database_id)}{WAL}/"

    def wal_timeline_prefix(self, database_id: str, timeline: int) -> str:
        return f"{self.wal_prefix(database_id)}{timeline:08X}/"

    def wal_key(self, database_id: str, wal_file: str) -> str:
        """The object of one archived WAL file, filed under its own timeline."""
        return self.wal_timeline_prefix(database_id, wal_file_timeline(wal_file)) + wal_file + WAL_OBJECT_SUFFIX

    def monitor_key(self, database_id: str, name: str) -> str:
        """A monitor's state object (``wal.json``): not a backup, never an orphan (parsed as unknown)."""
        return f"{self.database_prefix(database_id)}{MONITOR}/{name}"

    def binlog_prefix(self, database_id: str) -> str:
        return f"{self.database_prefix(database_id)}{BINLOG}/"

    def binlog_key(self, database_id: str, binlog_file: str) -> str:
        """The object of one archived binlog file (or its ``.partial`` live snapshot)."""
        if BINLOG_FILE_RE.fullmatch(binlog_file) is None:
            raise ValueError(f"{binlog_file!r} is not a binlog file name (such as mariadb-bin.000042)")
        return self.binlog_prefix(database_id) + binlog_file + WAL_OBJECT_SUFFIX

    @property
    def keys_prefix(self) -> str:
        return f"{self.root}{KEYS}/"

    @property
    def reports_prefix(self) -> str:
        return f"{self.root}{REPORTS}/"

    def report_key(self, start: datetime, end: datetime, fmt: str) -> str:
        """The audit evidence report of [start, end): a report of the same period replaces the last one."""
        period = f"{start.astimezone(UTC):%Y%m%dT%H%M%SZ}--{end.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        return f"{self.reports_prefix}{period}/audit-report.{fmt}"

    # --- parsing ----------------------------------------------------------------------------
    def parse(self, key: str) -> ParsedKey:
        """What ``key`` is in this layout; ``UNKNOWN`` for anything it does not recognise."""
        if not key.startswith(self.root):
            return ParsedKey(key, KeyKind.UNKNOWN)
        parts = key[len(self.root) :].split("/")
        if len(parts) >= 2 and parts[0] == KEYS:
            return ParsedKey(key, KeyKind.KEY, name="/".join(parts[1:]))
        if len(parts) >= 2 and parts[0] == REPORTS:
            return ParsedKey(key, KeyKind.REPORT, name="/".join(parts[1:]))
        if len(parts) < 3 or not DATABASE_ID_RE.fullmatch(parts[0]) or not all(parts[1:]):
            return ParsedKey(key, KeyKind.UNKNOWN)
        database, second, rest = parts[0], parts[1], parts[2:]
        name = "/".join(rest)
        if second == WAL:
            return ParsedKey(key, KeyKind.WAL, database, name=name)
        if second == BINLOG:
            return ParsedKey(key, KeyKind.BINLOG, database, name=name)
        if not is_backup_id(second):
            return ParsedKey(key, KeyKind.UNKNOWN, database)
        return ParsedKey(key, backup_object_kind(name), database, second, name)


def wal_file_timeline(wal_file: str) -> int:
    """The timeline of a WAL file name; ``ValueError`` naming it for anything PostgreSQL would not archive."""
    match = WAL_FILE_RE.fullmatch(wal_file)
    if match is None:
        raise ValueError(
            f"{wal_file!r} is not a WAL file name (a segment such as 000000010000000000000001, "
            "its .partial, a .backup label or a timeline .history file)"
        )
    return int(match["timeline"], 16)


def wal_file_of(name: str) -> str | None:
    """The WAL file name in an archive object's ``name`` (``00000001/<file>.zst.age``), else None."""
    timeline, _, rest = name.partition("/")
    if not rest.endswith(WAL_OBJECT_SUFFIX):
        return None
    wal_file = rest[: -len(WAL_OBJECT_SUFFIX)]
    match = WAL_FILE_RE.fullmatch(wal_file)
    return wal_file if match is not None and match["timeline"] == timeline else None


def binlog_file_of(name: str) -> str | None:
    """The binlog file name in a binlog archive object's ``name`` (``<file>.zst.age``), else None."""
    if "/" in name or not name.endswith(WAL_OBJECT_SUFFIX):
        return None
    binlog_file = name[: -len(WAL_OBJECT_SUFFIX)]
    return binlog_file if BINLOG_FILE_RE.fullmatch(binlog_file) else None


def backup_object_kind(name: str) -> KeyKind:
    """The kind of ``name``, a path inside a backup directory (``manifest.json``, ``data.dump.zst.age``)."""
    rest = name.split("/")
    if rest == [MANIFEST]:
        return KeyKind.MANIFEST
    if rest == [SUMMARY]:
        return KeyKind.SUMMARY
    if rest == [LEASE]:
        return KeyKind.LEASE
    if rest == [SEALED]:
        return KeyKind.SEALED
    if rest == [WRAPPED_KEY] or (len(rest) == 2 and rest[0] == REWRAPPED_KEYS and rest[1].endswith(".json")):
        return KeyKind.WRAPPED_KEY
    if len(rest) == 2 and rest[0] == VERIFICATIONS and rest[1].endswith(".json"):
        return KeyKind.VERIFICATION
    if len(rest) == 1 and rest[0].startswith("data."):
        return KeyKind.DATA
    return KeyKind.BACKUP_OTHER
