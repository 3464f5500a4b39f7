"""Take a physical base backup: ``pg_basebackup``'s tar through the same chain as a dump.

sha256, zstd, age and a multipart upload, then the commit (the manifest, of kind ``physical``).
Between the two the command waits until every WAL segment from the backup's start to its stop is
in the bucket: a base backup without that WAL cannot be made consistent, so until then the upload
stays open, and when the WAL does not come (no archiver running) it is aborted: nothing that
looks restorable is left.

The manifest records where the backup sits in WAL (start and stop LSN, timeline, segments, the
``.backup`` label file), the server's version and system identifier, and PostgreSQL's own
``backup_manifest``, also stored as its own object so ``pg_verifybackup`` can be run against an
extracted copy (it is inside the tar as well).
"""

from __future__ import annotations

import io
import socket
import time
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

from restorable.commands.backup import check_bucket
from restorable.engines.postgres.engine import PostgresEngine
from restorable.exceptions import ConfigError, RestorableError, StorageError
from restorable.logs import backup_log, bind_run
from restorable.metadata import SnapshotMetadata
from restorable.physical.basebackup import (
    WalRange,
    read_server_facts,
    run_pg_basebackup,
    stage_pg_basebackup,
    wal_range_of,
)
from restorable.repository.lease import hold_lease
from restorable.repository.manifest import (
    BASE,
    PG_MANIFEST,
    TABLESPACE,
    BackupManifest,
    StoredObject,
    iso,
    new_backup_id,
    utcnow,
)
from restorable.services import Services
from restorable.storage.protocol import Store
from restorable.stream.encode import encode_stream

DUMP_FORMAT = "pg_basebackup-tar"
BASE_SUFFIX = "base.tar"
PG_MANIFEST_SUFFIX = "backup_manifest"
#: Seconds between looks at the bucket while waiting for the backup's WAL.
WAL_POLL_SECONDS = 0.5


def backup_label_file(wal: WalRange) -> str:
    """The ``.backup`` history file PostgreSQL archives for this backup (``<segment>.<offset>.backup``)."""
    return f"{wal.start_segment}.{wal.start_lsn % wal.segment_size:08X}.backup"


def wait_for_wal(
    store: Store, services: Services, database_id: str, needed: list[str], timeout: timedelta, log: Any
) -> float:
    """Seconds spent until every file in ``needed`` is in the bucket; StorageError naming the first
    missing one when ``timeout`` passes (the archiver is not running, or cannot keep up)."""
    layout = services.catalog("backup").layout
    started = time.monotonic()
    missing = list(needed)
    while missing:
        missing = [name for name in missing if not store.exists(layout.wal_key(database_id, name))]
        if not missing:
            break
        if time.monotonic() - started > timeout.total_seconds():
            raise StorageError(
                f"the WAL this base backup needs did not reach the bucket within {timeout}: "
                f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} missing",
                database=database_id,
                hint="Is `restorable wal-archiver` running for this database? `restorable wal-status "
                f"{database_id}` shows its queue; nothing was committed",
            )
        time.sleep(WAL_POLL_SECONDS)
    seconds = time.monotonic() - started
    log.info("base backup WAL in the bucket", segments=len(needed), wait_seconds=round(seconds, 2))
    return seconds


def _put_encrypted(store: Store, key: str, data: bytes, services: Services, db: Any, **lock: Any) -> StoredObject:
    """A small object through the same encoding as the data (zstd, age), written once."""
    body = io.BytesIO()
    digests = encode_stream(io.BytesIO(data), body, recipients=services.config.encryption.recipients, threads=0)
    result = store.put_bytes(key, body.getvalue(), if_none_match=True, **lock)
    return StoredObject(
        key=key,
        plain_bytes=digests.plain_bytes,
        stored_bytes=digests.stored_bytes,
        plain_sha256=digests.plain_sha256,
        stored_sha256=digests.stored_sha256,
        parts=1,
        part_size=digests.stored_bytes,
        version_id=result.version_id,
        role=PG_MANIFEST,
    )


