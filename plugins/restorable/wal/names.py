"""WAL file names and segment arithmetic.

A segment name is ``TTTTTTTT`` (timeline) + ``XXXXXXXX`` (LSN high word) + ``YYYYYYYY`` (segment
within it), all hex. With segment size ``S`` there are ``2**32 / S`` segments per high word, so
the arithmetic depends on the server's ``wal_segment_size`` (16 MiB unless initdb said
otherwise): every function that turns numbers into names takes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from restorable.repository.layout import WAL_FILE_RE

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
_LSN_RE = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")


def segments_per_xlogid(segment_size: int) -> int:
    if segment_size <= 0 or segment_size & (segment_size - 1) or segment_size > 1 << 30:
        raise ValueError(f"wal_segment_size {segment_size} is not a power of two up to 1 GiB")
    return 0x100000000 // segment_size


@dataclass(frozen=True, order=True)
class Segment:
    """One WAL segment: its timeline and its number counted from LSN 0."""

    timeline: int
    number: int

    def name(self, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
        per = segments_per_xlogid(segment_size)
        return f"{self.timeline:08X}{self.number // per:08X}{self.number % per:08X}"

    def next(self) -> Segment:
        return Segment(self.timeline, self.number + 1)


def parse_segment(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> Segment:
    """The segment a file name is about (a plain segment, its ``.partial`` or ``.backup``)."""
    match = WAL_FILE_RE.fullmatch(name)
    if match is None or match["segment"] is None:
        raise ValueError(f"{name!r} is not a WAL segment name (24 hex digits)")
    high, low = int(match["segment"][:8], 16), int(match["segment"][8:], 16)
    per = segments_per_xlogid(segment_size)
    if low >= per:
        raise ValueError(f"{name!r} cannot exist with {segment_size // 1024 // 1024} MiB segments")
    return Segment(int(match["timeline"], 16), high * per + low)


def kind_of(name: str) -> str:
    """``segment``, ``partial``, ``backup`` or ``history``; ValueError for other names."""
    match = WAL_FILE_RE.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is not a WAL file name")
    if match["history"]:
        return "history"
    suffix = match["suffix"] or ""
    if suffix == ".partial":
        return "partial"
    return "backup" if suffix else "segment"


def archive_order(name: str) -> tuple:
    """Sort key: history files first (a restore needs them to pick its timeline), then WAL order
    (timeline, segment), a segment before its ``.backup`` label and its ``.partial`` last."""
    kind = kind_of(name)
    if kind == "history":
        return (0, name)
    return (1, name[:24], {"segment": 0, "backup": 1, "partial": 2}[kind], name)


def parse_lsn(text: str) -> int:
    """``'16/B374D848'`` → integer."""
    match = _LSN_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an LSN (like 0/3000028)")
    return (int(match[1], 16) << 32) | int(match[2], 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def segment_of_lsn(timeline: int, lsn: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> Segment:
    return Segment(timeline, lsn // segment_size)


@dataclass(frozen=True)
class HistoryEntry:
    """One line of ``<tli>.history``: timeline ``parent`` ended (and the next began) at ``switch_lsn``."""

    parent: int
    switch_lsn: int
    reason: str


def parse_history(text: str) -> list[HistoryEntry]:
    """The lines of a timeline history file, oldest ancestor first (comments and blanks skipped)."""
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 2)
        if len(fields) < 2:
            raise ValueError(f"history line {line!r} has no switch point")
        entries.append(HistoryEntry(int(fields[0]), parse_lsn(fields[1]), fields[2] if len(fields) > 2 else ""))
    return entries
