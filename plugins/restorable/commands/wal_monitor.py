"""The WAL monitor of one database: measure what point-in-time recovery can reach now, compare
it with the objectives of ``physical.monitor``, and remember which breaches are open.

Figures (``measure``): the RPO now (now minus the commit time of the newest heartbeat whose WAL
is in the bucket, from ``wal_status``), the spool queue and its oldest file, the source's
``pg_stat_archiver`` failures, the replication slot (stream mode), the continuity of the archive
from the newest base backup's start to the newest segment, the bucket's newest timeline against
the server's, and the newest base backup's age.

Open breaches live in the bucket, ``<prefix>/<db>/monitor/wal.json`` (with the last figures, for
a metrics exporter to read): the state survives a rebuilt Airflow metadata DB, is next to what it
describes, and needs no other store. A breach is alerted when it opens, not on every run while it
stays open; once it clears, the next breach of the same check alerts again. A breach whose alert
could not be delivered stays unalerted and is tried again on the next run.

The object is written when the breaches change (one opens, clears or is alerted) and otherwise
once a day (:data:`REFRESH`), not on every run: the bucket keeps every version under Object Lock,
and a write every 5 minutes would leave 288 locked versions a day saying the same thing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from restorable.engines.postgres import tools as pg_tools
from restorable.engines.postgres.engine import PostgresEngine
from restorable.exceptions import RestorableError
from restorable.lifecycle.policy import format_duration
from restorable.repository.layout import Layout
from restorable.repository.manifest import iso, parse_iso
from restorable.services import Services
from restorable.wal.continuity import check_continuity, physical_backup_starts
from restorable.wal.status import wal_status

STATE_NAME = "wal.json"
STATE_FORMAT = "restorable.wal-monitor/1"
#: Unchanged breaches are written again after this long, so ``updated_at`` shows the monitor runs.
REFRESH = timedelta(days=1)


@dataclass(frozen=True)
class Breach:
    """One objective not met: the check, the figure measured, the objective, what to read."""

    check: str
    measured: str
    objective: str
    message: str
    runbook: str


@dataclass
class MonitorReport:
    database_id: str
    figures: dict[str, Any]
    breaches: list[Breach]
    #: Breaches to alert on now: newly opened, or open but never delivered.
    to_alert: list[Breach] = field(default_factory=list)
    #: Checks whose breach was open at the previous run and is not any more.
    cleared: list[str] = field(default_factory=list)
    previous: dict[str, Any] = field(default_factory=dict)
    #: When the state in the bucket was last written (None: never).
    previous_updated_at: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "database_id": self.database_id,
            "ok": not self.breaches,
            "figures": self.figures,
            "breaches": [asdict(b) for b in self.breaches],
            "alerting": [b.check for b in self.to_alert],
            "cleared": self.cleared,
        }


def span(seconds: float | None) -> str:
    """A duration for people: ``4.2s`` below a minute, else ``format_duration``'s form."""
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.1f}s"
    from datetime import timedelta

    return format_duration(timedelta(seconds=round(seconds)))


