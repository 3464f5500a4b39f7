"""What a MariaDB point-in-time restore aims at, which logical backup starts it, and where replay stops.

Targets (one of):

- ``--gtid D-S-N``: exactly up to and including that transaction (the cut is the end of its last
  event, so ``--stop-position`` never depends on how mariadb-binlog counts GTIDs).
- ``--time T``: every transaction whose binlog timestamp is before T. Binlog timestamps are whole
  seconds (UTC epoch), so T must be a whole second with a UTC offset; a transaction stamped in
  second T is after T. The cut is computed here from the events themselves, never by
  ``--stop-datetime`` (which reads T in the client's time zone).
- ``--position FILE:POS``: every event that starts before POS in FILE (POS as ``SHOW MASTER
  STATUS`` prints it: the end of the last transaction wanted).

Refused before the target is touched: a target at or before the chosen backup's snapshot, before
every backup, or beyond the archive (a GTID not archived yet, a time after the newest archived
event, a position past an archived file's end).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from restorable.binlog.events import BinlogSummary
from restorable.binlog.objects import ArchivedBinlog, file_number
from restorable.binlog.positions import BackupStart
from restorable.exceptions import ConfigError, NotFound, RestoreRefused

_GTID_RE = re.compile(r"^(\d+)-(\d+)-(\d+)$")


@dataclass(frozen=True)
class BinlogTarget:
    kind: str  # gtid, time, position
    value: str
    domain: int | None = None
    seq: int | None = None
    epoch: int | None = None
    file: str | None = None
    offset: int | None = None

    def describe(self) -> str:
        return f"{self.kind} {self.value}"


def parse_binlog_target(*, gtid: str | None, time: str | None, position: str | None) -> BinlogTarget:
    """The one target given on the command line; ConfigError naming what is wrong."""
    given = [(k, v) for k, v in (("gtid", gtid), ("time", time), ("position", position)) if v is not None]
    if len(given) != 1:
        raise ConfigError(
            f"give exactly one point-in-time target, not {len(given)}",
            hint="--gtid D-S-N, --time 2026-12-03T14:05:00Z or --position mariadb-bin.000042:1234",
        )
    kind, value = given[0]
    if kind == "gtid":
        match = _GTID_RE.fullmatch(value.strip())
        if match is None:
            raise ConfigError(f"--gtid {value!r} is not a MariaDB GTID", hint="domain-server-sequence, e.g. 0-1-4711")
        return BinlogTarget("gtid", value.strip(), domain=int(match[1]), seq=int(match[3]))
    if kind == "time":
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"--time {value!r} is not an ISO 8601 time", hint="e.g. 2026-12-03T14:05:00Z") from None
        if when.tzinfo is None:
            raise ConfigError(
                f"--time {value!r} has no UTC offset: whose clock is it?",
                hint="Add Z (UTC) or an offset, e.g. 2026-12-03T14:05:00Z",
            )
        if when.microsecond:
            raise ConfigError(
                f"--time {value!r} has a fraction of a second: binlog timestamps are whole seconds",
                hint="Give a whole second; the restore holds the transactions stamped before it",
            )
        utc = when.astimezone(UTC)
        return BinlogTarget("time", utc.isoformat().replace("+00:00", "Z"), epoch=int(utc.timestamp()))
    name, sep, pos = value.rpartition(":")
    try:
        file_number(name)
        offset = int(pos)
    except ValueError:
        raise ConfigError(
            f"--position {value!r} is not FILE:POS", hint="As SHOW MASTER STATUS prints it: mariadb-bin.000042:1234"
        ) from None
    if not sep or offset < 4:
        raise ConfigError(f"--position {value!r} is not FILE:POS (POS at least 4)")
    return BinlogTarget("position", value, file=name, offset=offset)


def _gtid_seq(gtid_pos: str, domain: int) -> int:
    for item in gtid_pos.split(","):
        match = _GTID_RE.fullmatch(item.strip())
        if match and int(match[1]) == domain:
            return int(match[3])
    return 0


def before_target(start: BackupStart, target: BinlogTarget) -> bool:
    """Does this backup's snapshot come before the target (so replay from it can reach it)?"""
    if target.kind == "gtid":
        return _gtid_seq(start.gtid, target.domain or 0) < (target.seq or 0)
    if target.kind == "time":
        return start.snapshot_time is not None and start.snapshot_time.timestamp() < (target.epoch or 0)
    return (start.number, start.binlog_position) <= (file_number(target.file or "")[1], target.offset or 0)


def choose_backup(starts: list[BackupStart], target: BinlogTarget, database_id: str) -> BackupStart:
    """The newest logical backup (with a binlog position) whose snapshot is before ``target``."""
    if not starts:
        raise NotFound(
            f"no logical backup of {database_id} records a binlog position",
            database=database_id,
            hint="Back it up with the binary log on (log_bin): restorable backup " + database_id,
        )
    able = [s for s in starts if before_target(s, target)]
    if not able:
        oldest = starts[0]
        raise RestoreRefused(
            f"{target.describe()} is not after the oldest logical backup of {database_id} "
            f"({oldest.backup_id}, snapshot {oldest.snapshot_time.isoformat() if oldest.snapshot_time else '-'}, "
            f"GTID {oldest.gtid or '-'}): no backup can reach it",
            database=database_id,
            hint="Pick a later target, or restore a backup as it is (restorable restore without a target)",
        )
    return max(able, key=lambda s: (s.number, s.binlog_position, s.created_at))


