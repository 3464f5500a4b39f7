"""wal-fetch.sh, the restore_command's fast path: a prefetched segment is moved into place without
Python; anything else runs the command given, whose exit code PostgreSQL then sees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import restorable.wal.fetch
from restorable.wal.fetch import read_wanted

SCRIPT = Path(restorable.wal.fetch.__file__).with_name("wal-fetch.sh")


def _run(pg_wal: Path, name: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), name, str(pg_wal / "RECOVERYXLOG"), *command], capture_output=True, text=True)


def test_a_cached_segment_is_moved_into_place_and_recovery_position_noted(tmp_path):
    cache = tmp_path / "restorable-prefetch"
    cache.mkdir()
    (cache / "000000010000000000000007").write_bytes(b"checked segment")
    done = _run(tmp_path, "000000010000000000000007", "false")  # the fallback would fail: it is not run
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "RECOVERYXLOG").read_bytes() == b"checked segment"
    assert not (cache / "000000010000000000000007").exists()
    assert read_wanted(cache) == ("000000010000000000000007", None)


def test_anything_not_cached_runs_the_command_with_f_and_p_and_keeps_its_exit_code(tmp_path):
    echo = [sys.executable, "-c", "import sys; print(sys.argv[1:]); sys.exit(1)"]
    done = _run(tmp_path, "00000002.history", *echo)
    assert done.returncode == 1
    assert done.stdout.strip() == str(["00000002.history", str(tmp_path / "RECOVERYXLOG")])
    failing = _run(tmp_path, "000000010000000000000008", "/nonexistent/python")
    assert failing.returncode > 125  # command not found: PostgreSQL stops recovery, it does not end it


def test_a_segment_the_prefetcher_is_fetching_is_waited_for_instead_of_fetched_again(tmp_path):
    import threading
    import time

    cache = tmp_path / "restorable-prefetch"
    cache.mkdir()
    name = "000000010000000000000009"
    (cache / f".fetching.{name}").touch()

    def arrive() -> None:
        time.sleep(0.3)
        (cache / name).write_bytes(b"fetched meanwhile")
        (cache / f".fetching.{name}").unlink()

    threading.Thread(target=arrive).start()
    done = _run(tmp_path, name, "false")  # the fallback would fail: it is not run
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "RECOVERYXLOG").read_bytes() == b"fetched meanwhile"
    # A marker whose fetch never lands: the script gives up waiting and runs the command.
    (cache / f".fetching.{name}").touch()
    started = time.monotonic()
    fallback = _run(tmp_path, name, sys.executable, "-c", "import sys; sys.exit(1)")
    assert fallback.returncode == 1 and 4 < time.monotonic() - started < 8
