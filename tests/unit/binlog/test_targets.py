"""Targets of a MariaDB restore to a moment: parsing, the backup chosen, the files, the cut, refusals."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from restorable.binlog.events import summarize
from restorable.binlog.objects import ArchivedBinlog
from restorable.binlog.positions import BackupStart
from restorable.binlog.targets import (
    choose_backup,
    files_to_replay,
    find_cut,
    parse_binlog_target,
    refuse_beyond,
)
from restorable.exceptions import ConfigError, NotFound, RestoreRefused
from tests.unit.binlog.synthetic import BinlogWriter

T0 = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)


def _start(backup_id: str, file: str, pos: int, gtid: str, minutes: int) -> BackupStart:
    at = T0 + timedelta(minutes=minutes)
    return BackupStart(backup_id, at, file, pos, gtid, at)


def _archived(name: str, gtids: dict, first: int = 0, last: int = 0, size: int = 1000) -> ArchivedBinlog:
    return ArchivedBinlog(name, f"k/{name}", None, "s", size, 10, gtids, first or None, last or None)


def test_parse_each_kind_and_refuse_what_is_ambiguous():
    assert parse_binlog_target(gtid="0-1-42", time=None, position=None).seq == 42
    t = parse_binlog_target(gtid=None, time="2026-12-03T15:05:00+01:00", position=None)
    assert t.value == "2026-12-03T14:05:00Z" and t.epoch == int(datetime(2026, 12, 3, 14, 5, tzinfo=UTC).timestamp())
    p = parse_binlog_target(gtid=None, time=None, position="mariadb-bin.000042:1234")
    assert (p.file, p.offset) == ("mariadb-bin.000042", 1234)
    for kwargs, words in (
        ({"gtid": "0-1", "time": None, "position": None}, "not a MariaDB GTID"),
        ({"gtid": None, "time": "2026-12-03T14:05:00", "position": None}, "no UTC offset"),
        ({"gtid": None, "time": "2026-12-03T14:05:00.5Z", "position": None}, "fraction of a second"),
        ({"gtid": None, "time": None, "position": "mariadb-bin.000042"}, "not FILE:POS"),
        ({"gtid": "0-1-2", "time": "2026-12-03T14:05:00Z", "position": None}, "exactly one"),
        ({"gtid": None, "time": None, "position": None}, "exactly one"),
    ):
        with pytest.raises(ConfigError, match=words):
            parse_binlog_target(**kwargs)


def test_the_newest_backup_before_the_target_is_chosen_and_one_before_all_is_refused():
    starts = [
        _start("b1", "mariadb-bin.000001", 400, "0-1-10", 0),
        _start("b2", "mariadb-bin.000003", 900, "0-1-50", 60),
    ]
    assert choose_backup(starts, parse_binlog_target(gtid="0-1-30", time=None, position=None), "shop").backup_id == "b1"
    assert choose_backup(starts, parse_binlog_target(gtid="0-1-51", time=None, position=None), "shop").backup_id == "b2"
    # The backup's own GTID is in its snapshot: a target at it is not after the backup.
    with pytest.raises(RestoreRefused, match="not after the oldest logical backup"):
        choose_backup(starts, parse_binlog_target(gtid="0-1-10", time=None, position=None), "shop")
    late = parse_binlog_target(gtid=None, time="2026-12-03T14:30:00Z", position=None)
    assert choose_backup(starts, late, "shop").backup_id == "b1"
    pos = parse_binlog_target(gtid=None, time=None, position="mariadb-bin.000003:900")
    assert choose_backup(starts, pos, "shop").backup_id == "b2"
    with pytest.raises(NotFound):
        choose_backup([], late, "shop")


def test_files_from_the_backup_on_and_a_gap_is_refused_naming_the_file():
    start = _start("b1", "mariadb-bin.000002", 400, "0-1-10", 0)
    chain = [_archived(f"mariadb-bin.00000{n}", {}) for n in (1, 2, 3)] + [_archived("mariadb-bin.000004.partial", {})]
    files, gap = files_to_replay(chain, start, "shop")
    assert [a.name for a in files] == ["mariadb-bin.000002", "mariadb-bin.000003", "mariadb-bin.000004.partial"]
    assert gap is None
    holed = [a for a in chain if a.name != "mariadb-bin.000003"]
    files, gap = files_to_replay(holed, start, "shop")
    assert [a.name for a in files] == ["mariadb-bin.000002"] and gap == "mariadb-bin.000003"
    # A live snapshot the server purged before it was closed, then newer files: the chain ends there.
    purged = [*chain[:3], _archived("mariadb-bin.000004.partial", {}), _archived("mariadb-bin.000007.partial", {})]
    files, gap = files_to_replay(purged, start, "shop")
    assert files[-1].name == "mariadb-bin.000004.partial" and gap == "mariadb-bin.000004"
    with pytest.raises(RestoreRefused, match="lacks mariadb-bin.000003, which backup b1"):
        files_to_replay(holed, replace(start, binlog_file="mariadb-bin.000003"), "shop")


def test_a_target_beyond_the_archive_is_refused_before_anything_is_read():
    chain = [_archived("mariadb-bin.000002", {0: (10, 20)}, 100, 200)]
    refuse_beyond(parse_binlog_target(gtid="0-1-20", time=None, position=None), chain, "shop")
    with pytest.raises(RestoreRefused, match="lacks mariadb-bin.000003 .a gap"):
        refuse_beyond(parse_binlog_target(gtid="0-1-30", time=None, position=None), chain, "shop", "mariadb-bin.000003")
    with pytest.raises(RestoreRefused, match="beyond the binlog archive"):
        refuse_beyond(parse_binlog_target(gtid="0-1-21", time=None, position=None), chain, "shop")
    with pytest.raises(RestoreRefused, match="beyond the binlog archive"):
        refuse_beyond(parse_binlog_target(gtid="1-1-2", time=None, position=None), chain, "shop")
    late = datetime.fromtimestamp(201, UTC).isoformat()
    with pytest.raises(RestoreRefused, match="newest archived event"):
        refuse_beyond(parse_binlog_target(gtid=None, time=late, position=None), chain, "shop")
    with pytest.raises(RestoreRefused, match="past the archived end"):
        refuse_beyond(parse_binlog_target(gtid=None, time=None, position="mariadb-bin.000002:5000"), chain, "shop")


def test_the_cut_is_exact_for_a_gtid_a_time_and_a_position():
    one, two = BinlogWriter(), BinlogWriter()
    one.transaction(10, 1000)
    _, end11 = one.transaction(11, 1000)
    one.transaction(12, 1001)
    one.rotate(1001)
    start13, end13 = two.transaction(13, 1002)
    start14, _ = two.transaction(14, 1004)
    summaries = [("mariadb-bin.000001", summarize(bytes(one.data))), ("mariadb-bin.000002", summarize(bytes(two.data)))]
    backup = BackupStart("b", T0, "mariadb-bin.000001", 4, "0-1-9", T0)

    def t(**kw):
        return parse_binlog_target(**{"gtid": None, "time": None, "position": None, **kw})

    assert find_cut(t(gtid="0-1-11"), summaries, backup) == (0, end11)
    assert find_cut(t(gtid="0-1-13"), summaries, backup) == (1, end13)
    # Stamped in second 1002 is after 1002: the cut is before transaction 13; 1003 keeps 13, not 14.
    assert find_cut(t(time=datetime.fromtimestamp(1002, UTC).isoformat()), summaries, backup) == (1, start13)
    assert find_cut(t(time=datetime.fromtimestamp(1003, UTC).isoformat()), summaries, backup) == (1, start14)
    assert find_cut(t(position="mariadb-bin.000002:777"), summaries, backup) == (1, 777)
    # A transaction before the backup's position is never a cut.
    after = BackupStart("b", T0, "mariadb-bin.000001", end11, "0-1-11", T0)
    with pytest.raises(RestoreRefused):
        find_cut(t(gtid="0-1-10"), summaries, after)
