"""The client tools' child processes, the same for every engine: environment, stderr, exit, end.

- :func:`child_env` gives a tool an environment built from an allow-list: the variables any
  program needs (``PATH``, ``HOME``, locale, time zone, temp dir) plus the tool's own prefix
  (``PG*``, ``MYSQL_*``), less the secrets the engine names. Nothing else of the parent passes,
  in particular never ``AIRFLOW_CONN_*`` (connection URIs with passwords) or ``AIRFLOW_VAR_*``.
- :func:`secret_file` hands a tool a password or key as ``/dev/fd/N``: an anonymous in-memory
  file (``memfd``) passed down with ``pass_fds``. No name exists on any disk, so nothing is left
  to remove when this process is killed (SIGKILL included), and no other process sees it.
- :class:`StreamTail` drains a pipe on a thread, so a chatty tool can never block on it, logs
  each line and keeps the last ones for the error message.
- :func:`tool_failure` is the one wording of a failed tool: what ended it and its stderr tail.
- :func:`stop_process` ends a child the way Airflow ends a task: SIGTERM, which lets
  ``pg_dump``/``pg_restore`` cancel their server query, then SIGKILL after a short grace.
- :func:`running` starts a child under that guard from its first instant: the stop signals are
  held while it starts (``restorable.interrupt.held``), and any exception out of the block
  stops it. A signal between ``Popen`` returning and the ``try`` that guards the child would
  otherwise leave it running after the command exited.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from restorable.connections import ConnectionInfo
from restorable.exceptions import ToolError
from restorable.interrupt import held

log = logging.getLogger(__name__)

#: Variables every tool keeps: finding programs and libraries, the home directory (client
#: option files), locale, time zone, the temp directory and the system's CA certificates.
BASE_VARIABLES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "LD_LIBRARY_PATH",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)
#: Seconds a child has to exit after SIGTERM before it is killed. Airflow sends its own SIGKILL
#: 5 s after stopping a task, and the rest of the clean-up (aborting the upload, dropping a
#: restore's database) needs time too.
TERM_GRACE_SECONDS = 2.0
#: What a password is replaced with in messages and logged lines.
_MASK = "********"


def child_env(
    *,
    tool_prefixes: Iterable[str] = (),
    remove: Iterable[str] = (),
    add: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a client tool: :data:`BASE_VARIABLES`, ``LC_*``, and the parent's
    variables starting with one of ``tool_prefixes``, less ``remove``; then ``add`` on top."""
    prefixes = tuple(tool_prefixes)
    removed = set(remove)
    env = {
        name: value
        for name, value in os.environ.items()
        if (name in BASE_VARIABLES or name.startswith("LC_") or (prefixes and name.startswith(prefixes)))
        and name not in removed
        and not name.startswith("AIRFLOW_")
    }
    env.update(add or {})
    return env


def scrub(text: str, conn: ConnectionInfo) -> str:
    """``text`` with the connection's password masked, should a library or tool ever echo it."""
    return text.replace(conn.password, _MASK) if conn.password else text


def remove_quietly(path: str) -> None:
    """Remove ``path``; a file already gone is not an error (every exit path calls this)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@dataclass
class SecretFile:
    """A secret as a file a child can open by ``path`` (``/dev/fd/N``) when started with
    ``pass_fds=secret.pass_fds``."""

    fd: int

    @property
    def path(self) -> str:
        return f"/dev/fd/{self.fd}"

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self.fd,) if self.fd >= 0 else ()

    def close(self) -> None:
        """Forget the secret here (the children that inherited it keep their copy); idempotent."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@contextmanager
def secret_file(text: str, name: str) -> Iterator[SecretFile]:
    """``text`` in an anonymous 0600 in-memory file for the block's children (see the module doc).

    libpq (``PGPASSFILE``), the MariaDB/MySQL clients (``--defaults-extra-file``) and ``age``
    (``--identity``) all read it: it is a regular file, and 0600 passes libpq's permission check.
    """
    fd = os.memfd_create(f"restorable-{name}", os.MFD_CLOEXEC)  # close-on-exec: only pass_fds children get it
    secret = SecretFile(fd)
    try:
        os.fchmod(fd, 0o600)
        data = text.encode("utf-8")
        while data:
            data = data[os.write(fd, data) :]
        yield secret
    finally:
        secret.close()


