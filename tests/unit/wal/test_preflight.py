"""The archiver's check that PostgreSQL archives into its spool, within its bound."""

from __future__ import annotations

from pathlib import Path

from restorable.config import WalConfig
from restorable.wal.preflight import archive_problems

WAL = WalConfig(mode="archive", spool_dir=Path("/spool/shop"), spool_max_bytes=8589934592)
GOOD = {
    "wal_level": "replica",
    "archive_mode": "on",
    "archive_command": "/opt/r/spool-archive.sh %p %f /spool/shop 8589934592",
    "archive_library": "",
}


def test_the_shipped_command_into_the_spool_passes():
    assert archive_problems(GOOD, WAL) == []
    basic = {**GOOD, "archive_library": "basic_archive", "basic_archive.archive_directory": "/spool/shop/"}
    assert archive_problems(basic, WAL) == []


def test_each_mismatch_names_the_setting_and_the_fix():
    assert "set archive_mode = on" in archive_problems({**GOOD, "archive_mode": "off"}, WAL)[0]
    assert "does not write into the spool" in archive_problems({**GOOD, "archive_command": "cp %p /x/%f"}, WAL)[0]
    other_bound = {**GOOD, "archive_command": "/opt/r/spool-archive.sh %p %f /spool/shop 1000"}
    assert "disagree" in archive_problems(other_bound, WAL)[0]
    assert "wal_level = replica" in archive_problems({**GOOD, "wal_level": "minimal"}, WAL)[0]
    stream = WalConfig(mode="stream", spool_dir=Path("/spool/shop"))
    assert archive_problems({**GOOD, "archive_mode": "off"}, stream) == []
