"""Before a base backup starts: can its WAL be archived, and is the archiver taking it?

A base backup is only restorable with the WAL from its start to its stop in the bucket, and
``run_base_backup`` waits for it (``physical.wal_wait``) before it commits. Checking first turns
"waited ten minutes, then gave up" into an error that names the cause: the server's settings
(``wal_level``, ``archive_mode``, ``max_wal_senders``, the REPLICATION role, read through the
replication connection) and the archiver as ``wal-status`` sees it (running, its state fresh,
its spool present and not full).
"""

from __future__ import annotations

from typing import Any

from restorable.commands.backup import check_bucket
from restorable.exceptions import ConfigError, WalArchiverUnhealthy
from restorable.physical.basebackup import physical_problems, read_server_facts
from restorable.services import Services
from restorable.wal.status import wal_status

#: ``wal-status`` alarms that mean WAL is not reaching the bucket now: no base backup can complete.
BLOCKING_ALARMS = ("archiver_down", "archiver_stale", "spool_missing", "spool_full")


def archiver_problems(status: dict[str, Any]) -> list[str]:
    """What in a ``wal_status`` document stops WAL from reaching the bucket, each as one sentence."""
    return [
        f"{alarm['name']}: {alarm.get('message', '')}".rstrip(": ")
        for alarm in status.get("alarms") or []
        if alarm.get("name") in BLOCKING_ALARMS
    ]


def preflight_base_backup(services: Services, database_id: str) -> dict[str, Any]:
    """Check server settings, archiver and bucket; return what was seen (no secret).

    ConfigError (permanent) for server settings or a disabled physical block; WalArchiverUnhealthy
    (retried) when the archiver is stopped or stale; the bucket's own errors as ``check_bucket``
    raises them.
    """
    db = services.config.database(database_id)
    if db.physical is None or not db.physical.enabled:
        raise ConfigError(
            f"database {database_id} has no enabled physical block",
            database=database_id,
            hint="Add physical: {enabled: true, wal: {spool_dir: ...}} to its entry (docs/wal-archiver.md)",
        )
    replication = services.resolve(db.physical.replication_conn_id)
    facts = read_server_facts(replication)
    problems = physical_problems(facts)
    if problems:
        raise ConfigError(
            f"{replication.describe()} cannot take a restorable base backup: " + "; ".join(problems),
            database=database_id,
            hint="Change the settings named, then run the DAG again (docs/wal-archiver.md)",
        )
    status = wal_status(services, database_id)
    stopped = archiver_problems(status)
    if stopped:
        raise WalArchiverUnhealthy(
            f"the WAL archiver of {database_id} is not archiving: " + "; ".join(stopped),
            database=database_id,
            hint=f"Start it (`restorable wal-archiver {database_id}`, a service on the database host) and "
            f"check `restorable wal-status {database_id}`; without it the base backup's WAL never reaches "
            "the bucket. Runbook: docs/runbooks/wal-archive.md",
        )
    check_bucket(services, database_id)
    archiver = status["archiver"]
    return {
        "database_id": database_id,
        "server": replication.describe(),
        "server_version": facts.server_version,
        "timeline": facts.timeline,
        "wal_level": facts.settings.get("wal_level"),
        "archive_mode": facts.settings.get("archive_mode"),
        "archiver": {
            "pid": archiver.get("pid"),
            "updated_seconds_ago": archiver.get("updated_seconds_ago"),
            "queue_files": status["queue"]["files"],
        },
        "bucket": services.config.storage.bucket,
    }
