"""The point-in-time drill: restore to a moment between two heartbeats and prove exactness.

1. Choose T: a random pair of consecutive heartbeats (the archiver commits one every few seconds)
   that both lie after the newest base backup's end and at or before the newest archived commit;
   T is the midpoint between them. Each heartbeat row records ``clock_timestamp()`` just before
   its commit, and commits take milliseconds, so beat *i* is committed before T and beat *i+1*
   after it: the rows a restore to T must hold are known exactly, with no clock of ours involved.
   A T given by hand is snapped the same way, to the pair around it.
2. Restore into a throwaway directory and port (``archive_mode = off``, the bucket read with the
   restore role), start it, wait until replay pauses at T.
3. Prove: the heartbeat ids in the copy are exactly the source's ids up to beat *i*; the last
   replayed commit is at or before T; beat *i+1* is archived and absent; the server log says where
   recovery stopped.
4. Evidence beside the base backup (kind ``pitr_drill``): T, the base backup and its age, files and
   bytes replayed, replay MB/s, RTO (restore start to the copy accepting connections at T), RPO at
   drill time (now − the newest archived commit), the exactness result. The server and its
   directory are removed whatever happened.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from restorable.engines.postgres.engine import PostgresEngine
from restorable.engines.postgres.tools import connect
from restorable.exceptions import IntegrityError, NotFound, RestorableError, RestoreRefused
from restorable.logs import backup_log
from restorable.physical.archive_end import read_archive_end
from restorable.physical.restore import PhysicalRestore, physical_bases, restore_to_point
from restorable.physical.server import remove_restored, stop_server
from restorable.physical.targets import RecoveryTarget
from restorable.repository.manifest import iso, parse_iso, utcnow
from restorable.services import Services
from restorable.wal.heartbeat import SCHEMA, TABLE

log = logging.getLogger(__name__)

EVIDENCE_KIND = "pitr_drill"


@dataclass
class PitrDrillResult:
    database_id: str
    ok: bool
    target: str
    base_backup: str
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    evidence_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "database_id": self.database_id,
            "ok": self.ok,
            "target": self.target,
            "base_backup": self.base_backup,
            "problems": self.problems,
            "evidence_key": self.evidence_key,
            **self.figures,
        }


def _beats(services: Services, database_id: str) -> list[tuple[int, datetime]]:
    source = services.resolve(services.config.database(database_id).conn_id)
    with connect(source, PostgresEngine.database_of(source)) as pg:
        return [(int(i), at) for i, at in pg.execute(f"SELECT id, at FROM {SCHEMA}.{TABLE} ORDER BY id")]


def choose_moment(
    beats: list[tuple[int, datetime]], after: datetime, until: datetime, wanted: datetime | None, rng: random.Random
) -> tuple[datetime, tuple[int, datetime], tuple[int, datetime]]:
    """(T, beat before, beat after): T midway between two consecutive beats in (after, until]."""
    pairs = [(a, b) for a, b in zip(beats, beats[1:], strict=False) if a[1] > after and b[1] <= until]
    if wanted is not None:
        pairs = [(a, b) for a, b in pairs if a[1] <= wanted < b[1]]
    if not pairs:
        raise RestoreRefused(
            "no two heartbeats lie between the newest base backup's end and the newest archived commit"
            + (f" around {iso(wanted)}" if wanted else ""),
            hint="Is the WAL archiver running with its heartbeat? A drill needs a few beats archived after a base "
            "backup (wal-status shows the newest archived beat)",
        )
    before, after_beat = rng.choice(pairs)
    return before[1] + (after_beat[1] - before[1]) / 2, before, after_beat


def as_of_for_run(logical_date: datetime | None, now: datetime, rpo_objective: timedelta) -> datetime | None:
    """The date a drill run stands for: its logical date when that lies further back than the RPO
    objective (a backfill, or a run triggered for a past date), else None: the newest moment.

    A run dated about now cannot drill "the base backup current then, a moment before it": the
    archive reaches only to about now minus the RPO, so that moment may not be archived yet.
    """
    if logical_date is None or now - logical_date <= rpo_objective:
        return None
    return logical_date


def run_pitr_drill(
    services: Services,
    database_id: str,
    *,
    identity: str,
    target_time: datetime | None = None,
    work_dir: Path | None = None,
    seed: int | None = None,
    as_of: datetime | None = None,
) -> PitrDrillResult:
    """Restore to a moment, prove exactly the rows committed by then are there, record the evidence.

    ``as_of`` (a backfilled run's logical date): the base backup current then, and a moment before it.
    """
    started = time.monotonic()
    bases = physical_bases(services, database_id)
    if as_of is not None:
        bases = [b for b in bases if parse_iso(b.physical["stop_time"]) <= as_of]
    if not bases:
        when = f" ended by {iso(as_of)}" if as_of else ""
        raise NotFound(f"no physical base backup of {database_id}{when} to drill", database=database_id)
    base = bases[-1]
    blog = backup_log(__name__, database_id, base.backup_id)
    store, layout = services.store("restore"), services.catalog("restore").layout
    end = read_archive_end(store, layout, identity, database_id, base.physical["timeline"])
    if end is None or end.last_commit_time is None:
        raise RestoreRefused(f"the WAL archive of {database_id} holds no commit to recover to", database=database_id)
    beats = _beats(services, database_id)
    until = min(end.last_commit_time, as_of) if as_of else end.last_commit_time
    moment, before, after = choose_moment(
        beats, parse_iso(base.physical["stop_time"]), until, target_time, random.Random(seed)
    )
    rpo = utcnow() - end.last_commit_time
    problems = _preconditions(services, database_id, base, rpo)
    if problems:
        # Found before restoring: recorded like any failed drill, nothing to clean up.
        record = {
            "ok": False,
            "target": iso(moment),
            "problems": problems,
            "rpo_seconds_at_drill": round(rpo.total_seconds(), 1),
        }
        key = services.catalog("backup").record(database_id, base.backup_id, EVIDENCE_KIND, record)
        raise IntegrityError(
            f"point-in-time drill of {database_id} failed: " + "; ".join(problems),
            database=database_id,
            backup_id=base.backup_id,
            hint=f"Evidence at {key}; see docs/runbooks/pitr-drill-failed.md",
        )
    scratch = Path(tempfile.mkdtemp(prefix=f"restorable-pitr-{database_id}-", dir=work_dir))
    scratch.chmod(0o711)  # the copy runs as postgres inside
    target_dir = scratch / "pgdata"
    request = PhysicalRestore(
        database_id, RecoveryTarget("time", iso(moment)), target_dir, base_id=base.backup_id, start=True
    )
    figures: dict[str, Any] = {
        "base_age_seconds": round((utcnow() - parse_iso(base.physical["stop_time"])).total_seconds(), 1),
        "rpo_seconds_at_drill": round((utcnow() - end.last_commit_time).total_seconds(), 1),
        "newest_archived_commit": iso(end.last_commit_time),
        "heartbeat_before": {"id": before[0], "at": iso(before[1])},
        "heartbeat_after": {"id": after[0], "at": iso(after[1])},
    }
    blog.info("pitr drill starting", target=iso(moment), scratch=str(scratch))
    problems = []
    try:
        report = restore_to_point(services, request, identity=identity)
        recovery = report["recovery"]
        rto = time.monotonic() - started
        segment = int(base.wal.get("segment_size") or 16 << 20)
        replayed = recovery.get("restored_files", 0) * segment
        figures.update(
            rto_seconds=round(rto, 3),
            extract_seconds=report.get("extract_seconds"),
            recovery_seconds=recovery.get("recovery_seconds"),
            wal_files_replayed=recovery.get("restored_files"),
            wal_bytes_replayed=replayed,
            replay_mb_per_s=round(replayed / recovery["recovery_seconds"] / 1e6, 1)
            if recovery.get("recovery_seconds")
            else None,
            last_replayed_commit=recovery.get("last_replayed_commit"),
            recovery_stop=recovery.get("recovery_stop"),
            port=report["port"],
        )
        problems += _prove(services, database_id, report["port"], moment, before, after, beats, recovery)
        figures["heartbeats_checked"] = sum(1 for i, _ in beats if i <= before[0])
        figures["validation"] = _validate_copy(services, database_id, base, report["port"])
    except RestorableError as exc:
        # A restore that cannot reach T is the drill's finding, recorded like a mismatch.
        problems.append(f"the restore to {iso(moment)} failed: {exc.message}")
    finally:
        if (target_dir / "postmaster.pid").exists():
            stop_server(target_dir, base)
        remove_restored(scratch)
    result = PitrDrillResult(database_id, not problems, iso(moment), base.backup_id, problems, figures)
    record = {"ok": result.ok, "target": result.target, "problems": problems, **figures}
    result.evidence_key = services.catalog("backup").record(database_id, base.backup_id, EVIDENCE_KIND, record)
    if problems:
        blog.error("pitr drill failed", problems=len(problems))
        raise IntegrityError(
            f"point-in-time drill of {database_id} to {iso(moment)} failed: " + "; ".join(problems),
            database=database_id,
            backup_id=base.backup_id,
            hint=f"Evidence at {result.evidence_key}",
        )
    blog.info("pitr drill passed", target=iso(moment), rto_seconds=figures.get("rto_seconds"))
    return result


def _copy_of(services: Services, database_id: str, port: int) -> tuple[Any, Any]:
    """The source's connection, and the same login on the drill's copy (127.0.0.1:``port``)."""
    from dataclasses import replace

    source = services.resolve(services.config.database(database_id).conn_id)
    return source, replace(source, conn_type="postgres", host="127.0.0.1", port=port, extra={})


def _validate_copy(services: Services, database_id: str, base: Any, port: int) -> dict[str, Any]:
    """Great Expectations on the copy, against the newest logical backup's counts and schema (else the
    base backup's own): reported, not failed, since the data changed between that backup and T."""
    from restorable.commands.drill import validate_restore
    from restorable.exceptions import NotFound as NoBackup

    # Checked and proven paused at T: now end recovery, so amcheck can be created in the copy (a
    # read-only standby refuses CREATE EXTENSION). archive_mode is off: nothing of it is archived.
    _promote_copy(services, database_id, port)
    try:
        reference = services.catalog("restore").pick(database_id).backup_id
    except NoBackup:
        reference = base.backup_id
    source, copy = _copy_of(services, database_id, port)
    try:
        result = validate_restore(services, database_id, reference, target=copy, database=source.schema or "postgres")
    except RestorableError as exc:
        return {"reference_backup": reference, "error": exc.message}
    return {
        "reference_backup": reference,
        "ok": result.get("ok"),
        "expected_rows": result.get("expected_rows"),
        "found_rows": result.get("found_rows"),
        "integrity_ok": (result.get("integrity") or {}).get("ok"),
        "changed_since_reference": list(result.get("differences") or [])[:50],
        "seconds": result.get("seconds"),
    }


def _promote_copy(services: Services, database_id: str, port: int, timeout: float = 60) -> None:
    source, copy = _copy_of(services, database_id, port)
    with connect(copy, PostgresEngine.database_of(source)) as pg:
        pg.execute("SELECT pg_wal_replay_resume()")
        deadline = time.monotonic() + timeout
        while pg.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            if time.monotonic() > deadline:
                raise RestoreRefused(f"the drill's copy did not leave recovery within {timeout:.0f} s")
            time.sleep(0.1)


def _preconditions(services: Services, database_id: str, base: Any, rpo: Any) -> list[str]:
    """What makes the drill fail before it restores: RPO past its objective (the archiver stopped or
    behind), and a newer timeline in the bucket than the server's (a promoted copy archived into it)."""
    from restorable.wal.continuity import archived_names

    problems = []
    db = services.config.database(database_id)
    objective = db.physical.monitor.rpo_objective if db.physical is not None else None
    if objective is not None and rpo > objective:
        problems.append(
            f"RPO at drill time is {rpo.total_seconds():.0f} s, past the objective of "
            f"{objective.total_seconds():.0f} s: the newest archived commit is that old (is the WAL archiver "
            "running? see rpo.md)"
        )
    store, layout = services.store("restore"), services.catalog("restore").layout
    histories = [int(n[:8], 16) for n in archived_names(store, layout, database_id) if n.endswith(".history")]
    source = services.resolve(db.conn_id)
    with connect(source, PostgresEngine.database_of(source)) as pg:
        server_timeline = int(pg.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()[0])
    if histories and max(histories) > server_timeline:
        problems.append(
            f"the bucket's newest timeline is {max(histories)}, the server is on {server_timeline}: a promoted "
            "copy archived into this archive (a restore following 'latest' would take its path)"
        )
    return problems


def _prove(
    services: Services,
    database_id: str,
    port: int,
    moment: datetime,
    before: tuple[int, datetime],
    after: tuple[int, datetime],
    beats: list[tuple[int, datetime]],
    recovery: dict[str, Any],
) -> list[str]:
    """Exactness: the copy's heartbeat ids against the source's, the replay's last commit against T."""
    source, copy = _copy_of(services, database_id, port)
    with connect(copy, PostgresEngine.database_of(source)) as pg:
        found = {int(r[0]) for r in pg.execute(f"SELECT id FROM {SCHEMA}.{TABLE}")}
    oldest = beats[0][0]
    expected = {i for i, _ in beats if i <= before[0]}
    found = {i for i in found if i >= oldest}  # the source prunes old beats; compare what both can hold
    problems = []
    if found != expected:
        missing, unexpected = sorted(expected - found), sorted(found - expected)
        problems.append(
            f"heartbeats {oldest}..{before[0]} expected in the copy at {iso(moment)}: "
            f"{len(missing)} missing {missing[:5]}, {len(unexpected)} extra {unexpected[:5]}"
        )
    last = recovery.get("last_replayed_commit")
    if last is None or parse_iso(last) > moment:
        problems.append(f"the last replayed commit {last} is not at or before the target {iso(moment)}")
    if after[0] in found:
        problems.append(f"heartbeat {after[0]} (committed after the target) is in the copy")
    return problems
