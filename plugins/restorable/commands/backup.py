"""Take a backup: capture in a snapshot, stream it to the bucket, commit with the manifest.

A failure anywhere (the dump exits non-zero, a part fails after retries, the process is
killed) leaves no backup: the multipart upload is aborted and no manifest is written, so
nothing half-done can ever look complete.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from restorable.engines import engine_for
from restorable.exceptions import RestorableError
from restorable.keys import provider_for
from restorable.logs import backup_log
from restorable.repository.lease import hold_lease
from restorable.repository.manifest import DUMP, BackupManifest, StoredObject, iso, new_backup_id, utcnow
from restorable.repository.sealed import write_sealed
from restorable.services import Services


def check_bucket(services: Services, database_id: str) -> None:
    """The bucket is there, these credentials reach it, and it can hold what the config asks.

    Before any dump starts: a backup that would fail at its first part, or at the commit, fails here
    instead. Object Lock can only be enabled when a bucket is created, so a config asking for
    it against a bucket without it cannot be fixed by retrying.
    """
    from restorable.exceptions import ConfigError
    from restorable.storage.errors import AccessDenied, Unsupported

    store = services.store("backup")
    store.head_bucket()
    if services.config.object_lock_for(database_id) is None:
        return
    bucket = services.config.storage.bucket
    try:
        lock = store.get_object_lock_configuration()
    except (AccessDenied, Unsupported) as exc:
        # Older copies of the writer's policy lack the read; the locked put will say it instead.
        backup_log(__name__, database_id, None).warning("bucket Object Lock not checked", error=exc.message)
        return
    if not lock or lock.get("ObjectLockEnabled") != "Enabled":
        raise ConfigError(
            f"Object Lock is configured for {database_id} but bucket s3://{bucket} has no Object Lock",
            database=database_id,
            hint="Object Lock can only be enabled when a bucket is created: create the bucket with Object "
            "Lock, or remove storage.object_lock and the database's retention.object_lock",
        )


def _server_identity(engine: Any, source: Any, log: Any) -> str | None:
    """The source server's identity for the manifest; a role that may not read it records none."""
    try:
        return engine.server_identity(source)
    except RestorableError as exc:
        log.warning("the source server's identity could not be read; the manifest records none", error=exc.message)
        return None


def run_backup(
    services: Services,
    database_id: str,
    *,
    backup_id: str | None = None,
    run: dict[str, Any] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BackupManifest:
    """Back up one configured database and return its committed manifest.

    ``backup_id`` given and already committed (a retried Airflow run): that manifest is
    returned and nothing is written twice.
    """
    from restorable.stream.encode import encode_stream

    config = services.config
    db = config.database(database_id)
    engine = engine_for(db.engine)
    started = utcnow()
    backup_id = backup_id or new_backup_id(started)
    log = backup_log(__name__, database_id, backup_id)
    catalog = services.catalog("backup")
    if catalog.has_manifest(database_id, backup_id):
        log.info("backup already committed; nothing to do")
        return catalog.read_manifest(database_id, backup_id)

    source = services.resolve(db.conn_id)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    tools = engine.preflight(source)
    server_identity = _server_identity(engine, source, log)
    check_bucket(services, database_id)
    timings["preflight_seconds"] = time.monotonic() - t0

    storage = config.storage
    lock = config.object_lock_for(database_id)
    lock_mode = lock[0] if lock else None
    retain_until = started + timedelta(days=lock[1]) if lock else None
    key = catalog.layout.data_key(database_id, backup_id, engine.logical.data_suffix)
    store = catalog.store
    log.info("backup starting", engine=db.engine, source=source.describe(), key=key)
    # While it streams the backup holds a lease: the lifecycle never takes it for an orphan.
    with hold_lease(store, catalog.layout.lease_key(database_id, backup_id), database_id, backup_id):
        # Before the dump starts: a KMS that refuses to wrap costs no dump (envelope mode writes its key object).
        keys = provider_for(services).keys_for_backup(
            store, catalog.layout, database_id, backup_id, lock_mode=lock_mode, retain_until=retain_until
        )
        t1 = time.monotonic()
        try:
            with engine.logical.capture_streaming(source) as (pending, dump):
                timings["snapshot_seconds"] = time.monotonic() - t1

                def progress(plain_bytes: int) -> None:
                    # Counting failed (rights, a lost connection): stop streaming now, not at the end.
                    pending.raise_if_failed()
                    if on_progress is not None:
                        on_progress(plain_bytes)

                with store.multipart_upload(key, lock_mode=lock_mode, retain_until=retain_until) as upload:
                    digests = encode_stream(
                        dump.stdout,
                        upload,
                        recipients=keys.recipients,
                        level=db.compression.level,
                        threads=db.compression.threads,
                        on_progress=progress,
                    )
                    # Inside the upload: a failed dump or metadata reading must abort it, not complete it.
                    dump.finish()
                    metadata = pending.result()
                timings["metadata_seconds"] = pending.seconds or 0.0
        except RestorableError as exc:
            exc.database = exc.database or database_id
            exc.backup_id = exc.backup_id or backup_id
            log.error("backup failed; nothing committed", error=type(exc).__name__)
            raise
        timings["stream_seconds"] = time.monotonic() - t1
        result = upload.result
        # Before the manifest (the commit): a crash in between leaves an orphan, never a manifest
        # pointing at values it cannot restore. A retried run overwrites it (a new version).
        sealed = write_sealed(
            store,
            catalog.layout.sealed_key(database_id, backup_id),
            metadata.sealed,
            keys.recipients,
            lock_mode=lock_mode,
            retain_until=retain_until,
        )
        finished = utcnow()
        timings["total_seconds"] = time.monotonic() - t0
        metadata.tools = {**tools, **metadata.tools}
        manifest = BackupManifest(
            backup_id=backup_id,
            database_id=database_id,
            engine=db.engine,
            dump_format=engine.logical.dump_format,
            created_at=iso(started),
            finished_at=iso(finished),
            objects=[
                StoredObject(
                    key=key,
                    plain_bytes=digests.plain_bytes,
                    stored_bytes=digests.stored_bytes,
                    plain_sha256=digests.plain_sha256,
                    stored_sha256=digests.stored_sha256,
                    parts=result.parts,
                    part_size=storage.part_size,
                    version_id=result.version_id,
                    role=DUMP,
                ),
            ],
            metadata=metadata,
            compression={"algorithm": "zstd", "level": db.compression.level, "frame_checksum": True},
            encryption=keys.record,
            object_lock={"mode": lock_mode, "retain_until": iso(retain_until)} if retain_until else None,
            timings={k: round(v, 3) for k, v in timings.items()},
            run=run or {"by": "cli", "host": socket.gethostname()},
            source={
                "conn_id": db.conn_id,
                "host": source.host,
                "port": source.port,
                "database": source.schema,
                # Who the server is, whatever name reached it: drills refuse it as a target by this
                # even while it is down (restore_target.same_server).
                "server_identity": server_identity,
            },
            sealed=sealed,
        )
        catalog.write_manifest(manifest, lock_mode=lock_mode, retain_until=retain_until)
    log.info(
        "backup committed",
        plain_bytes=digests.plain_bytes,
        stored_bytes=digests.stored_bytes,
        seconds=round(timings["total_seconds"], 2),
        stored_sha256=digests.stored_sha256,
    )
    return manifest
