"""WAL names and segment arithmetic (16 MiB and other segment sizes)."""

from __future__ import annotations

import pytest

from restorable.wal.names import (
    Segment,
    archive_order,
    format_lsn,
    kind_of,
    parse_history,
    parse_lsn,
    parse_segment,
    segment_of_lsn,
)

MiB = 1024 * 1024


def test_segment_names_roll_over_the_high_word_at_the_segment_size():
    assert Segment(1, 0xFF).name() == "0000000100000000000000FF"
    assert Segment(1, 0xFF).next().name() == "000000010000000100000000"
    # 64 MiB segments: 64 per high word, so ...0000003F is the last before it rolls over.
    assert Segment(2, 0x3F).next().name(64 * MiB) == "000000020000000100000000"
    assert parse_segment("000000010000000100000000") == Segment(1, 0x100)
    assert parse_segment("000000020000000100000000", 64 * MiB) == Segment(2, 0x40)


def test_a_name_that_cannot_exist_with_the_segment_size_is_refused():
    with pytest.raises(ValueError, match="cannot exist"):
        parse_segment("000000010000000000000040", 64 * MiB)
    with pytest.raises(ValueError, match="not a WAL segment"):
        parse_segment("00000002.history")


def test_kinds_and_archive_order_put_history_first_and_a_label_after_its_segment():
    names = [
        "000000010000000000000003",
        "000000010000000000000002.00000028.backup",
        "00000002.history",
        "000000020000000000000003",
        "000000010000000000000002",
    ]
    assert [kind_of(n) for n in names] == ["segment", "backup", "history", "segment", "segment"]
    assert sorted(names, key=archive_order) == [
        "00000002.history",
        "000000010000000000000002",
        "000000010000000000000002.00000028.backup",
        "000000010000000000000003",
        "000000020000000000000003",
    ]


def test_lsns_and_history_lines():
    assert parse_lsn("16/B374D848") == 0x16B374D848
    assert format_lsn(0x16B374D848) == "16/B374D848"
    assert segment_of_lsn(3, parse_lsn("0/3000028")) == Segment(3, 3)
    entries = parse_history("1\t0/3000028\tno recovery target specified\n\n2\t0/5000000\tat restore point\n")
    assert [(e.parent, format_lsn(e.switch_lsn)) for e in entries] == [(1, "0/3000028"), (2, "0/5000000")]
    with pytest.raises(ValueError):
        parse_lsn("3000028")