class StreamTail:
    """Drains a child's pipe on a thread (so it can never block the child) and keeps its tail.

    Each line is logged (``log_lines``) with ``secret`` masked; ``count`` is how many non-empty
    lines were read.
    """

    def __init__(
        self,
        stream: IO[bytes],
        tool: str,
        *,
        lines: int = 40,
        log_lines: bool = True,
        secret: str | None = None,
    ) -> None:
        self._stream = stream
        self._tool = tool
        self._log_lines = log_lines
        self._secret = secret
        self.lines: collections.deque[str] = collections.deque(maxlen=lines)
        self.count = 0
        self._thread = threading.Thread(target=self._run, name=f"{tool}-stderr", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for raw in iter(self._stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip()
                if not line:
                    continue
                if self._secret:
                    line = line.replace(self._secret, _MASK)
                self.count += 1
                self.lines.append(line)
                if self._log_lines:
                    log.info("tool=%s stderr=%r", self._tool, line)
        except (OSError, ValueError):
            pass  # the pipe was closed under us: the process is being stopped
        finally:
            try:
                self._stream.close()
            except OSError:
                pass

    def join(self, timeout: float | None = 30) -> None:
        """Wait (at most ``timeout`` seconds) for the pipe to reach its end."""
        self._thread.join(timeout)

    def text(self) -> str:
        """The kept lines, oldest first."""
        return "\n".join(self.lines)


def exit_description(tool: str, returncode: int) -> str:
    """``"pg_dump exited with code 1"`` or ``"mariadb-dump was killed by signal 9"``."""
    if returncode < 0:
        return f"{tool} was killed by signal {-returncode}"
    return f"{tool} exited with code {returncode}"


def failure_message(tool: str, returncode: int, stderr: StreamTail | str) -> str:
    """How ``tool`` ended, with the tail of its stderr (the text of what it said, if a string)."""
    detail = stderr.text() if isinstance(stderr, StreamTail) else stderr.strip()
    return exit_description(tool, returncode) + (f"; stderr tail:\n{detail}" if detail else "; nothing on stderr")


def tool_failure(tool: str, returncode: int, stderr: StreamTail | str, *, database: str | None, hint: str) -> ToolError:
    """The ``ToolError`` of a tool that failed: :func:`failure_message` plus what to do."""
    return ToolError(failure_message(tool, returncode, stderr), database=database, hint=hint)


@contextmanager
def running(args: list[str], **popen_kwargs: Any) -> Iterator[subprocess.Popen]:
    """``subprocess.Popen(args, **popen_kwargs)``, stopped (:func:`stop_process`) when anything,
    an interrupt included, leaves the block; a stop signal during the start is raised inside it.
    The block decides how a child that ends normally is waited for."""
    proc: subprocess.Popen | None = None
    try:
        with held():
            proc = subprocess.Popen(args, **popen_kwargs)
        yield proc
    except BaseException:
        if proc is not None:
            stop_process(proc)
        raise


def stop_process(proc: subprocess.Popen, *, grace: float = TERM_GRACE_SECONDS, timeout: float = 10) -> None:
    """End ``proc`` if it still runs (SIGTERM, then SIGKILL after ``grace`` seconds) and reap it."""
    if proc.poll() is None:
        _signal(proc, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            log.info("tool_pid=%s still running %.1f s after SIGTERM: killing it", proc.pid, grace)
            _signal(proc, signal.SIGKILL)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:  # pragma: no cover - a killed child that does not die
        log.warning("tool_pid=%s did not exit after SIGKILL", proc.pid)


def _signal(proc: subprocess.Popen, signum: int) -> None:
    try:
        proc.send_signal(signum)
    except ProcessLookupError:  # it exited between the poll and the signal
        pass
