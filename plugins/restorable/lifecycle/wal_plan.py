"""Which archived WAL the kept base backups no longer need: a pure function, like ``plan``.

A restore starts from a kept base backup and replays WAL from that backup's start segment on, so
every segment (its ``.partial``, its ``.backup`` label) numbered below the oldest kept base
backup's start is needed by nothing that is kept. Segment numbers count from LSN 0 on every
timeline, so the rule holds across timelines. Timeline ``.history`` files are kept always (a few
bytes, and a restore following a timeline needs every ancestor's). With no kept base backup,
nothing is deleted: the archive may be all that is left to start from once a base backup is taken.
"""

from __future__ import annotations

from collections.abc import Iterable

from restorable.wal.names import DEFAULT_SEGMENT_SIZE, kind_of, parse_segment


def wal_not_needed(
    archived: Iterable[str], kept_starts: Iterable[str], segment_size: int = DEFAULT_SEGMENT_SIZE
) -> tuple[list[str], str | None]:
    """(files to delete, oldest start kept); ``kept_starts`` are the kept base backups' start segments."""
    starts = [parse_segment(s, segment_size) for s in kept_starts]
    if not starts:
        return [], None
    oldest = min(starts, key=lambda s: s.number)
    doomed = sorted(
        name
        for name in archived
        if kind_of(name) != "history" and parse_segment(name, segment_size).number < oldest.number
    )
    return doomed, oldest.name(segment_size)
