"""The resident prefetcher follows .wanted, keeps the next segments (checked bytes only), drops what
recovery passed, retries what is not archived yet, and cleans up when recovery goes idle."""

from __future__ import annotations

import threading
import time

from restorable.exceptions import NotFound
from restorable.wal.fetch import note_wanted
from restorable.wal.names import parse_segment
from restorable.wal.prefetch import run_prefetcher

SEG = 16 * 1024 * 1024


def test_follows_recovery_and_cleans_up_when_idle(tmp_path):
    archived = {f"0000000100000000000000{n:02X}" for n in range(1, 8)}
    asked: list[str] = []

    def fetch_one(name: str) -> bytes:
        asked.append(name)
        if name not in archived:
            raise NotFound(name)
        return name.encode()

    note_wanted(tmp_path, "000000010000000000000001", SEG)
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(run_prefetcher(fetch_one, tmp_path, depth=3, workers=2, idle_exit=1.0))
    )
    thread.start()
    deadline = time.monotonic() + 5
    while not all((tmp_path / f"0000000100000000000000{n:02X}").exists() for n in (2, 3, 4)):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert (tmp_path / "000000010000000000000002").read_bytes() == b"000000010000000000000002"
    note_wanted(tmp_path, "000000010000000000000006")  # recovery jumped ahead (the shell writes no size)
    while not (tmp_path / "000000010000000000000007").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not (tmp_path / "000000010000000000000002").exists()  # behind recovery: removed
    thread.join(5)
    assert not thread.is_alive() and result[0] >= 4
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]  # cleaned up on exit
    assert "000000010000000000000008" in asked  # not archived yet: asked for, never cached
    assert parse_segment(max(asked)).number <= 9
