"""Restore a backup into a target database, then compare it with the manifest.

The target is only touched once decryption has produced its first plain bytes: a wrong
identity or a corrupt header fails before any database is created, cleared or written.
A non-empty target is refused unless ``overwrite`` is given explicitly. Any failure after
that (an interrupt, a cut stream, a hash found wrong at the end) drops the database the
restore created; one that existed before is left, and the error says it is not usable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from typing import IO, TYPE_CHECKING, Any

from restorable.commands.restore_target import check_target
from restorable.connections import ConnectionInfo
from restorable.engines import engine_for
from restorable.engines.base import Engine
from restorable.exceptions import IntegrityError, RestorableError
from restorable.keys import identity_for
from restorable.logs import backup_log
from restorable.metadata import SnapshotMetadata
from restorable.repository.manifest import BackupManifest
from restorable.repository.sealed import open_sealed
from restorable.services import Services

if TYPE_CHECKING:
    from restorable.storage.protocol import Store
    from restorable.stream.digests import StreamDigests


@dataclass
class RestoreReport:
    database_id: str
    backup_id: str
    target: str
    database: str
    plain_bytes: int
    stored_sha256: str
    plain_sha256: str
    restore_seconds: float
    compare_seconds: float
    expected_rows: int
    found_rows: int
    differences: list[str] = field(default_factory=list)
    #: The copy (``storage.copies``) restored from, when not the primary; and why it was used.
    copy: str | None = None
    fallback_reason: str | None = None

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class _StartOnFirstWrite:
    """A sink that opens the engine's restore only when the first plain bytes arrive."""

    def __init__(self, opener: Callable[[], Any], stack: ExitStack) -> None:
        self._opener = opener
        self._stack = stack
        self._sink: IO[bytes] | None = None
        self._opening = False

    @property
    def started(self) -> bool:
        """Whether the target may have been written: true from the moment its restore is opened,
        since an interrupt while the engine prepares it can leave a database it just created."""
        return self._opening

    def write(self, data: bytes) -> int:
        if self._sink is None:
            self._opening = True
            self._sink = self._stack.enter_context(self._opener())
        return self._sink.write(data)


def restore_stream(
    engine: Engine,
    store: Store,
    manifest: BackupManifest,
    target: ConnectionInfo,
    database: str,
    *,
    identity: str,
    overwrite: bool,
    jobs: int = 1,
    on_progress: Callable[[int], None] | None = None,
    source: ConnectionInfo | None = None,
) -> StreamDigests:
    """Restore ``manifest`` into ``database`` by its kind; check the hashes; return the digests.

    ``source`` (drills) refuses a target that is the source (see ``restore_target``). Each kind
    of backup has its own restorer; a logical backup is one dump stream into one database.
    """
    restorer = _RESTORERS.get(manifest.kind)
    if restorer is None:
        raise IntegrityError(
            f"this version cannot restore a backup of kind {manifest.kind!r}",
            database=manifest.database_id,
            backup_id=manifest.backup_id,
            hint="Use the version of Restorable that wrote this backup",
        )
    return restorer(
        engine,
        store,
        manifest,
        target,
        database,
        identity=identity,
        overwrite=overwrite,
        jobs=jobs,
        on_progress=on_progress,
        source=source,
    )


def _restore_logical(
    engine: Engine,
    store: Store,
    manifest: BackupManifest,
    target: ConnectionInfo,
    database: str,
    *,
    identity: str,
    overwrite: bool,
    jobs: int,
    on_progress: Callable[[int], None] | None,
    source: ConnectionInfo | None,
) -> StreamDigests:
    """Stream the dump into ``database`` through the engine's logical restore."""
    from restorable.stream.decode import decode_stream

    dump = manifest.dump
    metadata: SnapshotMetadata = manifest.metadata
    # Decided early, before reading a byte, so a refused restore costs nothing.
    state = check_target(
        engine,
        target,
        database,
        overwrite=overwrite,
        source=source,
        database_id=manifest.database_id,
        backup_id=manifest.backup_id,
        recorded_identity=manifest.source.get("server_identity"),
    )
    if manifest.sealed:
        # Before the target is touched: a wrong identity fails here, as it would on the data.
        metadata = replace(metadata, sealed=open_sealed(store, manifest, identity))
    # The version the manifest recorded: a newer one written over it is not what was backed up.
    body = store.open_read(dump.key, version_id=dump.version_id)
    sink = None
    try:
        with ExitStack() as stack:
            stack.callback(body.close)
            sink = _StartOnFirstWrite(
                lambda: engine.logical.restore(target, database, metadata, overwrite=overwrite, jobs=jobs), stack
            )
            digests = decode_stream(body, sink, identity=identity, on_progress=on_progress)
            if not sink.started:
                raise IntegrityError(
                    "the backup decrypted to nothing", database=manifest.database_id, backup_id=manifest.backup_id
                )
        # Inside the try: a hash found wrong at the end of the stream leaves a database as
        # unusable as one cut off in the middle.
        _check_digests(digests, manifest)
    except BaseException as exc:
        if sink is not None and sink.started:
            _unusable_target(engine, target, database, state, exc, manifest)
        raise
    return digests


