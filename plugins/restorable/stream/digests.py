"""Byte counts and SHA-256 digests taken while a stream passes through, in one pass."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import IO, Any


@dataclass(frozen=True)
class StreamDigests:
    """What one pass over a backup stream measured.

    ``plain`` is the dump as the database tool wrote it; ``stored`` is what sits in the
    bucket (compressed, then encrypted). Both digests are lowercase hex SHA-256.
    """

    plain_bytes: int
    stored_bytes: int
    plain_sha256: str
    stored_sha256: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class HashingReader:
    """Wraps a binary reader: counts and hashes every byte read through it."""

    def __init__(self, raw: IO[bytes], on_progress: Callable[[int], None] | None = None) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self._on_progress = on_progress
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self._sha.update(data)
            self.bytes += len(data)
            if self._on_progress is not None:
                self._on_progress(self.bytes)
        return data

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class HashingWriter:
    """Wraps a sink with ``write(bytes)``: counts and hashes every byte written through it."""

    def __init__(self, sink: Any, on_progress: Callable[[int], None] | None = None) -> None:
        self._sink = sink
        self._sha = hashlib.sha256()
        self._on_progress = on_progress
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self._sha.update(data)
        self.bytes += len(data)
        self._sink.write(data)
        if self._on_progress is not None:
            self._on_progress(self.bytes)
        return len(data)

    def flush(self) -> None:
        flush = getattr(self._sink, "flush", None)
        if flush is not None:
            flush()

    def hexdigest(self) -> str:
        return self._sha.hexdigest()