def _source_figures(services: Services, db: Any) -> dict[str, Any]:
    """``pg_stat_archiver``, the server's timeline and (stream mode) its slot, from the source."""
    source = services.resolve(db.conn_id)
    slot = db.physical.wal.slot if db.physical.wal.mode == "stream" else None
    with pg_tools.connect(source, PostgresEngine.database_of(source)) as pg:
        archived, last_archived, failed, last_failed_wal, last_failed = pg.execute(
            "SELECT archived_count, last_archived_time, failed_count, last_failed_wal, last_failed_time "
            "FROM pg_stat_archiver"
        ).fetchone()
        walfile = pg.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
        slot_row = (
            pg.execute(
                "SELECT active, wal_status, safe_wal_size FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if slot
            else None
        )
    failing = last_failed is not None and (last_archived is None or last_failed > last_archived)
    return {
        "server_timeline": int(walfile[:8], 16),
        "pg_stat_archiver": {
            "archived_count": archived,
            "last_archived_time": iso(last_archived) if last_archived else None,
            "failed_count": failed,
            "last_failed_wal": last_failed_wal,
            "last_failed_time": iso(last_failed) if last_failed else None,
            "failing": failing,
        },
        "slot": None
        if slot is None
        else {
            "name": slot,
            "exists": slot_row is not None,
            "active": slot_row[0] if slot_row else None,
            "wal_status": slot_row[1] if slot_row else None,
            "safe_wal_size": slot_row[2] if slot_row else None,
        },
    }


def _newest_base_backup(services: Services, database_id: str, now: datetime) -> dict[str, Any] | None:
    catalog = services.catalog("restore")
    starts = physical_backup_starts(catalog.store, catalog.layout, database_id)
    if not starts:
        return None
    newest = starts[-1]
    manifest = catalog.read_manifest(database_id, newest["backup_id"])
    finished = parse_iso(manifest.finished_at)
    return {**newest, "finished_at": manifest.finished_at, "age_seconds": round((now - finished).total_seconds(), 1)}


def measure(services: Services, database_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Every figure of the module docstring, as JSON-ready values (seconds, counts, names)."""
    now = now or datetime.now(UTC)
    db = services.config.database(database_id)
    store = services.store("restore")
    status = wal_status(services, database_id, store=store)
    archived = status.get("last_heartbeat_archived") or {}
    rpo = round((now - parse_iso(archived["at"])).total_seconds(), 1) if archived.get("at") else None
    newest_per_timeline = status["bucket"]["newest_per_timeline"]
    figures: dict[str, Any] = {
        "measured_at": iso(now),
        "rpo_seconds": rpo,
        "newest_recoverable": archived.get("at"),
        "newest_recoverable_wal_file": archived.get("wal_file"),
        "last_heartbeat_committed": (status.get("last_heartbeat_committed") or {}).get("at"),
        "archiver_running": status["archiver"]["running"],
        "alarms": [a["name"] for a in status.get("alarms") or []],
        "queue_files": status["queue"]["files"],
        "queue_bytes": status["queue"]["bytes"],
        "oldest_spooled_seconds": (status["queue"]["oldest"] or {}).get("age_seconds"),
        "newest_segment": status["bucket"]["newest_segment"],
        "bucket_timeline": max((int(t, 16) for t in newest_per_timeline), default=None),
    }
    try:
        figures.update(_source_figures(services, db))
        figures["source_error"] = None
    except RestorableError as exc:
        figures.update(server_timeline=None, pg_stat_archiver=None, slot=None, source_error=str(exc)[:500])
    base = _newest_base_backup(services, database_id, now)
    figures["base_backup"] = base
    figures["base_backup_age_seconds"] = base["age_seconds"] if base else None
    identity = services.identity() if status["bucket"]["history_files"] else None
    continuity = check_continuity(
        store,
        Layout(services.config.storage.prefix),
        database_id,
        identity=identity,
        start=(base or {}).get("start_segment"),
    )
    figures["continuity"] = {
        "ok": continuity.ok,
        "start": continuity.start,
        "newest": {f"{t:08X}": n for t, n in continuity.newest.items()},
        "gaps": [asdict(g) for g in continuity.gaps],
        "history_problems": continuity.history_problems,
    }
    return figures


def _rpo_breach(figures: dict[str, Any], objective: float) -> Breach | None:
    rpo = figures["rpo_seconds"]
    if rpo is not None and rpo <= objective:
        return None
    archiver = "the archiver is running" if figures["archiver_running"] else "the WAL archiver is NOT running"
    spool = f"{figures['queue_files']} file(s) wait in the spool"
    if figures["oldest_spooled_seconds"] is not None:
        spool += f", the oldest for {span(figures['oldest_spooled_seconds'])}"
    moment = (
        f"the newest recoverable moment is {figures['newest_recoverable']}, {span(rpo)} ago"
        if rpo is not None
        else "no heartbeat has reached the bucket: no recoverable moment is known"
    )
    return Breach("rpo", span(rpo), span(objective), f"{moment}; {archiver}; {spool}", "rpo.md")


def find_breaches(figures: dict[str, Any], monitor: Any) -> list[Breach]:
    """The objectives ``figures`` do not meet (``monitor``: the database's ``MonitorConfig``)."""
    found: list[Breach] = []
    rpo = _rpo_breach(figures, monitor.rpo_objective.total_seconds())
    if rpo is not None:
        found.append(rpo)
    if figures["queue_files"] > monitor.max_queue_files:
        found.append(
            Breach(
                "queue",
                f"{figures['queue_files']} files",
                f"{monitor.max_queue_files} files",
                f"WAL piles up in the spool (oldest {span(figures['oldest_spooled_seconds'])}): the archiver "
                "is stopped or cannot keep up",
                "wal-archive.md#queue",
            )
        )
    if figures["source_error"]:
        found.append(Breach("source", "unreachable", "reachable", figures["source_error"], "wal-archive.md#source"))
    archiver = figures["pg_stat_archiver"] or {}
    if archiver.get("failing"):
        found.append(
            Breach(
                "archive_command",
                f"{archiver['failed_count']} failures, last {archiver['last_failed_wal']} "
                f"at {archiver['last_failed_time']}",
                "no failure since the last archived file",
                "PostgreSQL's archive step is failing (pg_stat_archiver): WAL stays in pg_wal",
                "wal-archive.md#archive-command",
            )
        )
    found.extend(_slot_breaches(figures["slot"]))
    found.extend(_archive_breaches(figures))
    age = figures["base_backup_age_seconds"]
    limit = monitor.max_base_backup_age.total_seconds()
    if age is None or age > limit:
        found.append(
            Breach(
                "base_backup_age",
                span(age) if age is not None else "no base backup",
                span(limit),
                "the newest base backup is too old (a recovery replays all the WAL since it)"
                if age is not None
                else "no base backup exists: no point in time can be restored",
                "base-backup-failed.md#too-old",
            )
        )
    return found


def _slot_breaches(slot: dict[str, Any] | None) -> list[Breach]:
    if slot is None:
        return []
    if not slot["exists"]:
        return [
            Breach("slot", "missing", f"slot {slot['name']}", "the replication slot is gone", "wal-archive.md#slot")
        ]
    if slot["wal_status"] in ("lost", "unreserved"):
        return [
            Breach(
                "slot",
                f"wal_status {slot['wal_status']}, safe_wal_size {slot['safe_wal_size']}",
                "wal_status reserved or extended",
                f"slot {slot['name']} is losing (or lost) WAL the archive has not received",
                "wal-archive.md#slot",
            )
        ]
    return []


def _archive_breaches(figures: dict[str, Any]) -> list[Breach]:
    found = []
    continuity = figures["continuity"]
    if not continuity["ok"]:
        gaps = ", ".join(f"{g['first']}..{g['last']}" for g in continuity["gaps"][:3])
        missing = sum(g["segments"] for g in continuity["gaps"])
        found.append(
            Breach(
                "continuity",
                f"{missing} segment(s) missing" + (f" ({gaps})" if gaps else ""),
                f"no gap from {continuity['start']} to the newest segment",
                "; ".join(continuity["history_problems"]) or "the archive has a gap: recovery cannot pass it",
                "wal-archive.md#continuity",
            )
        )
    server, bucket = figures["server_timeline"], figures["bucket_timeline"]
    if server is not None and bucket is not None and server != bucket:
        found.append(
            Breach(
                "timeline",
                f"bucket timeline {bucket:08X}",
                f"the server's timeline {server:08X}",
                "the bucket's newest timeline is not the server's (a promoted copy archived into it, or the "
                "server's new timeline has not reached it)",
                "wal-archive.md#timeline",
            )
        )
    return found


def read_state(
    services: Services, database_id: str, name: str = STATE_NAME, state_format: str = STATE_FORMAT
) -> dict[str, Any]:
    """The monitor's last state from the bucket (empty when it never ran or the object is unreadable);
    ``name``/``state_format``: another monitor's (the binlog monitor's ``binlog.json``)."""
    store = services.store("restore")
    key = Layout(services.config.storage.prefix).monitor_key(database_id, name)
    try:
        state = store.get_json(key) if store.exists(key) else {}
    except (RestorableError, ValueError):
        return {}
    return state if isinstance(state, dict) and state.get("format") == state_format else {}


def evaluate(services: Services, database_id: str, *, now: datetime | None = None) -> MonitorReport:
    """Measure, find the breaches, and compare them with the open ones the bucket remembers."""
    db = services.config.database(database_id)
    figures = measure(services, database_id, now=now)
    breaches = find_breaches(figures, db.physical.monitor)
    state = read_state(services, database_id)
    previous = state.get("open_breaches") or {}
    to_alert = [b for b in breaches if not (previous.get(b.check) or {}).get("alerted")]
    cleared = sorted(set(previous) - {b.check for b in breaches})
    return MonitorReport(database_id, figures, breaches, to_alert, cleared, previous, state.get("updated_at"))


def _unchanged(report: MonitorReport, open_breaches: dict[str, Any], now: str) -> bool:
    """Whether the state in the bucket already says this: the same open breaches, opened and
    alerted at the same times, nothing cleared, and written within :data:`REFRESH`."""
    if report.cleared or report.previous_updated_at is None:
        return False
    if now and parse_iso(now) - parse_iso(report.previous_updated_at) >= REFRESH:
        return False
    identity = ("since", "alerted", "alerted_at")

    def keyed(breaches: dict[str, Any]) -> dict[str, tuple]:
        return {check: tuple((b or {}).get(k) for k in identity) for check, b in breaches.items()}

    return keyed(open_breaches) == keyed(report.previous)


def record(
    services: Services,
    report: MonitorReport,
    delivered: dict[str, bool],
    *,
    run: dict[str, Any] | None = None,
    name: str = STATE_NAME,
    state_format: str = STATE_FORMAT,
) -> str:
    """Write the figures and the open breaches (with whether each was alerted) when they changed;
    return the state's key."""
    now = report.figures["measured_at"]
    open_breaches = {}
    for breach in report.breaches:
        before = report.previous.get(breach.check) or {}
        alerted = bool(before.get("alerted")) or delivered.get(breach.check, False)
        open_breaches[breach.check] = {
            **asdict(breach),
            "since": before.get("since") or now,
            "alerted": alerted,
            "alerted_at": before.get("alerted_at") or (now if delivered.get(breach.check) else None),
        }
    key = Layout(services.config.storage.prefix).monitor_key(report.database_id, name)
    if _unchanged(report, open_breaches, now):
        return key
    services.store("backup").put_json(
        key,
        {
            "format": state_format,
            "database_id": report.database_id,
            "updated_at": now,
            "run": run,
            "figures": report.figures,
            "open_breaches": open_breaches,
            "cleared": report.cleared,
        },
    )
    return key
