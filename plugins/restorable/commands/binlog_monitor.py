"""The binlog monitor of one MariaDB database (``monitor__<db>``): what a restore to a moment can reach
now, against ``binlog.monitor``'s objectives, with the WAL monitor's breach bookkeeping.

Figures (``measure``): the RPO now (now minus the newest archived binlog event: the live file's
snapshot included, heartbeats keep it recent on an idle database; read from the bucket, so it holds
when the archiver is dead), the archiver's state (running, its alarms: a ``gap`` above all), closed
files waiting in its spool, the continuity of the archive from the oldest logical backup's position
(``verify-binlog``), and the newest logical backup's age. Open breaches are remembered in the bucket at
``<prefix>/<db>/monitor/binlog.json`` and alerted once when they open (``wal_monitor.evaluate``'s rules).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from restorable.binlog.continuity import check_continuity
from restorable.binlog.objects import list_archived
from restorable.binlog.positions import backup_starts
from restorable.binlog.service import STATE_FILE
from restorable.commands.wal_monitor import Breach, MonitorReport, read_state, span
from restorable.repository.layout import Layout
from restorable.repository.manifest import iso
from restorable.services import Services
from restorable.wal.state import process_alive
from restorable.wal.state import read_state as read_archiver_state

STATE_NAME = "binlog.json"
STATE_FORMAT = "restorable.binlog-monitor/1"


def measure(services: Services, database_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Every figure of the module docstring, as JSON-ready values."""
    now = now or datetime.now(UTC)
    settings = services.config.database(database_id).binlog
    catalog = services.catalog("restore")
    archived = list_archived(catalog.store, Layout(services.config.storage.prefix), database_id)
    newest = max((a.last_time or 0 for a in archived), default=0)
    state = read_archiver_state(settings.spool_dir / STATE_FILE) or {}
    starts = backup_starts(catalog, database_id)
    newest_backup = max(starts, key=lambda s: s.created_at, default=None)
    continuity = check_continuity(archived, starts)
    return {
        "measured_at": iso(now),
        "rpo_seconds": round(now.timestamp() - newest, 1) if newest else None,
        "newest_recoverable": datetime.fromtimestamp(newest, UTC).isoformat() if newest else None,
        "archiver_running": bool(state.get("running")) and process_alive(state.get("pid")),
        "alarms": state.get("alarms") or [],
        "queue_files": max(0, len(state.get("spool") or []) - 1),
        "backup_age_seconds": round((now - newest_backup.created_at).total_seconds(), 1) if newest_backup else None,
        "backup_id": newest_backup.backup_id if newest_backup else None,
        "continuity": continuity.to_dict(),
    }


def find_breaches(figures: dict[str, Any], monitor: Any) -> list[Breach]:
    """The objectives ``figures`` do not meet (``monitor``: ``binlog.monitor``)."""
    found = []
    rpo, objective = figures["rpo_seconds"], monitor.rpo_objective.total_seconds()
    if rpo is None or rpo > objective:
        archiver = "the archiver is running" if figures["archiver_running"] else "the binlog archiver is NOT running"
        moment = (
            f"the newest recoverable moment is {figures['newest_recoverable']}, {span(rpo)} ago"
            if rpo is not None
            else "no binlog event has reached the bucket"
        )
        found.append(Breach("rpo", span(rpo), span(objective), f"{moment}; {archiver}", "rpo.md"))
    if figures["queue_files"] > monitor.max_queue_files:
        found.append(
            Breach(
                "queue",
                f"{figures['queue_files']} files",
                f"{monitor.max_queue_files} files",
                "closed binlogs pile up in the spool: uploads fail or cannot keep up",
                "binlog-archive.md#queue",
            )
        )
    for alarm in figures["alarms"]:
        if alarm.get("kind") == "gap":
            found.append(
                Breach(
                    "gap",
                    f"{len(alarm.get('lost') or [])} file(s) lost",
                    "none",
                    alarm["message"],
                    "binlog-archive.md#gap",
                )
            )
    continuity = figures["continuity"]
    if not continuity["ok"]:
        gaps = ", ".join(f"{g['first']}..{g['last']}" for g in continuity["gaps"][:3])
        found.append(
            Breach(
                "continuity",
                (f"missing {gaps}" if gaps else "") + "; ".join(continuity["gtid_holes"][:2]),
                f"no gap from {continuity['start']} to the newest archived file",
                "the binlog archive has a gap: a restore cannot replay past it",
                "binlog-archive.md#continuity",
            )
        )
    age, limit = figures["backup_age_seconds"], monitor.max_base_backup_age.total_seconds()
    if age is None or age > limit:
        found.append(
            Breach(
                "backup_age",
                span(age) if age is not None else "no backup",
                span(limit),
                "the newest logical backup with a binlog position is too old (a restore replays everything since)"
                if age is not None
                else "no logical backup records a binlog position: no moment can be restored",
                "backup-failed.md",
            )
        )
    return found


def evaluate(services: Services, database_id: str, *, now: datetime | None = None) -> MonitorReport:
    """Measure, find the breaches, and compare them with the open ones the bucket remembers."""
    settings = services.config.database(database_id).binlog
    figures = measure(services, database_id, now=now)
    breaches = find_breaches(figures, settings.monitor)
    state = read_state(services, database_id, STATE_NAME, STATE_FORMAT)
    previous = state.get("open_breaches") or {}
    to_alert = [b for b in breaches if not (previous.get(b.check) or {}).get("alerted")]
    cleared = sorted(set(previous) - {b.check for b in breaches})
    # The state's last write: an unchanged one is not written again within a day (wal_monitor.record).
    return MonitorReport(database_id, figures, breaches, to_alert, cleared, previous, state.get("updated_at"))
