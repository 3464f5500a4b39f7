"""``restorable wal-status DB --json``: what the archiver, its spool and the bucket say now.

The spool is read directly (queue depth, oldest file and its age) so the figures hold even when
the archiver is dead; the archiver's state file adds what only it knows (last archived file,
alarms, heartbeats); the bucket gives the newest archived segment per timeline. ``alarms`` joins
the archiver's with what this command sees itself (archiver not running, state stale, spool
over its bounds), so a monitor needs only this output.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from restorable.exceptions import ConfigError
from restorable.repository.layout import Layout
from restorable.services import Services
from restorable.storage.protocol import Store
from restorable.wal.continuity import archived_names
from restorable.wal.names import kind_of
from restorable.wal.spool import Spool
from restorable.wal.state import process_alive, read_state

#: The archiver writes its state every second; older than this, it is stuck or gone.
STALE_SECONDS = 30


def _age(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return round((datetime.now(UTC) - datetime.fromisoformat(iso.replace("Z", "+00:00"))).total_seconds(), 1)
    except ValueError:
        return None


def wal_status(services: Services, database_id: str, *, store: Store | None = None) -> dict[str, Any]:
    """The status document ``wal-status --json`` prints (see the module docstring)."""
    config = services.config
    db = config.database(database_id)
    if db.physical is None:
        raise ConfigError(f"{config.path}: database {database_id!r} has no physical block (no WAL archiving)")
    wal = db.physical.wal
    spool = Spool(wal.spool_dir)
    state = read_state(spool.state_path) or {}
    queue = _queue(spool)
    updated_age = _age(state.get("updated_at"))
    running = bool(state.get("running")) and process_alive(state.get("pid"))
    store = store if store is not None else services.store("restore")
    return {
        "database_id": database_id,
        "mode": wal.mode,
        "spool_dir": str(wal.spool_dir),
        "archiver": {
            "running": running,
            "pid": state.get("pid"),
            "started_at": state.get("started_at"),
            "updated_at": state.get("updated_at"),
            "updated_seconds_ago": updated_age,
            "counts": state.get("counts"),
            "segment_size": state.get("segment_size"),
        },
        "last_archived": state.get("last_archived"),
        "last_archived_segment": state.get("last_archived_segment"),
        "queue": queue,
        "archive_lag_seconds": state.get("archive_lag_seconds"),
        "streamer": state.get("streamer"),
        "last_heartbeat_committed": state.get("last_heartbeat_committed"),
        "last_heartbeat_archived": state.get("last_heartbeat_archived"),
        "alarms": _alarms(state, wal, running, updated_age, queue["spool_bytes"]),
        "bucket": _bucket(store, Layout(config.storage.prefix), database_id),
    }


def _queue(spool: Spool) -> dict[str, Any]:
    present = spool.directory.is_dir()
    files = spool.files(include_partial=True) if present else []
    oldest = files[0] if files else None
    return {
        "files": len(files),
        "bytes": sum(f.size for f in files),
        "spool_bytes": spool.total_bytes() if present else 0,
        "oldest": {"name": oldest.name, "age_seconds": round(max(0.0, time.time() - oldest.mtime), 1)}
        if oldest
        else None,
    }


def _alarm(kind: str, message: str) -> dict[str, str]:
    return {"name": kind, "kind": kind, "message": message}


def _alarms(
    state: dict[str, Any], wal: Any, running: bool, updated_age: float | None, spool_bytes: int
) -> list[dict[str, Any]]:
    """The archiver's own alarms (while it runs) and what this command sees for itself."""
    alarms = list(state.get("alarms") or []) if running else []
    if not wal.spool_dir.is_dir():
        alarms.append(_alarm("spool_missing", f"{wal.spool_dir} does not exist"))
    if not running:
        alarms.append(_alarm("archiver_down", "the wal-archiver is not running"))
    elif updated_age is not None and updated_age > STALE_SECONDS:
        alarms.append(_alarm("archiver_stale", f"state not updated for {updated_age} s"))
    names = {a["name"] for a in alarms}
    if spool_bytes >= wal.spool_max_bytes and "spool_full" not in names:
        alarms.append(_alarm("spool_full", f"spool holds {spool_bytes} bytes, its bound is {wal.spool_max_bytes}"))
    elif spool_bytes > wal.spool_alarm_bytes and "spool_alarm" not in names:
        alarms.append(_alarm("spool_alarm", f"spool holds {spool_bytes} bytes (alarm above {wal.spool_alarm_bytes})"))
    return alarms


def _bucket(store: Store, layout: Layout, database_id: str) -> dict[str, Any]:
    archived = archived_names(store, layout, database_id)
    segments = sorted(n for n in archived if kind_of(n) == "segment")
    newest: dict[str, str] = {}
    for name in segments:
        newest[name[:8]] = name
    return {
        "objects": len(archived),
        "newest_segment": segments[-1] if segments else None,
        "newest_per_timeline": newest,
        "history_files": sorted(n for n in archived if kind_of(n) == "history"),
    }
