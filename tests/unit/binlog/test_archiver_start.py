"""Where the binlog archiver's receiver starts, and the gap it reports when the server purged a file."""

from __future__ import annotations

from restorable.binlog.service import choose_start

SERVER = ["mariadb-bin.000003", "mariadb-bin.000004", "mariadb-bin.000005"]


def test_the_live_spool_file_is_read_again_and_closed_ones_are_left_to_the_uploader():
    assert choose_start(["mariadb-bin.000003", "mariadb-bin.000004"], "mariadb-bin.000002", SERVER) == (
        "mariadb-bin.000004",
        [],
    )


def test_an_empty_spool_continues_after_the_newest_archived_file_else_from_the_servers_oldest():
    assert choose_start([], "mariadb-bin.000003", SERVER) == ("mariadb-bin.000004", [])
    assert choose_start([], None, SERVER) == ("mariadb-bin.000003", [])
    assert choose_start([], "mariadb-bin.000005", SERVER) == ("mariadb-bin.000005", [])  # not made yet


def test_a_file_purged_before_it_was_archived_is_a_gap():
    first, lost = choose_start([], "mariadb-bin.000000", SERVER)
    assert first == "mariadb-bin.000003"
    assert lost == ["mariadb-bin.000001", "mariadb-bin.000002"]
    first, lost = choose_start(["mariadb-bin.000001"], None, SERVER)
    assert (first, lost) == ("mariadb-bin.000003", ["mariadb-bin.000001", "mariadb-bin.000002"])
    assert choose_start([], None, []) == (None, [])
