"""Stream mode: ``pg_receivewal`` on a replication slot writes WAL into the spool as it happens.

The archiver supervises it from a thread: it creates the slot if missing (``--create-slot
--if-not-exists``), runs ``pg_receivewal -D <spool> --slot S --synchronous --no-loop`` and starts
it again (after 1 s, up to 10 s when it keeps failing) whenever it exits, logging its stderr tail.
``--synchronous`` flushes each write (without it the flush lags ~23 s here); ``--no-loop`` makes
a lost connection an exit the supervisor sees and counts, rather than a silent retry inside.

pg_receivewal writes the segment in progress as ``<segment>.partial`` and renames it when the
segment is complete: the archiver uploads the complete segment as usual and the ``.partial``
every ``partial_interval`` seconds when it changed (the RPO of stream mode).

The password reaches pg_receivewal as an in-memory pgpass file (``/dev/fd/N``), never argv.
A slot holds WAL on the primary while the streamer is down: set ``max_slot_wal_keep_size`` so a
dead streamer becomes a gap that ``verify-wal`` reports, not a full primary disk.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from pathlib import Path

from restorable.connections import ConnectionInfo
from restorable.engines.postgres import tools as pg_tools
from restorable.engines.process import StreamTail, failure_message, running, stop_process

log = logging.getLogger(__name__)

_RESTART_FIRST = 1.0
_RESTART_CAP = 10.0


class Streamer:
    """Keeps one ``pg_receivewal`` running into ``spool_dir`` until ``stop()``."""

    def __init__(self, conn: ConnectionInfo, slot: str, spool_dir: Path) -> None:
        self.conn = conn
        self.slot = slot
        self.spool_dir = Path(spool_dir)
        self.binary = pg_tools.find_pg_binary("pg_receivewal")
        self.starts = 0
        self.last_exit: str | None = None
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _argv(self, *extra: str) -> list[str]:
        args = [self.binary, "-D", str(self.spool_dir), "--slot", self.slot, "--no-password"]
        for flag, value in (("-h", self.conn.host), ("-p", self.conn.port), ("-U", self.conn.login)):
            if value:
                args += [flag, str(value)]
        return args + list(extra)

    def _run_once(self, *extra: str) -> tuple[int, StreamTail]:
        with pg_tools.password_file(self.conn) as passfile:
            env, fds = pg_tools.child_env(passfile), pg_tools.pass_fds(passfile)
            popen = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
            with running(self._argv(*extra), **popen, env=env, pass_fds=fds) as proc:
                self._proc, self.pid = proc, proc.pid
                tail = StreamTail(proc.stderr, "pg_receivewal", secret=self.conn.password)
                try:
                    while proc.poll() is None and not self._stop.wait(0.2):
                        pass
                finally:
                    stop_process(proc)
                    tail.join(5)
            return proc.returncode, tail

    def create_slot(self) -> None:
        """The slot, created if missing; ToolError with pg_receivewal's words when it cannot be."""
        code, tail = self._run_once("--create-slot", "--if-not-exists")
        if code != 0:
            from restorable.exceptions import ToolError

            raise ToolError(
                failure_message("pg_receivewal --create-slot", code, tail),
                hint="The replication connection's role needs REPLICATION, and max_replication_slots a free slot",
            )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="wal-streamer", daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        delay = _RESTART_FIRST
        while not self._stop.is_set():
            self.starts += 1
            log.info("pg_receivewal starting slot=%s spool=%s start=%d", self.slot, self.spool_dir, self.starts)
            began = time.monotonic()
            code, tail = self._run_once("--synchronous", "--no-loop")
            if self._stop.is_set():
                break
            if time.monotonic() - began > 60:
                delay = _RESTART_FIRST  # it ran fine for a while: this is a new failure, not the same one
            self.last_exit = failure_message("pg_receivewal", code, tail)
            log.error("wal streamer ended slot=%s restart_in=%.0fs %s", self.slot, delay, self.last_exit)
            if self._stop.wait(delay):
                break
            delay = min(_RESTART_CAP, delay * 2)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
