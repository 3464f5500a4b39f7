"""Which archived binlogs the kept MariaDB dumps no longer need: a pure function, like ``wal_plan``.

A restore to a moment starts from a kept logical backup and replays binlogs from that backup's
recorded file and position on, so every file numbered below the oldest kept dump's file (and its
live snapshot) is needed by nothing that is kept. The retained window (``binlog.pitr_window``) is
kept through the plan itself: it keeps the dump the window starts from (``plan._guard_reasons``),
whose file then bounds what goes here. With no kept dump that has a binlog position, nothing is
deleted: the archive may be all that is left to start from once a backup is taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from restorable.repository.layout import BINLOG_FILE_RE


def binlog_start_of(manifest: Mapping[str, Any]) -> str | None:
    """The binlog file a raw logical manifest's snapshot position names (None: no binlog, or not a dump)."""
    if manifest.get("kind", "logical") != "logical" or manifest.get("engine") != "mysql":
        return None
    metadata = manifest.get("metadata")
    position = metadata.get("position") if isinstance(metadata, Mapping) else None
    if not isinstance(position, Mapping) or not position.get("log_bin"):
        return None
    name = position.get("binlog_file")
    return str(name) if name and BINLOG_FILE_RE.fullmatch(str(name)) else None


def _number(name: str) -> tuple[str, int]:
    match = BINLOG_FILE_RE.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is not a binlog file name")
    return match["base"], int(match["number"])


def binlog_not_needed(archived: Iterable[str], kept_starts: Iterable[str]) -> tuple[list[str], str | None]:
    """(files to delete, oldest start kept): ``kept_starts`` are the kept dumps' binlog files.

    Only files of the same base name as that start are judged (a server renamed its binlogs:
    the older base's files are left for a person to decide)."""
    starts = sorted(kept_starts, key=lambda s: _number(s)[1])
    if not starts:
        return [], None
    base, oldest = _number(starts[0])
    doomed = []
    for name in archived:
        match = BINLOG_FILE_RE.fullmatch(name)
        if match is not None and match["base"] == base and int(match["number"]) < oldest:
            doomed.append(name)
    return sorted(doomed, key=lambda n: (_number(n)[1], n)), starts[0]
