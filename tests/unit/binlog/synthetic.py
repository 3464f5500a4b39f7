"""Synthetic MariaDB binlog files for unit tests (the layout of real ones, checked in
tests/integration/binlog against files a real server wrote)."""

from __future__ import annotations

import struct
import zlib

from restorable.binlog.events import (
    FORMAT_DESCRIPTION_EVENT,
    GTID_EVENT,
    HEADER,
    MAGIC,
    QUERY_EVENT,
    ROTATE_EVENT,
    XID_EVENT,
)

TABLE_MAP, WRITE_ROWS = 19, 23


class BinlogWriter:
    """Appends events with CRC32 trailers, as a server with binlog_checksum=CRC32 writes them."""

    def __init__(self) -> None:
        self.data = bytearray(MAGIC)
        fde = struct.pack("<H", 4) + b"10.11.19-MariaDB".ljust(50, b"\0") + struct.pack("<I", 0) + b"\x13" + b"\0" * 40
        self.event(FORMAT_DESCRIPTION_EVENT, fde + b"\x01", ts=1)

    def event(self, kind: int, body: bytes, *, ts: int, server_id: int = 1) -> int:
        offset = len(self.data)
        length = HEADER.size + len(body) + 4
        header = HEADER.pack(ts, kind, server_id, length, offset + length, 0)
        crc = struct.pack("<I", zlib.crc32(header + body) & 0xFFFFFFFF)
        self.data += header + body + crc
        return offset

    def transaction(self, seq: int, ts: int, *, domain: int = 0, ddl: bool = False, rows: int = 1) -> tuple[int, int]:
        """A GTID transaction: (its start, its end)."""
        start = self.event(GTID_EVENT, struct.pack("<QIB", seq, domain, 1 if ddl else 0) + b"\0" * 6, ts=ts)
        if ddl:
            self.event(QUERY_EVENT, _query(b"CREATE TABLE t (id int)"), ts=ts)
        else:
            for _ in range(rows):
                self.event(TABLE_MAP, b"\0" * 12, ts=ts)
                self.event(WRITE_ROWS, b"\0" * 20, ts=ts)
            self.event(XID_EVENT, struct.pack("<Q", seq), ts=ts)
        return start, len(self.data)

    def commit_query(self, seq: int, ts: int) -> tuple[int, int]:
        """A non-transactional statement's transaction: BEGIN ... COMMIT as Query events."""
        start = self.event(GTID_EVENT, struct.pack("<QIB", seq, 0, 0) + b"\0" * 6, ts=ts)
        self.event(QUERY_EVENT, _query(b"INSERT INTO m VALUES (1)"), ts=ts)
        self.event(QUERY_EVENT, _query(b"COMMIT"), ts=ts)
        return start, len(self.data)

    def rotate(self, ts: int, next_name: bytes = b"mariadb-bin.000002") -> None:
        self.event(ROTATE_EVENT, struct.pack("<Q", 4) + next_name, ts=ts)


def _query(sql: bytes, db: bytes = b"shop") -> bytes:
    status = b""
    post = struct.pack("<IIBHH", 7, 0, len(db), 0, len(status))
    return post + status + db + b"\0" + sql
