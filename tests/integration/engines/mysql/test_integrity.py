"""CHECK TABLE ... EXTENDED on restored MariaDB copies: a clean database passes; a MyISAM index
file overwritten on disk fails, naming the table (InnoDB stops the server on a bad page instead)."""

from __future__ import annotations

import os

import pytest

from restorable.engines import engine_for

pytestmark = pytest.mark.integration


def test_a_clean_copy_passes_with_every_table_checked(mariadb_sample):
    report = engine_for("mysql").check_integrity(mariadb_sample)
    assert report.ok, report.problems
    assert report.checked["tables"] > 0


def test_a_damaged_index_file_fails_naming_the_table(mariadb_target_server):
    conn = mariadb_target_server.create_database("integrity_broken")
    try:
        mariadb_target_server.execute(
            "CREATE TABLE `odd name` (id INT PRIMARY KEY, note VARCHAR(64), KEY note (note)) ENGINE=MyISAM",
            database="integrity_broken",
        )
        mariadb_target_server.execute(
            "INSERT INTO `odd name` SELECT seq, md5(seq) FROM seq_1_to_20000", database="integrity_broken"
        )
        mariadb_target_server.execute(
            "CREATE TABLE fine (id INT PRIMARY KEY) ENGINE=InnoDB", database="integrity_broken"
        )
        (datadir,) = mariadb_target_server.query("SELECT @@datadir")[0]
        mariadb_target_server.execute("FLUSH TABLES")
        index_file = os.path.join(datadir, "integrity_broken", "odd@0020name.MYI")
        with open(index_file, "r+b") as fh:
            fh.seek(4096)
            fh.write(os.urandom(8192))
        mariadb_target_server.execute("FLUSH TABLES")

        report = engine_for("mysql").check_integrity(conn)
        assert not report.ok
        assert all(p.startswith("table odd name:") for p in report.problems), report.problems
        assert report.checked["tables"] == 2
    finally:
        mariadb_target_server.execute("DROP DATABASE IF EXISTS integrity_broken")
