"""The restore drill: pick a backup, restore it into a scratch database, validate, record, drop.

A drill proves that a backup restores, not only that its bytes are intact. Its steps are core
functions of their own so that the drill DAG can run each as a task (and show which one failed)
while ``run_drill`` runs them in one go for the CLI::

    pick_backup      the newest verified backup at or before the run's date (or a given id),
                     and the scratch target, refused if it is the source (restore_target.py)
    restore_into     stream the backup into the scratch database, both hashes checked
    validate_restore Great Expectations per table + the schema comparison, against the manifest
    record_evidence  the drill record beside the backup (repository/evidence.py), pass or fail
    drop_scratch     drop the scratch database, whatever happened before
    drill_verdict    fail when the evidence does not prove the backup

The manual restore DAG restores and validates with the same two steps, into a target it names.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from restorable.commands.restore_target import (
    DrillTarget,
    drill_target,
    is_scratch_name,
    scratch_database_name,
    targets_source,
)
from restorable.connections import ConnectionInfo
from restorable.exceptions import RestorableError, StorageError, ValidationFailed
from restorable.logs import backup_log
from restorable.repository.manifest import BackupManifest, iso
from restorable.services import Services
from restorable.storage.errors import AccessDenied

#: Step names as the evidence records them (and as the drill DAG's task ids spell them).
RESTORE_STEP = "restore_scratch"
VALIDATE_STEP = "validate"
#: Differences shown in an error message; the evidence and the result hold up to 50.
SHOWN_DIFFERENCES = 10


@dataclass(frozen=True)
class PickedBackup:
    """The backup a drill restores, and where."""

    manifest: BackupManifest
    target: DrillTarget
    at_or_before: datetime | None
    seconds: float

    def summary(self) -> dict[str, Any]:
        """Small figures for XCom and the evidence (no schema, no secret)."""
        return {
            "backup_id": self.manifest.backup_id,
            "created_at": self.manifest.created_at,
            "at_or_before": iso(self.at_or_before) if self.at_or_before else None,
            "stored_bytes": self.manifest.stored_bytes,
            "scratch_database": self.target.scratch,
            "target": self.target.server.describe(),
            "seconds": self.seconds,
        }


def pick_backup(
    services: Services,
    database_id: str,
    backup_id: str = "latest",
    *,
    scratch: str,
    target_conn_id: str | None = None,
    at_or_before: datetime | None = None,
    verified_only: bool = True,
) -> PickedBackup:
    """The backup to drill and its scratch target; nothing is written.

    ``"latest"`` is the newest backup at or before ``at_or_before`` (all time when None), verified
    only unless told otherwise (a backfilled run re-drills the backup of its date). A given id is
    drilled as it is: the drill proves it either way. The target is decided first, so a drill
    aimed at its source is refused before the bucket is read.
    """
    started = time.monotonic()
    target = drill_target(services, database_id, scratch, target_conn_id=target_conn_id)
    catalog = services.catalog("restore")
    if backup_id == "latest":
        manifest = catalog.pick(database_id, at_or_before=at_or_before, verified_only=verified_only).manifest
    else:
        manifest = catalog.read_manifest(database_id, backup_id)
    picked = PickedBackup(manifest, target, at_or_before, round(time.monotonic() - started, 3))
    backup_log(__name__, database_id, manifest.backup_id).info(
        "picked",
        at_or_before=iso(at_or_before) if at_or_before else None,
        target=target.server.describe(),
        scratch=scratch,
    )
    return picked


def restore_into(
    services: Services,
    database_id: str,
    backup_id: str,
    *,
    target: ConnectionInfo,
    database: str,
    overwrite: bool,
    source: ConnectionInfo | None = None,
    identity: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Restore one backup into ``database`` on ``target`` (both hashes checked); return its figures.

    ``source`` (drills) refuses a target that is the source; a non-empty target is refused
    unless ``overwrite`` (see ``restore_target.check_target``).
    """
    from restorable.commands.restore import restore_stream
    from restorable.engines import engine_for
    from restorable.keys import identity_for

    catalog = services.catalog("restore")
    manifest = catalog.read_manifest(database_id, backup_id)
    log = backup_log(__name__, database_id, manifest.backup_id)
    log.info("restore starting", target=target.describe(), into=database, overwrite=overwrite)
    started = time.monotonic()
    try:
        digests = restore_stream(
            engine_for(manifest.engine),
            catalog.store,
            manifest,
            target,
            database,
            identity=identity_for(services, catalog.store, manifest, identity),
            overwrite=overwrite,
            jobs=services.config.database(database_id).restore_jobs,
            on_progress=on_progress,
            source=source,
        )
    except RestorableError as exc:
        exc.database, exc.backup_id = exc.database or database_id, exc.backup_id or manifest.backup_id
        raise
    seconds = round(time.monotonic() - started, 3)
    log.info("restore finished", seconds=seconds)
    return {
        "backup_id": manifest.backup_id,
        "target": target.describe(),
        "database": database,
        "overwrite": overwrite,
        "plain_bytes": digests.plain_bytes,
        "stored_sha256": digests.stored_sha256,
        "plain_sha256": digests.plain_sha256,
        "restore_seconds": seconds,
        "seconds": seconds,
    }


