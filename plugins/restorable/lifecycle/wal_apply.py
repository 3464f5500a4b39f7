"""Carry out ``wal_plan`` for one database: delete the archived WAL no kept base backup needs.

Files under Object Lock stay and are reported as retained; a file that fails to delete is an error
of the run, the others still go.
"""

from __future__ import annotations

import logging
from typing import Any

from restorable.exceptions import StorageError
from restorable.lifecycle.apply import Outcome
from restorable.lifecycle.wal_plan import wal_not_needed
from restorable.repository.layout import Layout, wal_file_of
from restorable.storage.errors import ObjectLocked
from restorable.storage.protocol import Store
from restorable.wal.continuity import segment_size_of

log = logging.getLogger(__name__)


def delete_unneeded_wal(
    store: Store,
    layout: Layout,
    database: str,
    kept_starts: list[str],
    report: Any,
    dry_run: bool,
    purge_versions: bool,
) -> None:
    """Delete the WAL older than the oldest kept base backup's start (``wal_plan``); locked files stay."""
    if not kept_starts:
        return
    sizes = {}
    for obj in store.list_objects(layout.wal_prefix(database)):
        parsed = layout.parse(obj.key)
        name = wal_file_of(parsed.name) if parsed.database == database else None
        if name is not None:
            sizes[name] = (obj.key, obj.size)
    doomed, oldest = wal_not_needed(sizes, kept_starts, segment_size_of(store, layout, database, sorted(sizes)))
    if not doomed:
        return
    deleted, locked = [], []
    for name in doomed:
        key = sizes[name][0]
        if not dry_run:
            try:
                store.delete_all_versions(key) if purge_versions else store.delete_object(key)
            except ObjectLocked:
                locked.append(key)
                continue
            except StorageError as exc:
                report.errors.append(Outcome(database, None, f"WAL file {name} not deleted: {exc.message}", key))
                continue
        deleted.append(key)
    why = f"WAL before {oldest}, the oldest kept base backup's start: no kept backup replays it"
    if deleted:
        report.wal_deleted.append(
            Outcome(
                database,
                None,
                why,
                layout.wal_prefix(database),
                sum(sizes[wal_file_of(layout.parse(k).name)][1] for k in deleted),
                keys=deleted,
            )
        )
    if locked:
        report.retained_by_lock.append(
            Outcome(database, None, f"{len(locked)} WAL file(s) not needed but under Object Lock", keys=locked)
        )
    log.info("lifecycle wal database=%s deleted=%d locked=%d before=%s", database, len(deleted), len(locked), oldest)


def prune_wal(
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
    """After a database's plan: the WAL of the base backups it keeps stays, older WAL goes."""
    if any(layout.parse(key).database == database for key, _ in scan.unreadable):
        return  # an unreadable manifest may be a base backup whose WAL is needed
    kept = [
        by_id[d.backup_id].wal_start
        for d in decisions
        if d.action != "delete" and by_id[d.backup_id].kind == "physical" and by_id[d.backup_id].wal_start
    ]
    delete_unneeded_wal(store, layout, database, kept, report, dry_run, purge_versions)
