"""Read a MariaDB binary log file's events: what the archiver records and where a restore cuts.

Only the event headers and three bodies are read (no row decoding): the format description (is
there a CRC32 trailer?), GTID events (domain, sequence number, whether the transaction is one
event) and the events that end a transaction (XID, or a ``COMMIT``/``ROLLBACK`` query). From them:

- ``Transaction``: one GTID, its binlog timestamp (whole seconds, UTC epoch), where it starts (the
  GTID event's offset) and ends (the end of its XID/COMMIT event, ``end``): a cut at ``end`` with
  ``mariadb-binlog --stop-position=end`` replays it and nothing after it, a cut at ``start``
  replays everything before it (``--stop-position`` stops at the first event *starting* at or
  after the offset: measured with MariaDB 10.11).
- the file's first and last GTID per domain, and whether each domain's sequence has a hole inside it.

A live file (the one the server is writing, snapshotted by the archiver) may end in the middle of
an event: ``complete_bytes`` is where the last whole event ends, and nothing past it is read.
Format: https://mariadb.com/kb/en/binary-log-event-headers/ (v4 headers, 19 bytes).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

MAGIC = b"\xfebin"
HEADER = struct.Struct("<IBIIIH")  # timestamp, type, server_id, event_length, next_position, flags
QUERY_EVENT = 2
ROTATE_EVENT = 4
FORMAT_DESCRIPTION_EVENT = 15
XID_EVENT = 16
GTID_EVENT = 162
GTID_LIST_EVENT = 163
_FL_STANDALONE = 1
_QUERY_POST_HEADER = 13  # thread id 4, exec time 4, db length 1, error code 2, status vars length 2


@dataclass(frozen=True)
class Event:
    offset: int
    timestamp: int
    type: int
    server_id: int
    length: int
    body: bytes

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True)
class Transaction:
    """One GTID's events: ``start`` (the GTID event's offset) to ``end`` (past its last event)."""

    domain: int
    server_id: int
    seq: int
    timestamp: int
    start: int
    end: int

    @property
    def gtid(self) -> str:
        return f"{self.domain}-{self.server_id}-{self.seq}"


@dataclass
class BinlogSummary:
    """What one file holds, as the archiver records it and continuity checks it."""

    complete_bytes: int = 4
    events: int = 0
    transactions: list[Transaction] = field(default_factory=list)
    #: The file ends with a Rotate event: the server closed it and went on to the next file.
    rotated: bool = False
    first_timestamp: int | None = None
    last_timestamp: int | None = None

    def gtid_ranges(self) -> dict[int, tuple[int, int]]:
        """Per domain: (first seq, last seq) of the transactions in this file."""
        out: dict[int, tuple[int, int]] = {}
        for t in self.transactions:
            first, _ = out.get(t.domain, (t.seq, t.seq))
            out[t.domain] = (first, t.seq)
        return out

    def holes(self) -> list[str]:
        """Sequence numbers missing inside this file, per domain (``0: 12..14``)."""
        found = []
        last: dict[int, int] = {}
        for t in self.transactions:
            before = last.get(t.domain)
            if before is not None and t.seq != before + 1 and t.seq > before:
                found.append(f"{t.domain}: {before + 1}..{t.seq - 1}")
            last[t.domain] = max(t.seq, before or t.seq)
        return found


def iter_events(data: bytes, start: int = 4) -> Iterator[Event]:
    """The whole events of ``data`` (a binlog file from its magic on) from offset ``start`` (an
    event boundary); stops at a truncated one."""
    if data[:4] != MAGIC:
        raise ValueError("not a binary log file (no \\xfebin magic)")
    offset = start
    while offset + HEADER.size <= len(data):
        timestamp, kind, server_id, length, _next, _flags = HEADER.unpack_from(data, offset)
        if length < HEADER.size or offset + length > len(data):
            return
        yield Event(offset, timestamp, kind, server_id, length, data[offset + HEADER.size : offset + length])
        offset += length


def _ends_transaction(event: Event, checksum: int) -> bool:
    if event.type == XID_EVENT:
        return True
    if event.type != QUERY_EVENT or len(event.body) < _QUERY_POST_HEADER:
        return False
    db_len = event.body[8]
    status_len = struct.unpack_from("<H", event.body, 11)[0]
    query = event.body[_QUERY_POST_HEADER + status_len + db_len + 1 : len(event.body) - checksum]
    return query.strip().upper() in (b"COMMIT", b"ROLLBACK")


class Summarizer:
    """``summarize`` in steps: ``feed`` the same growing file again and only its new events are read
    (the archiver snapshots a live file every few seconds; reading it whole each time made the
    archive lag grow with the file)."""

    def __init__(self) -> None:
        self.summary = BinlogSummary()
        self._checksum = 0
        self._open: tuple[Event, int, int, int] | None = None  # GTID event, domain, seq, flags

    def feed(self, data: bytes) -> BinlogSummary:
        """The summary of ``data``: this file as it is now (a prefix of it already fed is not read again)."""
        if len(data) < self.summary.complete_bytes:  # written again from byte 0 (the receiver restarted)
            self.__init__()
        summary = self.summary
        for event in iter_events(data, summary.complete_bytes):
            summary.events += 1
            summary.complete_bytes = event.end
            if event.timestamp:
                summary.first_timestamp = summary.first_timestamp or event.timestamp
                summary.last_timestamp = event.timestamp
            if event.type == FORMAT_DESCRIPTION_EVENT:
                # The checksum algorithm byte sits before the (always present) 4-byte trailer.
                self._checksum = 4 if len(event.body) >= 5 and event.body[-5] == 1 else 0
            elif event.type == GTID_EVENT:
                seq, domain, flags = struct.unpack_from("<QIB", event.body, 0)
                self._open = (event, domain, seq, flags)
                continue  # a standalone transaction ends with its one following event
            elif event.type == ROTATE_EVENT and event.offset > 4:
                summary.rotated = True
            if self._open is not None:
                gtid, domain, seq, flags = self._open
                if flags & _FL_STANDALONE or _ends_transaction(event, self._checksum):
                    summary.transactions.append(
                        Transaction(domain, gtid.server_id, seq, gtid.timestamp, gtid.offset, event.end)
                    )
                    self._open = None
        return summary


def summarize(data: bytes) -> BinlogSummary:
    """Read ``data`` (a whole or a live binlog file) into a ``BinlogSummary``."""
    return Summarizer().feed(data)