def validate_restore(
    services: Services,
    database_id: str,
    backup_id: str,
    *,
    target: ConnectionInfo,
    database: str,
    preloading: threading.Thread | None = None,
) -> dict[str, Any]:
    """Validate the restored ``database``: the engine's integrity check (indexes against tables,
    page structure), then the manifest's counts and schema with Great Expectations. Never raises
    for a mismatch: the result's ``ok`` and ``differences`` say it (see ``validation_error``).

    ``preloading``: the thread importing GX since before the restore (``validate.gx.preload``);
    what is left of its import is waited for here and counted in the validation's seconds."""
    from restorable.engines import engine_for
    from restorable.validate.expectations import expectations_path
    from restorable.validate.gx import sqlalchemy_url, validate_restored

    db = services.config.database(database_id)
    manifest = services.catalog("restore").read_manifest(database_id, backup_id)
    engine = engine_for(manifest.engine)
    conn = target.with_schema(database)
    started = time.monotonic()
    if preloading is not None:
        preloading.join()
    # First: a copy whose indexes disagree with its tables can still match every count.
    integrity = engine.check_integrity(conn)
    found = engine.describe(conn)
    summary = validate_restored(
        sqlalchemy_url(conn),
        manifest.metadata,
        engine=manifest.engine,
        extra_expectations_path=expectations_path(db.id, db.expectations, services.config.path),
        found=found,
    )
    checked = summary.to_dict()
    problems = [f"integrity: {p}" for p in integrity.problems]
    if integrity.more_problems:
        problems.append(f"integrity: {integrity.more_problems} more problem(s)")
    app = _app_check(services, db, engine, conn)
    problems_after = [f"app: {p}" for p in (app or {}).get("problems", [])]
    checked["differences"] = problems + list(checked.get("differences") or []) + problems_after
    checked["ok"] = bool(checked.get("ok")) and integrity.ok and not problems_after
    result = {
        **checked,
        "integrity": integrity.to_dict(),
        **({"app_check": app} if app is not None else {}),
        "backup_id": manifest.backup_id,
        "database": database,
        "expected_rows": sum(manifest.metadata.row_counts.values()),
        "found_rows": sum(found.row_counts.values()),
        "found_tables": len(found.row_counts),
        "seconds": round(time.monotonic() - started, 3),
    }
    backup_log(__name__, database_id, manifest.backup_id).info(
        "validation finished",
        ok=result["ok"],
        integrity_problems=len(integrity.problems) + integrity.more_problems,
        tables=summary.tables,
        expectations=summary.expectations,
        differences=len(result["differences"]),
        seconds=result["seconds"],
    )
    return result


def _app_check(services: Services, db: Any, engine: Any, conn: ConnectionInfo) -> dict[str, Any] | None:
    """Log in to the restored copy as the application's role and run its smoke queries (if configured)."""
    if db.app_check is None:
        return None
    from restorable.validate.smoke import run_smoke_queries

    password = services.resolve(db.app_check.conn_id).password
    app = replace(conn, login=db.app_check.role, password=password)
    return run_smoke_queries(engine, app, db.app_check.queries)


def validation_error(result: dict[str, Any], database_id: str) -> ValidationFailed:
    """The error a failed validation raises: the database, and the first differences with their
    expected and found figures."""
    diffs = list(result.get("differences") or [])
    total = len(diffs) + int(result.get("differences_truncated") or 0)
    shown = "; ".join(diffs[:SHOWN_DIFFERENCES])
    if total > SHOWN_DIFFERENCES:
        shown += f"; ... and {total - SHOWN_DIFFERENCES} more"
    return ValidationFailed(
        f"restored database {result.get('database')!r} differs from the manifest in {total} place(s): {shown}",
        differences=diffs,
        database=database_id,
        backup_id=result.get("backup_id"),
        hint="Do not rely on this backup: see docs/runbooks/drill-failed.md",
    )


