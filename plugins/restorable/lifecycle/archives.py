"""After a database's retention plan: prune its log archives (PostgreSQL WAL, MariaDB binlogs) to
what the kept backups need (``wal_apply``, ``binlog_apply``)."""

from __future__ import annotations

from typing import Any

from restorable.repository.layout import Layout
from restorable.storage.protocol import Store


def prune_archives(
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
    from restorable.lifecycle.binlog_apply import prune_binlog
    from restorable.lifecycle.wal_apply import prune_wal

    for prune in (prune_wal, prune_binlog):
        prune(store, layout, database, decisions, by_id, scan, report, dry_run, purge_versions)
