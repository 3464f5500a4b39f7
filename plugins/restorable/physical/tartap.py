"""Read a tar stream as it passes and keep the bytes of the members asked for.

``pg_basebackup -D - -Ft`` writes one tar to stdout and appends its ``backup_manifest`` (and the
``backup_label`` sits at the start): the base backup is streamed whole into the bucket, and these
small members are kept on the way, without a second pass and without holding the tar in memory.

The walk reads only the 512-byte headers (ustar and GNU long names: ``pg_basebackup`` writes
ustar), counting each member's data and padding past; it never buffers more than one header.
"""

from __future__ import annotations

from typing import IO

BLOCK = 512


class TarTap:
    """A reader over ``source`` (what it returns is ``source``'s bytes, unchanged) that keeps the
    data of every member whose name is in ``keep`` in :attr:`members`."""

    def __init__(self, source: IO[bytes], keep: frozenset[str], *, max_member_bytes: int = 256 << 20) -> None:
        self._source = source
        self._keep = keep
        self._max = max_member_bytes
        self.members: dict[str, bytes] = {}
        self._header = bytearray()
        #: Bytes of the current member's data (then padding) still to pass.
        self._data_left = 0
        self._pad_left = 0
        self._capture: bytearray | None = None
        self._capture_name = ""
        self._long_name: bytearray | None = None
        self._reading_long_name = False
        self.ended = False

    def fileno(self) -> int:
        return self._source.fileno()

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data:
            self._walk(memoryview(data))
        return data

    def readinto(self, buffer) -> int:  # pragma: no cover - encoders call read()
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _walk(self, view: memoryview) -> None:
        while view and not self.ended:
            if self._data_left:
                take = min(self._data_left, len(view))
                if self._capture is not None:
                    self._capture += view[:take]
                self._data_left -= take
                view = view[take:]
                if not self._data_left:
                    self._member_done()
                continue
            if self._pad_left:
                take = min(self._pad_left, len(view))
                self._pad_left -= take
                view = view[take:]
                continue
            take = min(BLOCK - len(self._header), len(view))
            self._header += view[:take]
            view = view[take:]
            if len(self._header) == BLOCK:
                header, self._header = bytes(self._header), bytearray()
                self._start_member(header)

    def _start_member(self, header: bytes) -> None:
        if header == b"\0" * BLOCK:
            self.ended = True  # the end-of-archive blocks: nothing after them is a member
            return
        name = header[:100].split(b"\0", 1)[0]
        prefix = header[345:500].split(b"\0", 1)[0] if header[257:262] == b"ustar" else b""
        size = _size(header[124:136])
        kind = header[156:157]
        full = (prefix + b"/" + name) if prefix else name
        if self._long_name is not None:
            full, self._long_name = bytes(self._long_name).split(b"\0", 1)[0], None
        self._reading_long_name = kind == b"L"
        self._capture_name = full.decode("utf-8", "replace")
        wanted = self._reading_long_name or (kind in (b"0", b"\0") and self._capture_name in self._keep)
        self._capture = bytearray() if wanted and size <= self._max else None
        self._data_left = size
        self._pad_left = (-size) % BLOCK
        if size == 0:
            self._member_done()

    def _member_done(self) -> None:
        if self._reading_long_name:
            self._long_name = self._capture
            self._reading_long_name = False
        elif self._capture is not None:
            self.members[self._capture_name] = bytes(self._capture)
        self._capture = None


def _size(field: bytes) -> int:
    if field[:1] == b"\x80":  # GNU base-256 for members over 8 GiB
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0