def record_evidence(
    services: Services,
    database_id: str,
    picked: dict[str, Any],
    restored: dict[str, Any] | None,
    validation: dict[str, Any] | None,
    *,
    run: dict[str, Any],
    error: str | None = None,
    restore_step: str = RESTORE_STEP,
    validate_step: str = VALIDATE_STEP,
) -> dict[str, Any]:
    """Append the drill record beside the backup, pass or fail; return its summary (with its key).

    ``picked``, ``restored`` and ``validation`` are the steps' results (None: the step did not
    complete); ``error`` says why, when the caller knows better than "did not complete".
    """
    from restorable.repository.evidence import drill_record, record_drill, summarize

    failed_step = None
    if not restored:
        failed_step, error = restore_step, error or "the restore did not complete"
    elif not validation:
        failed_step, error = validate_step, error or "the validation did not complete"
    elif not validation.get("ok"):
        failed_step, error = validate_step, "; ".join(validation.get("differences", [])[:SHOWN_DIFFERENCES])
    else:
        error = None
    manifest = services.catalog("restore").read_manifest(database_id, picked["backup_id"])
    found = {k: (validation or {}).get(k) for k in ("found_rows", "found_tables")}
    record = drill_record(
        manifest,
        restore={**restored, **found} if restored else None,
        validation={k: v for k, v in (validation or {}).items() if k not in ("backup_id", "database")} or None,
        phases={
            "pick": picked.get("seconds"),
            "restore": (restored or {}).get("seconds"),
            "validate": (validation or {}).get("seconds"),
        },
        run=run,
        failed_step=failed_step,
        error=error,
    )
    # Evidence is written with the backup writer's connection (put, no delete); reading used the reader's.
    try:
        key = record_drill(services.catalog("backup"), manifest, record)
    except StorageError as exc:
        if not isinstance(exc.__cause__, AccessDenied):
            raise
        # A host holding only read credentials (a drill of a copy during an incident) still learns
        # whether the backup restores; the record cannot be kept there, and the result says so.
        backup_log(__name__, database_id, manifest.backup_id).warning(
            "drill evidence NOT recorded: these credentials may not write", error=exc.message
        )
        key = None
    else:
        backup_log(__name__, database_id, manifest.backup_id).info("drill evidence recorded", ok=record["ok"], key=key)
    return summarize(record, key)


def drop_scratch(
    services: Services, database_id: str, scratch: str, *, target_conn_id: str | None = None
) -> dict[str, Any]:
    """Drop the drill's scratch database if it exists; never the source, never a non-scratch name."""
    from restorable.engines import engine_for

    db = services.config.database(database_id)
    conn_id = target_conn_id or db.restore_target_conn_id
    log = backup_log(__name__, database_id)
    if not conn_id:
        return {"dropped": None}
    target = services.resolve(conn_id)
    if not is_scratch_name(scratch) or targets_source(services.resolve(db.conn_id), target, scratch):
        log.warning("not a scratch database of this drill; nothing dropped", scratch=scratch, target=target.describe())
        return {"dropped": None, "target": target.describe()}
    engine_for(db.engine).drop_database(target, scratch)
    log.info("scratch dropped", scratch=scratch, target=target.describe())
    return {"dropped": scratch, "target": target.describe()}


def before_first_backup(services: Services, database_id: str, at: datetime) -> str | None:
    """Why a drill dated ``at`` has nothing to prove yet (no backup of the database existed by then), or None.

    A drill DAG unpaused before its database's first backup would otherwise go red for every slot
    before it; from the first backup on, finding nothing to drill is a failure again.
    """
    entries = services.catalog("restore").entries(database_id)
    first = min((e.manifest.created for e in entries), default=None)
    if first is not None and first <= at:
        return None
    if first is None:
        return f"no backup of {database_id} exists yet: the drill of {iso(at)} has nothing to prove"
    return f"the drill of {iso(at)} is before the first backup of {database_id} ({iso(first)}): nothing to prove yet"


