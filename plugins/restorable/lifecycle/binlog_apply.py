"""Carry out ``binlog_plan`` for one database: delete the archived binlogs no kept dump needs.

Files under Object Lock stay and are reported as retained; a file that fails to delete is an error
of the run, the others still go. A database with an unreadable manifest keeps all its binlogs
(that manifest may be the dump they are needed for).
"""

from __future__ import annotations

import logging
from typing import Any

from restorable.exceptions import StorageError
from restorable.lifecycle.apply import Outcome
from restorable.lifecycle.binlog_plan import binlog_not_needed
from restorable.repository.layout import Layout, binlog_file_of
from restorable.storage.errors import ObjectLocked
from restorable.storage.protocol import Store

log = logging.getLogger(__name__)


def prune_binlog(
    store: Store,
    layout: Layout,
    database: str,
    decisions: list[Any],
    by_id: dict[str, Any],
    scan: Any,
    report: Any,
    dry_run: bool,
    purge_versions: bool,
) -> None:
    """After a database's plan: the binlogs of the dumps it keeps stay, older files go."""
    if any(layout.parse(key).database == database for key, _ in scan.unreadable):
        return
    kept_backups = [by_id[d.backup_id] for d in decisions if d.action != "delete"]
    kept = [b.binlog_start for b in kept_backups if b.binlog_start]
    if not kept:
        return
    objects = {}
    for obj in store.list_objects(layout.binlog_prefix(database)):
        parsed = layout.parse(obj.key)
        name = binlog_file_of(parsed.name) if parsed.database == database else None
        if name is not None:
            objects[name.removesuffix(".partial")] = objects.get(name.removesuffix(".partial"), []) + [obj]
    doomed, oldest = binlog_not_needed(objects, kept)
    deleted, locked, size = [], [], 0
    for name in doomed:
        for obj in objects[name]:
            if not dry_run:
                try:
                    store.delete_all_versions(obj.key) if purge_versions else store.delete_object(obj.key)
                except ObjectLocked:
                    locked.append(obj.key)
                    continue
                except StorageError as exc:
                    report.errors.append(Outcome(database, None, f"binlog {name} not deleted: {exc.message}", obj.key))
                    continue
            deleted.append(obj.key)
            size += obj.size
    why = f"binlogs before {oldest}, the oldest kept dump's binlog file: no kept backup replays them"
    if deleted:
        report.binlog_deleted.append(Outcome(database, None, why, layout.binlog_prefix(database), size, keys=deleted))
    if locked:
        report.retained_by_lock.append(
            Outcome(database, None, f"{len(locked)} binlog object(s) not needed but under Object Lock", keys=locked)
        )
    log.info("lifecycle binlog database=%s deleted=%d locked=%d before=%s", database, len(deleted), len(locked), oldest)
