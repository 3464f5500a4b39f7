"""The lease of a backup in flight: ``<backup>/lease.json``, renewed while the dump streams.

A backup that is still uploading has data but no manifest, so to the lifecycle it looks like an
orphan. The lease says otherwise: who holds it and until when. ``hold_lease`` writes it before
the upload starts, renews it from a thread every ``RENEW_SECONDS`` (so a stalled dump keeps it as
long as the process lives), and removes it once the backup committed or failed. The orphan cleaner
spares a backup whose lease has not expired; a process killed without cleanup leaves a lease that
expires within ``LEASE_SECONDS``, after which the usual ``orphan_min_age`` applies.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from restorable.exceptions import RestorableError
from restorable.logs import backup_log
from restorable.repository.manifest import iso, parse_iso, utcnow

if TYPE_CHECKING:
    from restorable.storage.protocol import Store

LEASE_SECONDS = 15 * 60
RENEW_SECONDS = 5 * 60


def write_lease(store: Store, key: str, database_id: str, backup_id: str, *, seconds: float = LEASE_SECONDS) -> None:
    expires = utcnow() + timedelta(seconds=seconds)
    body = {
        "database_id": database_id,
        "backup_id": backup_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "expires_at": iso(expires),
    }
    store.put_json(key, body)


def lease_expiry(store: Store, key: str) -> datetime | None:
    """When the lease at ``key`` expires; None when there is none or it cannot be read (then it protects nothing)."""
    try:
        return parse_iso(store.get_json(key)["expires_at"])
    except (RestorableError, KeyError, TypeError, ValueError, AttributeError):
        return None


@contextlib.contextmanager
def hold_lease(store: Store, key: str, database_id: str, backup_id: str) -> Iterator[None]:
    """Hold the lease while the block runs (renewed in the background); release it on every exit."""
    log = backup_log(__name__, database_id, backup_id)
    write_lease(store, key, database_id, backup_id)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(RENEW_SECONDS):
            try:
                write_lease(store, key, database_id, backup_id)
            except RestorableError as exc:  # the next renewal may succeed; the lease lasts 3 periods
                log.warning("lease not renewed", error=exc.message)

    renewer = threading.Thread(target=renew, name=f"lease-{backup_id}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=5)
        _release(store, key, database_id, backup_id)


def _release(store: Store, key: str, database_id: str, backup_id: str) -> None:
    try:
        store.delete_object(key)
    except RestorableError:
        # The backup writer may hold put-only rights: an expired lease releases as well as none.
        try:
            write_lease(store, key, database_id, backup_id, seconds=0)
        except RestorableError as exc:
            backup_log(__name__, database_id, backup_id).warning("lease not released", error=exc.message)
