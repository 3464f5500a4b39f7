"""Restores and drills that fall back to a verified copy when the primary cannot give the backup.

The primary is tried first, as always. When it is unreachable (a storage error: the endpoint is
down, the bucket gone) or what it returns fails its checksum (an integrity error in the stream,
after the restore dropped the database it had created), each configured copy is asked in turn for
the same backup (or, when the primary could not even be listed and ``latest`` was asked for, the
copy's newest verified one), and the first copy that holds it *verified* is used. A backup the
primary does not hold (any more: its retention is its own) is looked for in the copies too. The result names
the copy and the reason, and a warning says so in the log: a restore never silently changes source.

Not a fallback: a wrong key (``DecryptionError``: the copy holds the same ciphertext), a refused
target, a bad config, or a restored database that differs from its manifest (the copy holds the
same backup).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from restorable.copies.destinations import copy_services
from restorable.exceptions import (
    DecryptionError,
    IntegrityError,
    NotFound,
    RestorableError,
    StorageError,
    ValidationFailed,
)
from restorable.logs import backup_log
from restorable.services import Services

T = TypeVar("T")


def fallback_reason(exc: RestorableError) -> str | None:
    """Why a copy may stand in for the primary after ``exc``, or None when it cannot help."""
    if isinstance(exc, (DecryptionError, ValidationFailed)):
        return None
    if isinstance(exc, StorageError):
        return f"the primary storage is unreachable or refused: {exc.message}"
    if isinstance(exc, IntegrityError):
        return f"the primary's backup failed its checksum: {exc.message}"
    if isinstance(exc, NotFound):
        return f"the primary holds no usable backup: {exc.message}"
    return None


def verified_copy(services: Services, database_id: str, backup_id: str) -> tuple[str, Services, str] | None:
    """(copy name, its services, backup id) of the first copy holding ``backup_id`` verified, or None."""
    log = backup_log(__name__, database_id, None if backup_id == "latest" else backup_id)
    for copy in services.config.storage.copies:
        copied = copy_services(services, copy.name)
        try:
            catalog = copied.catalog("restore")
            if backup_id == "latest":
                entry = catalog.pick(database_id, verified_only=True)
            else:
                entry = next((e for e in catalog.entries(database_id) if e.backup_id == backup_id), None)
                if entry is None or not entry.verified or entry.missing_objects:
                    log.warning("copy has no verified copy of the backup", copy=copy.name)
                    continue
            return copy.name, copied, entry.backup_id
        except RestorableError as exc:
            log.warning("copy unusable", copy=copy.name, error=exc.message)
    return None


def with_fallback(
    services: Services, database_id: str, backup_id: str, action: Callable[[Services, str], T]
) -> tuple[T, str | None, str | None]:
    """``action(services, backup_id)`` on the primary, else on a verified copy: (result, copy, reason)."""
    try:
        return action(services, backup_id), None, None
    except RestorableError as exc:
        reason = fallback_reason(exc)
        if reason is None or not services.config.storage.copies:
            raise
        # The backup the primary failed on (its manifest was read), else what was asked for.
        wanted = exc.backup_id or backup_id
        found = verified_copy(services, database_id, wanted)
        if found is None:
            exc.message += "; no configured copy holds a verified copy of it to fall back to"
            exc.args = (str(exc),)
            raise
        name, copied, chosen = found
        backup_log(__name__, database_id, chosen).warning("falling back to a copy", copy=name, reason=reason)
        try:
            return action(copied, chosen), name, reason
        except RestorableError as second:
            second.message += f" (on copy {name}, after the primary failed: {reason})"
            second.args = (str(second),)
            raise
