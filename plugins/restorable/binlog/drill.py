"""The MariaDB point-in-time drill: restore to a whole second between two heartbeats, prove exactness.

1. Choose T: a random pair of consecutive heartbeats (``restorable_heartbeat`` in the source
   database, one every few seconds) stamped in different seconds, both after the newest logical
   backup's snapshot and at or before the newest archived event; T is the later beat's whole
   second. Each beat stores its statement's own start (``UTC_TIMESTAMP(6)``), whose whole second is
   the binlog timestamp of its events, so the beats a restore to T must hold are known exactly:
   those stamped before T's second. A T given by hand is snapped to the pair around it.
2. Restore to T (``binlog.replay``) into a scratch database ``pitr_<db>_<random>`` on the drill server
   (``restore_target_conn_id``).
3. Prove: the heartbeat ids in the copy are exactly the source's ids stamped before T (the beat
   before T present, the one at T absent).
4. Evidence beside the backup (kind ``pitr_drill``, the PostgreSQL drill's record): T, the backup
   and its age, files and bytes replayed, RTO (restore start to the copy at T), RPO at drill time
   (now − the newest archived event), the exactness result. The scratch database is dropped
   whatever happened. A restore that cannot reach T (a binlog deleted from the bucket, a gap) is
   the drill's finding: recorded, and the drill fails.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from restorable.binlog.objects import list_archived
from restorable.binlog.positions import backup_starts
from restorable.binlog.targets import parse_binlog_target
from restorable.engines.mysql.engine import MySQLEngine
from restorable.engines.mysql.tools import connect, quote_ident
from restorable.exceptions import ConfigError, IntegrityError, NotFound, RestorableError, RestoreRefused
from restorable.repository.layout import Layout
from restorable.services import Services

log = logging.getLogger(__name__)

EVIDENCE_KIND = "pitr_drill"


@dataclass
class BinlogDrillResult:
    database_id: str
    ok: bool
    target: str
    backup_id: str
    scratch_database: str
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    evidence_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "database_id": self.database_id,
            "ok": self.ok,
            "target": self.target,
            "backup_id": self.backup_id,
            "scratch_database": self.scratch_database,
            "problems": self.problems,
            "evidence_key": self.evidence_key,
            **self.figures,
        }


def _beats(conn: Any, database: str, table: str) -> list[tuple[int, int]]:
    """(id, whole UTC second) of every heartbeat in ``database``, by id."""
    db = connect(conn, database)
    try:
        with db.cursor() as cur:
            cur.execute(f"SELECT id, at FROM {quote_ident(table)} ORDER BY id")
            return [(int(i), int(at.replace(tzinfo=UTC).timestamp())) for i, at in cur.fetchall()]
    finally:
        db.close()


def choose_second(
    beats: list[tuple[int, int]], after: float, until: int, wanted: int | None, rng: random.Random
) -> tuple[int, tuple[int, int], tuple[int, int]]:
    """(T, beat before, beat at T): consecutive beats in different seconds, after ``after``, by ``until``."""
    pairs = [(a, b) for a, b in zip(beats, beats[1:], strict=False) if a[1] > after and a[1] < b[1] <= until]
    if wanted is not None:
        pairs = [(a, b) for a, b in pairs if a[1] < wanted <= b[1]]
    if not pairs:
        raise RestoreRefused(
            "no two heartbeats lie between the newest logical backup's snapshot and the newest archived event",
            hint="Is the binlog archiver running with its heartbeat? A drill needs a few beats archived after a "
            "backup (binlog-status shows the newest archived beat)",
        )
    before, at = rng.choice(pairs)
    return at[1], before, at


def run_binlog_drill(
    services: Services,
    database_id: str,
    *,
    identity: str,
    target_time: datetime | None = None,
    seed: int | None = None,
) -> BinlogDrillResult:
    """Restore to a second between two heartbeats, prove exactly the beats before it are there, record it."""
    from restorable.binlog.replay import restore_to_moment

    started = time.monotonic()
    db = services.config.database(database_id)
    if db.binlog is None or db.restore_target_conn_id is None:
        raise ConfigError(
            f"{services.config.path}: database {database_id!r} needs a binlog block and restore_target_conn_id "
            "for a point-in-time drill",
        )
    catalog = services.catalog("restore")
    starts = [s for s in backup_starts(catalog, database_id) if s.snapshot_time is not None]
    if not starts:
        raise NotFound(f"no logical backup of {database_id} with a binlog position to drill", database=database_id)
    backup = max(starts, key=lambda s: s.snapshot_time)
    archived = list_archived(catalog.store, Layout(services.config.storage.prefix), database_id)
    newest = max((a.last_time or 0 for a in archived), default=0)
    source = services.resolve(db.conn_id)
    beats = _beats(source, MySQLEngine.database_of(source), db.binlog.heartbeat_table)
    wanted = int(target_time.timestamp()) if target_time is not None else None
    second, before, at = choose_second(beats, backup.snapshot_time.timestamp(), newest, wanted, random.Random(seed))
    when = datetime.fromtimestamp(second, UTC).isoformat().replace("+00:00", "Z")
    target = services.resolve(db.restore_target_conn_id)
    scratch = f"pitr_{database_id}_{secrets.token_hex(4)}"[:64]
    figures: dict[str, Any] = {
        "backup_age_seconds": round(time.time() - backup.snapshot_time.timestamp(), 1),
        "rpo_seconds_at_drill": round(time.time() - newest, 1) if newest else None,
        "newest_archived_event": datetime.fromtimestamp(newest, UTC).isoformat() if newest else None,
        "heartbeat_before": {"id": before[0], "second": before[1]},
        "heartbeat_after": {"id": at[0], "second": at[1]},
    }
    problems: list[str] = []
    engine = MySQLEngine()
    try:
        report = restore_to_moment(
            services,
            database_id,
            parse_binlog_target(gtid=None, time=when, position=None),
            target=target,
            database=scratch,
            identity=identity,
        )
        figures.update(
            rto_seconds=round(time.monotonic() - started, 3),
            restore_seconds=report.restore_seconds,
            replay_seconds=report.replay_seconds,
            binlog_files_replayed=len(report.files),
            binlog_bytes_replayed=report.binlog_bytes,
            transactions_in_range=report.transactions_in_range,
            stop=report.stop,
        )
        found = {i for i, _ in _beats(target, scratch, db.binlog.heartbeat_table)}
        expected = {i for i, s in beats if s < second}
        oldest = min((i for i, _ in beats), default=0)
        found_recent = {i for i in found if i >= oldest}  # beats pruned from the source since are not judged
        if found_recent != expected:
            missing, unexpected = sorted(expected - found_recent), sorted(found_recent - expected)
            problems.append(
                f"the copy at {when} holds heartbeats {unexpected[:5]} committed at or after it and lacks {missing[:5]}"
            )
        figures["heartbeats_checked"] = len(expected)
    except RestorableError as exc:
        problems.append(f"the restore to {when} failed: {exc.message}")
    finally:
        try:
            engine.drop_database(target, scratch)
        except RestorableError as exc:
            problems.append(f"the scratch database {scratch} could not be dropped: {exc.message}")
    result = BinlogDrillResult(database_id, not problems, when, backup.backup_id, scratch, problems, figures)
    record = {"ok": result.ok, "target": when, "engine": "mysql", "problems": problems, **figures}
    result.evidence_key = services.catalog("backup").record(database_id, backup.backup_id, EVIDENCE_KIND, record)
    if problems:
        raise IntegrityError(
            f"point-in-time drill of {database_id} to {when} failed: " + "; ".join(problems),
            database=database_id,
            backup_id=backup.backup_id,
            hint=f"Evidence at {result.evidence_key}; see docs/runbooks/pitr-drill-failed.md",
        )
    log.info("binlog pitr drill passed database=%s target=%s rto=%s", database_id, when, figures.get("rto_seconds"))
    return result
