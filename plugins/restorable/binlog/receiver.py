"""``mariadb-binlog --read-from-remote-server --raw --stop-never``: the server's binlogs into the spool.

The archiver supervises it from a thread, as it does ``pg_receivewal`` for PostgreSQL: started
from the file ``start_file()`` names at that moment (the oldest one not yet archived), started
again (after 1 s, up to 10 s while it keeps failing) whenever it exits, its stderr tail logged.
It writes each file as the server sends it, under the server's own name, in the spool
(``--result-file=<spool>/``); a restart writes the file it starts from again from byte 0.

The password reaches it in an in-memory option file (``--defaults-extra-file=/dev/fd/N``), never
argv. It is started with a parent-death signal (SIGTERM when the archiver dies, SIGKILL included),
so a killed archiver leaves no orphan still writing into the spool beside its successor.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from restorable.connections import ConnectionInfo
from restorable.engines.mysql.tools import child_env, defaults_file, find_tool
from restorable.engines.process import StreamTail, failure_message, running, stop_process
from restorable.exceptions import ToolError

log = logging.getLogger(__name__)

_RESTART_FIRST = 1.0
_RESTART_CAP = 10.0
_PR_SET_PDEATHSIG = 1


def binlog_tool(flavour: str = "mariadb") -> str:
    """The path of ``mariadb-binlog`` (``mysqlbinlog`` for MySQL)."""
    import shutil

    names = ("mariadb-binlog", "mysqlbinlog") if flavour == "mariadb" else ("mysqlbinlog", "mariadb-binlog")
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise ToolError("no mariadb-binlog or mysqlbinlog program found on PATH", hint="apt-get install mariadb-client")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class BinlogReceiver:
    """Keeps one ``mariadb-binlog --stop-never`` running into ``spool_dir`` until ``stop()``."""

    def __init__(
        self, conn: ConnectionInfo, spool_dir: Path, start_file: Callable[[], str | None], server_id: int
    ) -> None:
        self.conn = conn
        self.spool_dir = Path(spool_dir)
        self.start_file = start_file
        self.server_id = server_id
        self.binary = binlog_tool(find_tool("client", "mariadb").flavour)
        self.starts = 0
        self.last_exit: str | None = None
        self.pid: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def argv(self, cnf_path: str, first: str) -> list[str]:
        return [
            self.binary,
            f"--defaults-extra-file={cnf_path}",  # must come first
            "--read-from-remote-server",
            "--raw",
            "--stop-never",
            f"--stop-never-slave-server-id={self.server_id}",
            f"--result-file={self.spool_dir}/",
            first,
        ]

    def _run_once(self, first: str) -> tuple[int, StreamTail]:
        with defaults_file(self.conn) as cnf:
            popen = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
            argv = self.argv(cnf.path, first)
            with running(argv, **popen, env=child_env(), pass_fds=cnf.pass_fds, preexec_fn=_die_with_parent) as proc:
                self.pid = proc.pid
                tail = StreamTail(proc.stderr, "mariadb-binlog", secret=self.conn.password)
                try:
                    while proc.poll() is None and not self._stop.wait(0.2):
                        pass
                finally:
                    stop_process(proc)
                    tail.join(5)
                    self.pid = None
            return proc.returncode, tail

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="binlog-receiver", daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        delay = _RESTART_FIRST
        while not self._stop.is_set():
            first = None
            try:
                first = self.start_file()
            except Exception as exc:  # the server unreachable: try again later
                self.last_exit = f"cannot choose the first binlog to read: {exc}"
                log.error("binlog receiver not started: %s", self.last_exit)
            if first is not None:
                self.starts += 1
                log.info("mariadb-binlog starting from=%s spool=%s start=%d", first, self.spool_dir, self.starts)
                began = time.monotonic()
                code, tail = self._run_once(first)
                if self._stop.is_set():
                    break
                if time.monotonic() - began > 60:
                    delay = _RESTART_FIRST
                self.last_exit = failure_message("mariadb-binlog", code, tail)
                log.error("binlog receiver ended restart_in=%.0fs %s", delay, self.last_exit)
            if self._stop.wait(delay):
                break
            delay = min(_RESTART_CAP, delay * 2)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
