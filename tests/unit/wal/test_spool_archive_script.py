"""spool-archive.sh, PostgreSQL's archive_command: durable copy into the spool, within its bound."""

from __future__ import annotations

import subprocess

from restorable.wal.spool import ARCHIVE_SCRIPT, Spool


def _archive(src, spool, max_bytes: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ARCHIVE_SCRIPT), str(src), src.name, str(spool), str(max_bytes)], capture_output=True, text=True
    )


def test_copies_refuses_past_the_bound_and_never_overwrites_other_content(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    wal = tmp_path / "pg_wal"
    wal.mkdir()
    first = wal / "000000010000000000000001"
    first.write_bytes(b"1" * 1000)
    assert _archive(first, spool, 2500).returncode == 0
    assert (spool / first.name).read_bytes() == first.read_bytes()
    assert _archive(first, spool, 2500).returncode == 0  # archived again after a crash: same bytes, fine
    assert not [p for p in spool.iterdir() if p.name.startswith(".tmp.")]

    second = wal / "000000010000000000000002"
    second.write_bytes(b"2" * 2000)
    full = _archive(second, spool, 2500)
    assert full.returncode == 1 and "would pass its bound" in full.stderr
    assert not (spool / second.name).exists()

    first.write_bytes(b"X" * 1000)  # same name, other bytes
    clash = _archive(first, spool, 10_000)
    assert clash.returncode == 1 and "refusing to overwrite" in clash.stderr
    assert (spool / first.name).read_bytes() == b"1" * 1000
    assert [f.name for f in Spool(spool).files()] == [first.name]
