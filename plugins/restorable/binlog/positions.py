"""Where each logical backup of a MariaDB database starts in the binlog, and what a gap costs them.

A logical backup records its snapshot's binlog file, position and GTID (``metadata.position``,
taken with commits blocked: see ``engines/mysql/logical.py``). Replay to a later moment starts
there, so the archive must hold every file from that one on. Pure functions apart from
``backup_starts`` (which reads the manifests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from restorable.binlog.objects import file_number


@dataclass(frozen=True)
class BackupStart:
    backup_id: str
    created_at: datetime
    binlog_file: str
    binlog_position: int
    gtid: str
    snapshot_time: datetime | None

    @property
    def number(self) -> int:
        return file_number(self.binlog_file)[1]


def start_of(backup_id: str, created_at: datetime, position: dict[str, Any]) -> BackupStart | None:
    """The binlog start of one backup (its manifest's ``metadata.position``), None without binlog."""
    if not position.get("log_bin") or not position.get("binlog_file"):
        return None
    snap = position.get("snapshot_time")
    return BackupStart(
        backup_id,
        created_at,
        str(position["binlog_file"]),
        int(position.get("binlog_position") or 4),
        str(position.get("gtid_binlog_pos") or position.get("gtid_executed") or ""),
        datetime.fromisoformat(snap.replace("Z", "+00:00")) if isinstance(snap, str) else None,
    )


def backup_starts(catalog: Any, database_id: str) -> list[BackupStart]:
    """Every committed logical backup of ``database_id`` with a binlog position, oldest first."""
    starts = []
    for entry in catalog.entries(database_id):
        manifest = entry.manifest
        if manifest.kind != "logical":
            continue
        start = start_of(manifest.backup_id, manifest.created, manifest.metadata.position or {})
        if start is not None:
            starts.append(start)
    return sorted(starts, key=lambda s: (s.number, s.binlog_position))


def gap_impact(starts: Iterable[BackupStart], first_lost: int, last_reachable: int | None) -> list[dict[str, Any]]:
    """The backups a gap starting at file number ``first_lost`` cuts short: each can reach moments
    only up to ``last_reachable`` (the last archived event before the gap, epoch seconds)."""
    out = []
    for s in starts:
        if s.number < first_lost:
            until = datetime.fromtimestamp(last_reachable, UTC).isoformat() if last_reachable else None
            out.append({"backup_id": s.backup_id, "binlog_file": s.binlog_file, "reaches_until": until})
    return out
