"""``restorable verify-wal DB``: is every segment a restore may need in the archive?

From a start segment (``--from``; else the oldest physical base backup's ``wal.start_segment``;
else the oldest archived segment) to the newest archived one, per timeline, every segment is
found or missing; missing ones are reported as ranges (gaps). Timelines: a timeline T > 1 needs
``T.history``, whose last line names its parent and the switch point; T's WAL starts in the
segment holding the switch point, and the parent's must reach the segment before it. A history
file must extend its parent's (same earlier lines). The segment size comes from the archived
objects' ``restorable-size`` (the server's ``wal_segment_size``), and is reported.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from restorable.exceptions import IntegrityError
from restorable.repository.layout import Layout, wal_file_of
from restorable.storage.protocol import Store
from restorable.wal.names import (
    DEFAULT_SEGMENT_SIZE,
    HistoryEntry,
    Segment,
    format_lsn,
    kind_of,
    parse_history,
    parse_segment,
    segment_of_lsn,
)
from restorable.wal.objects import META_SIZE, read_wal_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gap:
    timeline: int
    first: str
    last: str
    segments: int


@dataclass
class ContinuityReport:
    database_id: str
    segment_size: int
    start: str | None
    start_source: str
    newest: dict[int, str] = field(default_factory=dict)
    found: int = 0
    gaps: list[Gap] = field(default_factory=list)
    history_problems: list[str] = field(default_factory=list)
    timelines: list[int] = field(default_factory=list)
    #: Base backups (id, start segment) whose recovery crosses a gap.
    broken_backups: list[dict[str, Any]] = field(default_factory=list)
    #: The source server's current timeline (None: not compared, the server was unreachable).
    server_timeline: int | None = None

    @property
    def ok(self) -> bool:
        return not self.gaps and not self.history_problems

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["newest"] = {f"{t:08X}": n for t, n in self.newest.items()}
        d["missing"] = sum(g.segments for g in self.gaps)
        d["ok"] = self.ok
        return d


def archived_names(store: Store, layout: Layout, database_id: str) -> list[str]:
    names = []
    for obj in store.list_objects(layout.wal_prefix(database_id)):
        parsed = layout.parse(obj.key)
        wal_file = wal_file_of(parsed.name) if parsed.database == database_id else None
        if wal_file is not None:
            names.append(wal_file)
    return names


def segment_size_of(store: Store, layout: Layout, database_id: str, segments: list[str]) -> int:
    """The archive's segment size, from the metadata of its first segments (16 MiB if none says)."""
    for name in segments[:3]:
        head = store.head(layout.wal_key(database_id, name), checksum=False)
        size = (head or {}).get("Metadata", {}).get(META_SIZE)
        if size and size.isdigit() and int(size) > 0 and not int(size) & (int(size) - 1):
            return int(size)
    return DEFAULT_SEGMENT_SIZE


def physical_backup_starts(store: Store, layout: Layout, database_id: str) -> list[dict[str, Any]]:
    """``{backup_id, start_segment}`` of committed physical base backups, oldest first (read from
    each manifest's ``kind`` and ``wal.start_segment``; other manifests are skipped)."""
    from restorable.repository.catalog import Catalog

    catalog = Catalog(store, layout.prefix)
    found = []
    for backup_id in catalog.backup_ids(database_id):
        try:
            raw = store.get_json(layout.manifest_key(database_id, backup_id))
        except Exception as exc:  # a damaged manifest is the catalog's business, not continuity's
            log.warning("manifest unreadable backup=%s error=%s", backup_id, exc)
            continue
        wal = raw.get("wal") if isinstance(raw, dict) and raw.get("kind") == "physical" else None
        start = wal.get("start_segment") if isinstance(wal, dict) else None
        if isinstance(start, str):
            found.append({"backup_id": backup_id, "start_segment": start})
    return found


def check_continuity(
    store: Store,
    layout: Layout,
    database_id: str,
    *,
    identity: str | None,
    start: str | None = None,
) -> ContinuityReport:
    """The continuity of ``database_id``'s archive (see the module docstring); ``identity`` reads
    the history files (None: they are reported as not checked)."""
    names = archived_names(store, layout, database_id)
    segments = sorted(n for n in names if kind_of(n) == "segment")
    partials = {n.removesuffix(".partial") for n in names if kind_of(n) == "partial"}
    size = segment_size_of(store, layout, database_id, segments)
    backups = physical_backup_starts(store, layout, database_id)
    start, source = _choose_start(start, backups, segments, size)
    report = ContinuityReport(database_id, size, start, source)
    by_timeline: dict[int, set[int]] = {}
    for name in segments:
        seg = parse_segment(name, size)
        by_timeline.setdefault(seg.timeline, set()).add(seg.number)
    for name in partials:
        by_timeline.setdefault(parse_segment(name, size).timeline, set())
    histories = {int(n[:8], 16) for n in names if kind_of(n) == "history"}
    report.timelines = sorted(set(by_timeline) | histories)
    if start is None:
        return report
    first = parse_segment(start, size)
    parsed = _read_histories(store, layout, database_id, identity, histories, report)
    for timeline in report.timelines:
        _check_timeline(report, timeline, first, by_timeline, partials, histories, parsed.get(timeline))
    report.broken_backups = [b for b in backups if _crosses_a_gap(parse_segment(b["start_segment"], size), report)]
    return report


