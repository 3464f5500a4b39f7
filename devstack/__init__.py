"""Throwaway real servers for tests, the demo and the benchmark.

PostgreSQL 15, MariaDB 10.11 and SeaweedFS (S3) started on free ports bound to 127.0.0.1, each
in its own state directory, with a random password per server. Nothing here touches the
machine's shared servers. The helpers below are shared by the server modules.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from restorable.exceptions import ToolError

HOST = "127.0.0.1"


def is_zombie(pid: int) -> bool:
    """True when ``pid`` has exited but was not reaped yet (it no longer serves anything)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def stderr_tail(text: str | bytes | None, limit: int = 2000) -> str:
    """The last ``limit`` characters of a child's output, for error messages."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.strip()
    return text[-limit:]


def file_tail(path: Path, limit: int = 2000) -> str:
    """The last ``limit`` characters of a log file (empty if it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return stderr_tail(fh.read(), limit)
    except OSError:
        return ""


def find_program(name: str, *, package: str, extra_dirs: Sequence[str | Path] = ()) -> str:
    """Absolute path of ``name``, looking in ``extra_dirs`` first, then PATH.

    Raises ToolError naming the package to install when it is nowhere.
    """
    for directory in extra_dirs:
        found = shutil.which(name, path=str(directory))
        if found:
            return found
    found = shutil.which(name)
    if found:
        return found
    raise ToolError(
        f"program {name!r} not found (looked in {', '.join(map(str, extra_dirs)) or 'PATH'} and PATH)",
        hint=f"Install it: {package}",
    )


def venv_bin_dir() -> Path:
    """The bin directory of the running interpreter (where pip-installed programs land)."""
    return Path(sys.executable).parent


def run_command(
    argv: Sequence[str],
    *,
    what: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``argv`` (never through a shell); raise ToolError with stderr's tail if it fails."""
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            env=dict(env) if env is not None else None,
            timeout=timeout,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise ToolError(f"{what}: program not found: {exc.filename}") from None
    except subprocess.TimeoutExpired as exc:
        raise ToolError(
            f"{what}: timed out after {timeout:.0f}s: {stderr_tail(exc.stderr)}",
            hint="The machine may be overloaded; retry, or look at the server log",
        ) from None
    if proc.returncode != 0:
        raise ToolError(
            f"{what}: {Path(argv[0]).name} exited {proc.returncode}: "
            f"{stderr_tail(proc.stderr) or stderr_tail(proc.stdout)}"
        )
    return proc


_REAPER = r"""
import os, shutil, signal, sys, time
owner, pgid, sig = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
paths = sys.argv[4:]
def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
while True:
    time.sleep(1)
    if not alive(pgid):
        sys.exit(0)  # stopped the normal way
    if not alive(owner):
        break
for s in (sig, signal.SIGKILL):
    try:
        os.killpg(pgid, s)
    except ProcessLookupError:
        break
    for _ in range(100):
        time.sleep(0.1)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break
for path in paths:
    shutil.rmtree(path, ignore_errors=True)
"""


def start_reaper(owner_pid: int, pgid: int, paths: Sequence[str | Path] = (), *, sig: int = 9) -> int:
    """Kill process group ``pgid`` (and remove ``paths``) if process ``owner_pid`` dies first.

    Test sessions killed hard (SIGKILL, a CI timeout) cannot stop their servers; this small
    detached watcher does it for them. It exits by itself once the server is stopped normally.
    Returns the watcher's pid.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", _REAPER, str(owner_pid), str(pgid), str(sig), *map(str, paths)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc.pid