def run_base_backup(
    services: Services,
    database_id: str,
    *,
    backup_id: str | None = None,
    run: dict[str, Any] | None = None,
) -> BackupManifest:
    """Take, store and commit one base backup of ``database_id``'s cluster; return its manifest."""
    config = services.config
    db = config.database(database_id)
    if db.physical is None or not db.physical.enabled:
        raise ConfigError(
            f"database {database_id} has no enabled physical block",
            database=database_id,
            hint="Add physical: {enabled: true, wal: {spool_dir: ...}} to its entry (docs/wal-archiver.md)",
        )
    started = utcnow()
    backup_id = backup_id or new_backup_id(started)
    log = backup_log(__name__, database_id, backup_id)
    bind_run(backup=backup_id)
    catalog = services.catalog("backup")
    if catalog.has_manifest(database_id, backup_id):
        log.info("base backup already committed; nothing to do")
        return catalog.read_manifest(database_id, backup_id)

    replication = services.resolve(db.physical.replication_conn_id)
    source = services.resolve(db.conn_id)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    facts = read_server_facts(replication)
    check_bucket(services, database_id)
    timings["preflight_seconds"] = time.monotonic() - t0

    lock = config.object_lock_for(database_id)
    lock_args = {"lock_mode": lock[0], "retain_until": started + timedelta(days=lock[1])} if lock else {}
    store = catalog.store
    layout = catalog.layout
    key = layout.data_key(database_id, backup_id, BASE_SUFFIX)
    label_text = f"restorable {database_id} {backup_id}"
    log.info("base backup starting", server=replication.describe(), key=key, timeline=facts.timeline)
    with hold_lease(store, layout.lease_key(database_id, backup_id), database_id, backup_id):
        t1 = time.monotonic()
        try:
            capture = (
                stage_pg_basebackup(replication, facts, label_text, db.physical.staging_dir)
                if facts.tablespaces
                else run_pg_basebackup(replication, facts, label_text)
            )
            with capture as running, ExitStack() as uploads:
                stored: list[tuple[str, int | None, str, Any, Any]] = []
                for role, oid, reader in running.parts():
                    part_key = key if role == BASE else layout.data_key(database_id, backup_id, f"tablespace-{oid}.tar")
                    upload = uploads.enter_context(store.multipart_upload(part_key, **lock_args))
                    digests = encode_stream(
                        reader,
                        upload,
                        recipients=config.encryption.recipients,
                        level=db.compression.level,
                        threads=db.compression.threads,
                    )
                    stored.append((role, oid, part_key, digests, upload))
                running.finish()
                # pg_basebackup has returned: the server's stop is at or before this moment.
                stopped_at = utcnow()
                timings["stream_seconds"] = time.monotonic() - t1
                wal = wal_range_of(running.pg_manifest, facts.segment_size)
                label = running.backup_label
                pg_manifest_bytes = running.pg_manifest
                # Inside the uploads: WAL that never comes aborts them, so no object is left over.
                needed = [*wal.segments(), backup_label_file(wal)]
                timings["wal_wait_seconds"] = wait_for_wal(
                    store, services, database_id, needed, db.physical.wal_wait, log
                )
            pg_manifest = _put_encrypted(
                store,
                layout.data_key(database_id, backup_id, PG_MANIFEST_SUFFIX),
                pg_manifest_bytes,
                services,
                db,
                **lock_args,
            )
            t2 = time.monotonic()
            # Counted after the stop: exact for a quiet database; writes during the backup show up as
            # differences when a restore to the backup's end is compared with them.
            description = PostgresEngine().describe(source)
            timings["metadata_seconds"] = time.monotonic() - t2
        except RestorableError as exc:
            exc.database = exc.database or database_id
            exc.backup_id = exc.backup_id or backup_id
            log.error("base backup failed; nothing committed", error=type(exc).__name__)
            raise
        objects = [
            StoredObject(
                key=part_key,
                plain_bytes=digests.plain_bytes,
                stored_bytes=digests.stored_bytes,
                plain_sha256=digests.plain_sha256,
                stored_sha256=digests.stored_sha256,
                parts=upload.result.parts,
                part_size=config.storage.part_size,
                version_id=upload.result.version_id,
                role=role,
            )
            for role, _oid, part_key, digests, upload in stored
        ]
        tablespace_keys = {oid: part_key for role, oid, part_key, _d, _u in stored if role == TABLESPACE}
        finished = utcnow()
        timings["total_seconds"] = time.monotonic() - t0
        manifest = BackupManifest(
            backup_id=backup_id,
            database_id=database_id,
            engine="postgres",
            dump_format=DUMP_FORMAT,
            created_at=iso(started),
            finished_at=iso(finished),
            objects=[
                *objects,
                pg_manifest,
            ],
            metadata=SnapshotMetadata(
                server_version=facts.server_version,
                row_counts=description.row_counts,
                schema=description.schema,
                position={"counted": "after_stop", "stop_lsn": wal.to_dict()["stop_lsn"]},
                tools={"pg_basebackup": getattr(running, "tool_version", "")},
            ),
            compression={"algorithm": "zstd", "level": db.compression.level, "frame_checksum": True},
            encryption={"format": "age", "recipients": list(config.encryption.recipients)},
            object_lock={"mode": lock_args["lock_mode"], "retain_until": iso(lock_args["retain_until"])}
            if lock_args
            else None,
            timings={k: round(v, 3) for k, v in timings.items()},
            run=run or {"by": "cli", "host": socket.gethostname()},
            source={
                "conn_id": db.physical.replication_conn_id,
                "host": replication.host,
                "port": replication.port,
                "database": source.schema,
                "server_identity": f"postgres:{facts.system_identifier}",
            },
            kind="physical",
            physical={
                "system_identifier": facts.system_identifier,
                "server_version": facts.server_version,
                "server_version_num": facts.server_version_num,
                "timeline": wal.timeline,
                "start_lsn": wal.to_dict()["start_lsn"],
                "stop_lsn": wal.to_dict()["stop_lsn"],
                "start_time": label.get("START TIME"),
                "stop_time": iso(stopped_at),
                "checkpoint_lsn": (label.get("CHECKPOINT LOCATION") or "").split(" ")[0] or None,
                "label": label.get("LABEL"),
                "backup_label_file": backup_label_file(wal),
                "data_checksums": facts.data_checksums,
                "tablespaces": [{**t, "key": tablespace_keys.get(int(t["oid"]))} for t in facts.tablespaces],
            },
            wal=wal.to_dict(),
        )
        catalog.write_manifest(manifest, **lock_args)
    log.info(
        "base backup committed",
        plain_bytes=manifest.plain_bytes,
        stored_bytes=manifest.stored_bytes,
        objects=len(manifest.objects),
        start_lsn=manifest.physical["start_lsn"],
        stop_lsn=manifest.physical["stop_lsn"],
        seconds=round(timings["total_seconds"], 2),
    )
    return manifest