def _choose_start(
    start: str | None, backups: list[dict[str, Any]], segments: list[str], size: int
) -> tuple[str | None, str]:
    if start is not None:
        return start, "--from"
    if backups:
        oldest = min(backups, key=lambda b: parse_segment(b["start_segment"], size))
        return oldest["start_segment"], "base"
    if segments:
        return segments[0], "oldest archived"
    return None, "empty archive"


def _check_timeline(
    report: ContinuityReport,
    timeline: int,
    first: Segment,
    by_timeline: dict[int, set[int]],
    partials: set[str],
    histories: set[int],
    entries: list[HistoryEntry] | None,
) -> None:
    """Found and missing segments of one timeline, from ``first`` or from its switch point."""
    size = report.segment_size
    present = by_timeline.get(timeline, set())
    if timeline < first.timeline or not present:
        return
    begin = first.number if timeline == first.timeline else None
    if timeline > 1 and timeline != first.timeline:
        if timeline not in histories:
            report.history_problems.append(f"timeline {timeline:08X} has segments but no {timeline:08X}.history")
        elif entries:
            switch = segment_of_lsn(timeline, entries[-1].switch_lsn, size).number
            begin = switch if begin is None else max(begin, switch)
            _check_parent(report, entries[-1], switch, by_timeline, partials, size, first)
    if begin is None:
        begin = min(present)
    end = max(present)
    report.newest[timeline] = Segment(timeline, end).name(size)
    report.found += len([n for n in present if begin <= n <= end])
    report.gaps += _gaps(timeline, begin, end, present, size)


def _crosses_a_gap(start: Segment, report: ContinuityReport) -> bool:
    """A base backup starting at ``start`` cannot replay past a gap at or after it."""
    size = report.segment_size
    return any(start.timeline <= g.timeline and parse_segment(g.last, size).number >= start.number for g in report.gaps)


def _gaps(timeline: int, begin: int, end: int, present: set[int], size: int) -> list[Gap]:
    gaps: list[Gap] = []
    run_start: int | None = None
    for number in range(begin, end + 2):
        missing = number <= end and number not in present
        if missing and run_start is None:
            run_start = number
        elif not missing and run_start is not None:
            first, last = Segment(timeline, run_start).name(size), Segment(timeline, number - 1).name(size)
            gaps.append(Gap(timeline, first, last, number - run_start))
            run_start = None
    return gaps


def _check_parent(
    report: ContinuityReport,
    entry: HistoryEntry,
    switch: int,
    by_timeline: dict[int, set[int]],
    partials: set[str],
    size: int,
    first: Segment,
) -> None:
    """The parent timeline's WAL must reach the segment before the switch point."""
    parent = by_timeline.get(entry.parent)
    if entry.parent < first.timeline or parent is None:
        return
    need = switch - 1
    if need >= 0 and need not in parent and Segment(entry.parent, need).name(size) not in partials:
        report.history_problems.append(
            f"timeline {entry.parent:08X} should reach {Segment(entry.parent, need).name(size)} "
            f"(the switch to the next timeline is at {format_lsn(entry.switch_lsn)}) but it is not archived"
        )


def _read_histories(
    store: Store, layout: Layout, database_id: str, identity: str | None, histories: set[int], report: ContinuityReport
) -> dict[int, list[HistoryEntry]]:
    parsed: dict[int, list[HistoryEntry]] = {}
    if identity is None:
        if histories:
            report.history_problems.append("history files not checked: no age identity to decrypt them")
        return parsed
    for timeline in sorted(histories):
        name = f"{timeline:08X}.history"
        try:
            parsed[timeline] = parse_history(read_wal_file(store, layout, identity, database_id, name).decode())
        except (IntegrityError, ValueError, UnicodeDecodeError) as exc:
            report.history_problems.append(f"{name} is unreadable: {exc}")
            continue
        entries = parsed[timeline]
        if not entries or entries[-1].parent >= timeline:
            report.history_problems.append(f"{name} does not name a parent timeline below {timeline:08X}")
    for timeline, entries in parsed.items():
        parent = entries[-1].parent if entries else None
        if parent in parsed and parsed[parent] != entries[:-1]:
            report.history_problems.append(
                f"{timeline:08X}.history does not extend {parent:08X}.history (their earlier switch points differ)"
            )
        if parent and parent > 1 and parent not in histories:
            report.history_problems.append(
                f"{timeline:08X}.history names parent {parent:08X}, whose history is missing"
            )
    return parsed