def files_to_replay(
    archived: list[ArchivedBinlog], start: BackupStart, database_id: str
) -> tuple[list[ArchivedBinlog], str | None]:
    """(the archived files from the backup's file on, in order, up to the first missing one; that
    missing file's name when anything newer is archived, i.e. a gap). Closed files first, then the
    live snapshot after the newest closed file. None archived from the backup's file: refused."""
    closed = {a.number: a for a in archived if not a.partial}
    partials = {a.number: a for a in archived if a.partial}
    chain = []
    number = start.number
    while number in closed or number in partials:
        chain.append(closed.get(number) or partials[number])
        if number not in closed:
            break
        number += 1
    base, _ = file_number(start.binlog_file)
    missing = f"{base}.{number:06d}"
    # Anything archived past where the chain ends means a gap there: a missing file, or a live
    # snapshot that never became a closed file (the server purged it before the rest arrived).
    gap = missing if any(n > number for n in [*closed, *partials]) else None
    if not chain:
        raise RestoreRefused(
            f"the binlog archive of {database_id} lacks {missing}, which backup {start.backup_id} needs to replay "
            f"from {start.binlog_file}:{start.binlog_position}",
            database=database_id,
            hint=f"restorable verify-binlog {database_id} names the gap; pick a newer backup's moment",
        )
    return chain, gap


def refuse_beyond(target: BinlogTarget, chain: list[ArchivedBinlog], database_id: str, gap: str | None = None) -> None:
    """Refuse a target the archive cannot reach, from the objects' metadata (no body read yet)."""
    try:
        _refuse_beyond(target, chain, database_id)
    except RestoreRefused as exc:
        if gap is not None:
            exc.message += (
                f"; the archive lacks {gap} (a gap: restorable verify-binlog {database_id}), so replay from "
                f"{chain[0].name} cannot go past it"
            )
        raise


def _refuse_beyond(target: BinlogTarget, chain: list[ArchivedBinlog], database_id: str) -> None:
    if target.kind == "gtid":
        newest = max((a.gtids[target.domain][1] for a in chain if target.domain in a.gtids), default=None)
        if newest is None or newest < (target.seq or 0):
            raise RestoreRefused(
                f"GTID {target.value} is beyond the binlog archive of {database_id} (newest archived in domain "
                f"{target.domain}: {newest if newest is not None else 'none'})",
                database=database_id,
                hint="Wait for the binlog archiver, or pick an earlier target (restorable binlog-status)",
            )
    elif target.kind == "time":
        newest_time = max((a.last_time or 0 for a in chain), default=0)
        if newest_time < (target.epoch or 0):
            at = datetime.fromtimestamp(newest_time, UTC).isoformat() if newest_time else "none"
            raise RestoreRefused(
                f"{target.value} is beyond the binlog archive of {database_id} (newest archived event: {at}): "
                "commits after it may exist that are not archived",
                database=database_id,
                hint="Wait for the binlog archiver (heartbeats keep this within seconds), or pick an earlier time",
            )
    else:
        names = [a.name.removesuffix(".partial") for a in chain]
        if target.file not in names:
            raise RestoreRefused(
                f"{target.file} is not among the files replayed from the backup ({names[0]} .. {names[-1]})",
                database=database_id,
                hint="Give a position in an archived file after the backup's",
            )
        item = chain[names.index(target.file)]
        if item.plain_size is not None and (target.offset or 0) > item.plain_size:
            raise RestoreRefused(
                f"{target.value} is past the archived end of {target.file} ({item.plain_size} bytes)",
                database=database_id,
            )


def find_cut(target: BinlogTarget, summaries: list[tuple[str, BinlogSummary]], start: BackupStart) -> tuple[int, int]:
    """(index of the file replay stops in, the stop offset) for ``target`` over the files' summaries."""
    for index, (name, summary) in enumerate(summaries):
        begin = start.binlog_position if index == 0 else 0
        if target.kind == "position":
            if name == target.file:
                return index, target.offset or 0
            continue
        for tx in summary.transactions:
            if tx.start < begin:
                continue
            if target.kind == "gtid" and (tx.domain, tx.seq) == (target.domain, target.seq):
                return index, tx.end
            if target.kind == "time" and tx.timestamp >= (target.epoch or 0):
                return index, tx.start
        if target.kind == "time" and summary.last_timestamp and summary.last_timestamp >= (target.epoch or 0):
            return index, summary.complete_bytes  # no transaction at or after T here, only other events
    raise RestoreRefused(f"{target.describe()} was not found in the archived binlogs from {start.binlog_file} on")
