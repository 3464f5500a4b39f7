"""verify-binlog's checks: files contiguous from the oldest backup's file, GTIDs without holes per domain."""

from __future__ import annotations

from datetime import UTC, datetime

from restorable.binlog.continuity import check_continuity
from restorable.binlog.objects import ArchivedBinlog
from restorable.binlog.positions import BackupStart

T0 = datetime(2026, 12, 3, tzinfo=UTC)


def _a(n: int, gtids: dict, *, partial: bool = False, holes: str = "") -> ArchivedBinlog:
    name = f"mariadb-bin.{n:06d}" + (".partial" if partial else "")
    return ArchivedBinlog(name, name, None, "s", 10, 10, gtids, holes=holes)


def _start(backup_id: str, n: int) -> BackupStart:
    return BackupStart(backup_id, T0, f"mariadb-bin.{n:06d}", 400, "0-1-1", T0)


def test_a_whole_archive_passes_from_the_oldest_backup():
    archive = [_a(1, {0: (1, 4)}), _a(2, {0: (5, 9)}), _a(3, {0: (10, 12)}), _a(4, {0: (13, 13)}, partial=True)]
    report = check_continuity(archive, [_start("b2", 2), _start("b3", 3)])
    assert report.ok, report.to_dict()
    assert (report.start, report.start_source, report.found) == ("mariadb-bin.000002", "oldest logical backup", 2)
    assert report.newest == "mariadb-bin.000003" and report.live == "mariadb-bin.000004.partial"


def test_missing_files_are_a_gap_naming_the_backups_it_breaks():
    archive = [_a(1, {0: (1, 4)}), _a(4, {0: (20, 22)}), _a(5, {0: (23, 30)})]
    report = check_continuity(archive, [_start("old", 1), _start("new", 4)])
    assert not report.ok
    assert [(g.first, g.last, g.files) for g in report.gaps] == [("mariadb-bin.000002", "mariadb-bin.000003", 2)]
    assert [b["backup_id"] for b in report.broken_backups] == ["old"]
    # Across a file gap the GTID jump is the gap itself, not a second finding.
    assert report.gtid_holes == []


def test_gtid_holes_between_and_inside_files_are_named_per_domain():
    archive = [_a(1, {0: (1, 4), 1: (1, 2)}), _a(2, {0: (7, 9), 1: (3, 3)}), _a(3, {0: (10, 12)}, holes="0: 11..11")]
    report = check_continuity(archive, [])
    assert report.start_source == "oldest archived" and report.gaps == []
    assert report.gtid_holes == [
        "domain 0: sequence 5..6 missing between mariadb-bin.000001 and mariadb-bin.000002",
        "mariadb-bin.000003: missing inside the file (domain: seq) 0: 11..11",
    ]


def test_nothing_archived_for_a_backup_is_a_gap_and_an_empty_archive_is_reported():
    report = check_continuity([], [_start("b", 7)])
    assert [(g.first, g.files) for g in report.gaps] == [("mariadb-bin.000007", 1)]
    assert check_continuity([], []).start_source == "nothing archived"
