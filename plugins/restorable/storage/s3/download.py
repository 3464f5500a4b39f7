"""Reading an object as a stream that survives dropped connections (``S3Store.open_read``)."""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import time
from typing import TYPE_CHECKING, Any

from restorable.storage.s3.failures import backoff, is_transient, short
from restorable.storage.s3.limits import MiB

if TYPE_CHECKING:
    from restorable.storage.s3.store import S3Store

log = logging.getLogger(__name__)


class _ResumableBody(io.RawIOBase):
    """An object's body that survives dropped connections by resuming with a Range GET.

    The resumed request is pinned to the version and ETag the first one saw, so a key
    overwritten mid-read fails (412) instead of splicing two objects together.
    """

    def __init__(self, store: S3Store, key: str, version_id: str | None) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._version_id = version_id
        self._etag: str | None = None
        self._body: Any = None
        self._pos = 0
        #: A read of the body is under way (in some thread); ``close`` has begun.
        self._reading = False
        self._closing = False
        self.size: int | None = None

    def _open(self, start: int) -> None:
        store = self._store
        params: dict[str, Any] = {"Bucket": store.bucket, "Key": self._key}
        if self._version_id:
            params["VersionId"] = self._version_id
        if start:
            params["Range"] = f"bytes={start}-"
            if self._etag:
                params["IfMatch"] = self._etag
        response = store._call("GetObject", self._key, lambda: store.client.get_object(**params))
        if start == 0:
            self._etag = response.get("ETag")
            self._version_id = self._version_id or response.get("VersionId")
            self.size = int(response.get("ContentLength", 0))
        self._body = response["Body"]

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(8 * MiB):
                chunks.append(chunk)
            return b"".join(chunks)
        self._reading = True
        try:
            return self._read(size)
        finally:
            self._reading = False

    def _read(self, size: int) -> bytes:
        attempt = 0
        while True:
            try:
                data = self._body.read(size)
                self._pos += len(data)
                return data
            except Exception as exc:
                attempt += 1
                if self._closing or not is_transient(exc) or attempt >= self._store.max_attempts:
                    raise self._store._translate(exc, "GetObject (reading body)", self._key, attempts=attempt) from exc
                log.warning(
                    "s3 read interrupted, resuming bucket=%s key=%s offset=%d attempt=%d error=%s",
                    self._store.bucket,
                    self._key,
                    self._pos,
                    attempt,
                    short(exc),
                )
                with contextlib.suppress(Exception):
                    self._body.close()
                time.sleep(backoff(attempt, self._store.backoff_base))
                self._open(self._pos)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._closing = True
        if self._body is not None:
            if self._reading:
                _shut_down_socket(self._body)
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


def _shut_down_socket(body: Any) -> None:
    """End a read of ``body`` blocked in another thread (a decode's feeder after a SIGTERM).

    Closing the body waits for that read, which holds the buffered reader's lock, and a stalled
    response keeps it for the client's read_timeout (60 s): far past the 5 s Airflow leaves
    between its SIGTERM and its SIGKILL. Shutting the socket down makes the read return now.
    """
    with contextlib.suppress(Exception):
        body._raw_stream.connection.sock.shutdown(socket.SHUT_RDWR)


def open_resumable(store: S3Store, key: str, version_id: str | None) -> io.RawIOBase:
    """Start reading ``key`` (the first GET happens now, so a missing key fails here)."""
    reader = _ResumableBody(store, key, version_id)
    reader._open(0)
    return reader
