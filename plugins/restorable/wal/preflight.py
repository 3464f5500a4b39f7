"""What the archiver checks on the server at start: does PostgreSQL write where it reads?

A mismatch does not stop the archiver (it still drains what is in the spool), but it is an alarm
that names the setting and what to set, because otherwise nothing reaches the bucket silently.
"""

from __future__ import annotations

from typing import Any

from restorable.config import WalConfig

_SETTINGS = (
    "wal_level",
    "archive_mode",
    "archive_command",
    "archive_library",
    "archive_timeout",
    "basic_archive.archive_directory",
    "max_slot_wal_keep_size",
)


def read_settings(pg: Any) -> dict[str, str | None]:
    return {name: pg.execute("SELECT current_setting(%s, true)", (name,)).fetchone()[0] for name in _SETTINGS}


def archive_problems(settings: dict[str, str | None], wal: WalConfig) -> list[str]:
    """Each problem as one sentence with the fix, for the mode configured."""
    problems = []
    if settings.get("wal_level") not in ("replica", "logical"):
        problems.append(f"wal_level is {settings.get('wal_level')!r}: set wal_level = replica (needs a restart)")
    if wal.mode == "stream":
        return problems
    spool = str(wal.spool_dir).rstrip("/")
    if settings.get("archive_mode") not in ("on", "always"):
        problems.append(f"archive_mode is {settings.get('archive_mode')!r}: set archive_mode = on (needs a restart)")
    library = settings.get("archive_library") or ""
    command = settings.get("archive_command") or ""
    if library == "basic_archive":
        if (settings.get("basic_archive.archive_directory") or "").rstrip("/") != spool:
            problems.append(f"basic_archive.archive_directory is not the spool: set it to '{spool}'")
    elif library:
        problems.append(f"archive_library is {library!r}: use spool-archive.sh as archive_command (or basic_archive)")
    elif spool not in command.split():
        problems.append(
            f"archive_command {command!r} does not write into the spool {spool}: set "
            f"archive_command = '<path>/spool-archive.sh %p %f {spool} {wal.spool_max_bytes}'"
        )
    elif str(wal.spool_max_bytes) not in command.split():
        problems.append(
            f"archive_command's spool bound is not spool_max ({wal.spool_max_bytes} bytes): the archive step "
            "and the archiver's alarms disagree on when the spool is full"
        )
    return problems
