"""How far the WAL archive reaches: the newest archived commit on a timeline.

A time target past the newest archived commit cannot be reached: PostgreSQL 15 then stops with
FATAL "recovery ended before configured recovery target was reached" (after ``pg_ctl -w`` already
returned 0), and older tooling simply promoted early. So a restore reads the newest archived
segment (or its ``.partial``) with ``pg_waldump`` and refuses such a target before extracting a
byte. The heartbeat rows the archiver commits every few seconds make this commit recent even on
an idle database.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from restorable.engines.postgres.tools import find_pg_binary
from restorable.engines.process import child_env
from restorable.exceptions import ToolError
from restorable.repository.layout import Layout
from restorable.storage.protocol import Store
from restorable.wal.continuity import archived_names
from restorable.wal.names import kind_of, parse_lsn
from restorable.wal.objects import read_wal_file

log = logging.getLogger(__name__)

_COMMIT = re.compile(
    r"lsn: ([0-9A-F]+/[0-9A-F]+).*desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ([A-Za-z0-9+:]+)"
)
_LSN = re.compile(r"lsn: ([0-9A-F]+/[0-9A-F]+)")


@dataclass(frozen=True)
class ArchiveEnd:
    timeline: int
    wal_file: str
    #: The newest commit record in it (None: the segment holds no commit).
    last_commit_time: datetime | None
    last_commit_lsn: int | None
    #: The last record's LSN in the newest archived file.
    last_lsn: int | None


def newest_file(store: Store, layout: Layout, database_id: str, timeline: int) -> str | None:
    """The newest segment (or ``.partial`` when newer) archived on ``timeline``."""
    files = [
        n
        for n in archived_names(store, layout, database_id)
        if int(n[:8], 16) == timeline and kind_of(n) in ("segment", "partial")
    ]
    return max(files, key=lambda n: (n[:24], kind_of(n) == "partial")) if files else None


def read_archive_end(
    store: Store, layout: Layout, identity: str, database_id: str, timeline: int, server_major: int | None = None
) -> ArchiveEnd | None:
    """The newest archived commit of ``timeline`` (pg_waldump over the newest file), or None without WAL."""
    name = newest_file(store, layout, database_id, timeline)
    if name is None:
        return None
    data = read_wal_file(store, layout, identity, database_id, name)
    waldump = find_pg_binary("pg_waldump", server_major)
    with tempfile.TemporaryDirectory(prefix="restorable-waldump-") as tmp:
        segment = Path(tmp) / name.removesuffix(".partial")
        segment.write_bytes(data)
        done = subprocess.run(
            [waldump, str(segment)], capture_output=True, text=True, timeout=120, env=child_env(add={"TZ": "UTC"})
        )
    # A .partial (or the live end of a segment) ends in an invalid record: pg_waldump then exits 1
    # after printing every valid record, which is what is wanted here.
    lines = done.stdout.splitlines()
    if done.returncode != 0 and not lines:
        raise ToolError(
            f"pg_waldump could not read {name}: {done.stderr.strip()[-500:]}",
            database=database_id,
            hint="Check the archive with restorable verify-wal",
        )
    commit_time = commit_lsn = last_lsn = None
    for line in lines:
        if match := _LSN.search(line):
            last_lsn = parse_lsn(match[1])
        if match := _COMMIT.search(line):
            commit_lsn = parse_lsn(match[1])
            commit_time = _parse_commit_time(match[2], match[3])
    log.info("archive end database=%s timeline=%d file=%s last_commit=%s", database_id, timeline, name, commit_time)
    return ArchiveEnd(timeline, name, commit_time, commit_lsn, last_lsn)


def _parse_commit_time(stamp: str, zone: str) -> datetime:
    """pg_waldump prints commit times in its own zone's abbreviation; it runs with TZ=UTC here."""
    when = datetime.fromisoformat(stamp)
    if zone.upper() not in ("UTC", "GMT", "+00", "Z"):
        raise ToolError(f"pg_waldump printed a commit time in zone {zone!r}, expected UTC")
    return when.replace(tzinfo=UTC)
