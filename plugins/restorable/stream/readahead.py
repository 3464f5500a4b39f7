"""Keep the dump tool writing while the stream is compressed, encrypted and uploaded.

A pipe holds 64 KiB: read inline, the dump tool would stall whenever the consumer is busy
compressing or uploading, and the two would take turns instead of running side by side. A
thread drains the pipe into a short queue of chunks (hashing them as it goes: ``hashlib``
releases the GIL) so the dump tool and the rest of the chain overlap. Memory stays bounded:
``depth`` chunks at most.
"""

from __future__ import annotations

import fcntl
import hashlib
import queue
import threading
from collections.abc import Callable
from typing import IO

_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_PIPE_SIZE = 1 << 20  # Linux's default pipe-max-size for unprivileged processes
_EOF = object()


def enlarge_pipe(raw: IO[bytes]) -> None:
    """Grow a pipe's kernel buffer to 1 MiB where the OS allows (fewer, larger wake-ups)."""
    try:
        fcntl.fcntl(raw.fileno(), _F_SETPIPE_SZ, _PIPE_SIZE)
    except (OSError, AttributeError, ValueError):
        pass  # not a pipe, or not Linux: the read-ahead still helps


class ReadAheadHashingReader:
    """A reader fed by a background thread; counts and sha256-hashes the plain bytes."""

    def __init__(
        self,
        raw: IO[bytes],
        *,
        chunk_size: int = 1 << 20,
        depth: int = 8,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self._raw = raw
        self._chunk_size = chunk_size
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._sha = hashlib.sha256()
        self._on_progress = on_progress
        self._buffer = b""
        self._pos = 0
        self._done = False
        self.bytes = 0
        enlarge_pipe(raw)
        self._thread = threading.Thread(target=self._pump, name="dump-read-ahead", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._raw.read(self._chunk_size)
                if not data:
                    break
                self._sha.update(data)
                if not self._put(data):
                    return
            self._put(_EOF)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while chunk := self.read(self._chunk_size):
                parts.append(chunk)
            return b"".join(parts)
        if self._pos >= len(self._buffer):
            if self._done:
                return b""
            item = self._queue.get()
            if item is _EOF or isinstance(item, BaseException):
                self._done = True
                if item is not _EOF:
                    raise item
                return b""
            self._buffer, self._pos = item, 0
        end = min(self._pos + size, len(self._buffer))
        out = self._buffer if (self._pos == 0 and end == len(self._buffer)) else self._buffer[self._pos : end]
        self._pos = end
        self.bytes += len(out)
        if self._on_progress is not None:
            self._on_progress(self.bytes)
        return out

    def hexdigest(self) -> str:
        """The sha256 of everything read; valid once the reader has returned EOF."""
        if not self._done:
            raise RuntimeError("the stream has not been read to its end")
        self._thread.join()
        return self._sha.hexdigest()

    def close(self) -> None:
        """Stop the thread (on failure paths, where the consumer stops reading early).

        A thread blocked reading a silent pipe ends when the caller stops the dump tool, which
        comes next: waiting for it here would only spend the 5 s Airflow allows before SIGKILL.
        """
        self._stop.set()
        self._thread.join(timeout=0.2)