def _check_digests(digests: StreamDigests, manifest: BackupManifest) -> None:
    """Both hashes of the stream as the manifest recorded them, else ``IntegrityError``."""
    dump = manifest.dump
    for what, found, expected in (
        ("stored object", digests.stored_sha256, dump.stored_sha256),
        ("plain dump", digests.plain_sha256, dump.plain_sha256),
    ):
        if found != expected:
            raise IntegrityError(
                f"{what} sha256 {found} differs from the manifest's {expected}",
                database=manifest.database_id,
                backup_id=manifest.backup_id,
                hint="Restore another backup; run restorable verify on this one",
            )


def _unusable_target(
    engine: Engine, target: ConnectionInfo, database: str, state: str, exc: BaseException, manifest: BackupManifest
) -> None:
    """After a failed restore wrote ``database``: drop it when this restore created it (it would
    look usable); when it existed before, say in the error that it was written and is not usable."""
    log = backup_log(__name__, manifest.database_id, manifest.backup_id)
    if state != "absent":
        log.error("the restore failed after writing a database that existed before", database=database)
        if isinstance(exc, RestorableError):
            exc.message += f"; the target database {database!r} existed before, was written and is not usable"
        return
    try:
        engine.drop_database(target, database)
    except RestorableError as drop:
        log.warning("could not drop the half-restored database", database=database, error=drop.message)
        if isinstance(exc, RestorableError):
            exc.message += f"; the half-restored database {database!r} could not be dropped and is not usable"
        return
    if isinstance(exc, RestorableError):
        exc.message += f"; the database {database!r} this restore created was dropped"


_RESTORERS: dict[str, Callable[..., StreamDigests]] = {"logical": _restore_logical}


def restore_backup(
    services: Services,
    database_id: str,
    backup_id: str,
    *,
    target: ConnectionInfo,
    database: str,
    overwrite: bool = False,
    identity: str | None = None,
    jobs: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> RestoreReport:
    """Restore and compare; the report lists every difference from the manifest."""
    from restorable.engines.compare import compare_descriptions

    db = services.config.databases.get(database_id)
    catalog = services.catalog("restore")
    manifest = catalog.read_manifest(database_id, backup_id)
    log = backup_log(__name__, database_id, manifest.backup_id)
    engine = engine_for(manifest.engine)
    identity = identity_for(services, catalog.store, manifest, identity)
    log.info("restore starting", target=target.describe(), database=database, overwrite=overwrite)
    t0 = time.monotonic()
    try:
        digests = restore_stream(
            engine,
            catalog.store,
            manifest,
            target,
            database,
            identity=identity,
            overwrite=overwrite,
            jobs=jobs or (db.restore_jobs if db else 1),
            on_progress=on_progress,
        )
    except RestorableError as exc:
        exc.database, exc.backup_id = exc.database or database_id, exc.backup_id or manifest.backup_id
        raise
    restore_seconds = time.monotonic() - t0
    t1 = time.monotonic()
    found = engine.describe(target.with_schema(database))
    differences = compare_descriptions(manifest.metadata, found)
    report = RestoreReport(
        database_id=database_id,
        backup_id=manifest.backup_id,
        target=target.describe(),
        database=database,
        plain_bytes=digests.plain_bytes,
        stored_sha256=digests.stored_sha256,
        plain_sha256=digests.plain_sha256,
        restore_seconds=round(restore_seconds, 3),
        compare_seconds=round(time.monotonic() - t1, 3),
        expected_rows=sum(manifest.metadata.row_counts.values()),
        found_rows=sum(found.row_counts.values()),
        differences=differences,
    )
    log.info("restore finished", seconds=report.restore_seconds, differences=len(differences))
    return report
