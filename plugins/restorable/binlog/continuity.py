"""``verify-binlog``: is the binlog archive whole from the oldest logical backup's position on?

Two checks, from the objects' metadata alone (no body is read):

- files: every file from the start (the oldest logical backup's recorded binlog file, else the
  oldest archived) to the newest closed file is archived as a closed file; the live file's
  snapshot may follow it. A missing run of files is a gap, named with the backups it breaks.
- GTIDs: per domain, each file's first sequence number follows the previous file's last, and no
  file has a hole inside it (recorded at archive time from the file's own GTID events).

Pure: ``check_continuity`` takes the listing and the backups' starts, so it is unit-tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from restorable.binlog.objects import ArchivedBinlog, file_name, file_number
from restorable.binlog.positions import BackupStart


@dataclass(frozen=True)
class FileGap:
    first: str
    last: str
    files: int


@dataclass
class BinlogContinuity:
    start: str | None
    start_source: str
    found: int = 0
    newest: str | None = None
    live: str | None = None
    gaps: list[FileGap] = field(default_factory=list)
    gtid_holes: list[str] = field(default_factory=list)
    broken_backups: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.gaps and not self.gtid_holes

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "start": self.start,
            "start_source": self.start_source,
            "found": self.found,
            "newest": self.newest,
            "live": self.live,
            "gaps": [g.__dict__ for g in self.gaps],
            "gtid_holes": self.gtid_holes,
            "broken_backups": self.broken_backups,
        }


def check_continuity(
    archived: list[ArchivedBinlog], starts: list[BackupStart], start: str | None = None
) -> BinlogContinuity:
    """See the module docstring; ``start`` forces the first file required."""
    closed = {a.number: a for a in archived if not a.partial}
    partials = {a.number: a for a in archived if a.partial}
    source = "given"
    if start is None and starts:
        start, source = min(starts, key=lambda s: (s.number, s.binlog_position)).binlog_file, "oldest logical backup"
    if start is None and closed:
        start, source = closed[min(closed)].name, "oldest archived"
    report = BinlogContinuity(start, source if start else "nothing archived")
    if start is None:
        return report
    base, first = file_number(start)
    width = len(start) - len(base) - 1
    newest = max(closed, default=None)
    report.newest = closed[newest].name if newest is not None else None
    last_partial = max(partials, default=None)
    live = last_partial if last_partial is not None and (newest is None or last_partial > newest) else None
    if live is not None:
        report.live = partials[live].name
    # Every file from the start to the one before the live snapshot (else the newest closed) must be
    # archived closed; with nothing archived at all, the start file itself is missing.
    end = live - 1 if live is not None else (newest if newest is not None else first)
    chain = [closed[n] for n in range(first, end + 1) if n in closed]
    missing = [n for n in range(first, end + 1) if n not in closed]
    report.found = len(chain)
    for run in _runs(missing):
        report.gaps.append(FileGap(file_name(base, run[0], width), file_name(base, run[-1], width), len(run)))
    if live is not None:
        chain.append(partials[live])
    report.gtid_holes = gtid_holes(chain)
    for s in starts:
        for gap in report.gaps:
            if s.number <= file_number(gap.last)[1]:
                report.broken_backups.append(
                    {"backup_id": s.backup_id, "binlog_file": s.binlog_file, "gap": f"{gap.first} .. {gap.last}"}
                )
                break
    return report


def gtid_holes(chain: list[ArchivedBinlog]) -> list[str]:
    """Sequence numbers missing per domain along ``chain`` (files in order), and inside each file."""
    holes = []
    last: dict[int, tuple[int, str]] = {}
    previous_number: int | None = None
    for item in chain:
        contiguous = previous_number is None or item.number == previous_number + 1
        if item.holes:
            holes.append(f"{item.name}: missing inside the file (domain: seq) {item.holes}")
        for domain, (first, end) in sorted(item.gtids.items()):
            before = last.get(domain)
            if before is not None and contiguous and first != before[0] + 1 and first > before[0]:
                holes.append(
                    f"domain {domain}: sequence {before[0] + 1}..{first - 1} missing "
                    f"between {before[1]} and {item.name}"
                )
            last[domain] = (end, item.name)
        previous_number = item.number
    return holes


def _runs(numbers: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return runs