def drill_verdict(evidence: dict[str, Any] | None, database_id: str) -> dict[str, Any]:
    """The evidence when it proves the backup; ``ValidationFailed`` naming the failed step if not."""
    if not evidence:
        raise ValidationFailed(
            f"no drill evidence was recorded for {database_id}; see the failed task", database=database_id
        )
    if not evidence.get("ok"):
        raise ValidationFailed(
            f"the drill failed at {evidence.get('failed_step')}; evidence at {evidence.get('record_key')}",
            database=database_id,
            backup_id=evidence.get("backup_id"),
        )
    if not evidence.get("record_key"):
        # The drill DAG's proof is its record: a pass nobody can read later is not one (the CLI on a
        # read-only host reports the pass and that it was not recorded).
        raise ValidationFailed(
            "the drill passed but its evidence was not recorded (the storage connection may not write)",
            database=database_id,
            backup_id=evidence.get("backup_id"),
            hint="Give storage.conn_id put rights on the bucket (include/iam/backup-writer.json)",
        )
    return evidence


@dataclass
class DrillResult:
    """What one drill proved: the verdict, the evidence's summary and every step's figures."""

    database_id: str
    backup_id: str
    scratch_database: str
    target: str
    evidence: dict[str, Any]
    picked: dict[str, Any]
    restore: dict[str, Any] | None
    validation: dict[str, Any] | None
    dropped: bool
    differences: list[str] = field(default_factory=list)
    #: The copy (``storage.copies``) drilled, when not the primary; and why it was used.
    copy: str | None = None
    fallback_reason: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.evidence.get("ok"))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def error(self) -> ValidationFailed | None:
        """The failed validation as an error (names the tables and figures), None on a pass."""
        if self.ok:
            return None
        if self.validation is not None and not self.validation.get("ok"):
            return validation_error(self.validation, self.database_id)
        try:
            drill_verdict(self.evidence, self.database_id)
        except ValidationFailed as exc:
            return exc
        return None


def run_drill(
    services: Services,
    database_id: str,
    backup_id: str = "latest",
    *,
    target_conn_id: str | None = None,
    at_or_before: datetime | None = None,
    scratch: str | None = None,
    run: dict[str, Any] | None = None,
    verified_only: bool = True,
    identity: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> DrillResult:
    """Run every step of a drill; return the verdict with the evidence written and the scratch gone.

    A refused target or a missing backup raises before anything is written. A failed validation
    is a result (``ok`` false, ``differences``); a failed restore raises, after its evidence is
    recorded. The scratch database is dropped in every case, an interrupt included.
    """
    scratch = scratch or scratch_database_name(database_id)
    run = run or {"by": "cli", "host": socket.gethostname()}
    log = backup_log(__name__, database_id)
    picked = pick_backup(
        services,
        database_id,
        backup_id,
        scratch=scratch,
        target_conn_id=target_conn_id,
        at_or_before=at_or_before,
        verified_only=verified_only,
    )
    chosen = picked.manifest.backup_id
    restored = validation = None
    failing = True
    from restorable.validate.gx import preload

    preloading = preload()
    try:
        try:
            restored = restore_into(
                services,
                database_id,
                chosen,
                target=picked.target.server,
                database=scratch,
                # The scratch name is this run's own: whatever holds it is a leftover of this drill.
                overwrite=True,
                source=picked.target.source,
                identity=identity,
                on_progress=on_progress,
            )
            validation = validate_restore(
                services, database_id, chosen, target=picked.target.server, database=scratch, preloading=preloading
            )
        except Exception as exc:
            message = exc.message if isinstance(exc, RestorableError) else f"{type(exc).__name__}: {exc}"
            try:
                record_evidence(services, database_id, picked.summary(), restored, validation, run=run, error=message)
            except RestorableError as recording:  # the drill's own failure is the one to report
                log.error("could not record the failed drill's evidence", error=recording.message)
            raise
        evidence = record_evidence(services, database_id, picked.summary(), restored, validation, run=run)
        failing = False
    finally:
        try:
            dropped = drop_scratch(services, database_id, scratch, target_conn_id=target_conn_id)["dropped"]
        except RestorableError as exc:
            if not failing:
                raise
            # Already failing: keep that error; the leftover scratch is named in the log.
            log.error("could not drop the scratch database", scratch=scratch, error=exc.message)
    return DrillResult(
        database_id=database_id,
        backup_id=chosen,
        scratch_database=scratch,
        target=picked.target.server.describe(),
        evidence=evidence,
        picked=picked.summary(),
        restore=restored,
        validation=validation,
        dropped=dropped == scratch,
        differences=list((validation or {}).get("differences") or []),
    )
