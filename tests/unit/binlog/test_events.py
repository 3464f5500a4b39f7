"""The binlog event reader: transactions, their boundaries, GTID ranges and holes, truncated live files."""

from __future__ import annotations

import pytest

from restorable.binlog.events import iter_events, summarize
from tests.unit.binlog.synthetic import BinlogWriter


def test_transactions_are_found_with_their_start_and_end():
    w = BinlogWriter()
    a = w.transaction(10, 100)
    b = w.transaction(11, 101, ddl=True)
    c = w.commit_query(12, 102)
    d = w.transaction(13, 103, rows=3)
    w.rotate(103)
    s = summarize(bytes(w.data))
    found = [(t.gtid, t.start, t.end, t.timestamp) for t in s.transactions]
    assert found == [
        ("0-1-10", *a, 100),
        ("0-1-11", *b, 101),
        ("0-1-12", *c, 102),
        ("0-1-13", *d, 103),
    ]
    assert s.rotated and s.complete_bytes == len(w.data)
    assert s.gtid_ranges() == {0: (10, 13)} and s.holes() == []
    assert (s.first_timestamp, s.last_timestamp) == (1, 103)


def test_a_live_file_cut_mid_event_is_read_to_its_last_whole_event():
    w = BinlogWriter()
    w.transaction(1, 100)
    whole = len(w.data)
    w.transaction(2, 101)
    s = summarize(bytes(w.data[: whole + 30]))
    assert s.complete_bytes == whole
    assert [t.seq for t in s.transactions] == [1] and not s.rotated


def test_holes_inside_a_file_are_named_per_domain():
    w = BinlogWriter()
    w.transaction(1, 100)
    w.transaction(2, 100)
    w.transaction(5, 100)
    w.transaction(7, 100, domain=1)
    w.transaction(8, 100, domain=1)
    s = summarize(bytes(w.data))
    assert s.holes() == ["0: 3..4"]
    assert s.gtid_ranges() == {0: (1, 5), 1: (7, 8)}


def test_not_a_binlog_is_refused():
    with pytest.raises(ValueError, match="not a binary log"):
        list(iter_events(b"hello"))


def test_a_growing_file_fed_in_steps_reads_like_the_whole_and_a_rewrite_starts_over():
    from restorable.binlog.events import Summarizer

    w = BinlogWriter()
    w.transaction(1, 100)
    w.transaction(2, 101, ddl=True)
    w.commit_query(3, 102)
    w.transaction(4, 103, rows=2)
    w.rotate(103)
    data = bytes(w.data)
    whole = summarize(data)
    stepper = Summarizer()
    for cut in range(30, len(data), 37):  # cuts inside events and inside transactions
        stepper.feed(data[:cut])
    assert stepper.feed(data) == whole
    assert stepper.feed(data[:200]).complete_bytes <= 200  # shorter: written again, read from the start
    assert stepper.feed(data) == whole
