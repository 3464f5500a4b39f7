"""Moving one stored object to a destination bucket, and reading it back.

Server-side when both stores are served by one endpoint and the destination's credentials may
read the source (``S3Store.copy_from``: no byte passes through here); streamed otherwise, from the
source's resumable read into the destination's multipart upload, so memory stays bounded by the
destination's part size times its parts in flight, whatever the object's size. Either way the
object gets the destination's own Object Lock and storage class, and the caller checks what was
stored by reading it back: a write's success says nothing about the bytes.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from restorable.storage.errors import AccessDenied, Unsupported

if TYPE_CHECKING:
    from restorable.storage.protocol import Store

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20
SERVER_SIDE = "server-side"
STREAMED = "streamed"


@dataclass(frozen=True)
class Transferred:
    """What the destination now holds for one object."""

    key: str
    version_id: str | None
    how: str


def transfer(
    source: Store,
    key: str,
    version_id: str | None,
    dest: Store,
    dest_key: str,
    *,
    size: int,
    lock_mode: str | None = None,
    retain_until: datetime | None = None,
    storage_class: str | None = None,
) -> Transferred:
    """Copy ``key`` (that version) from ``source`` to ``dest_key`` in ``dest``; server-side when possible."""
    copy_from = getattr(dest, "copy_from", None)
    same_endpoint = getattr(dest, "same_endpoint", None)
    if copy_from is not None and same_endpoint is not None and same_endpoint(source):
        try:
            result = copy_from(
                source.bucket,
                key,
                dest_key,
                size=size,
                version_id=version_id,
                lock_mode=lock_mode,
                retain_until=retain_until,
                storage_class=storage_class,
            )
            _hold_retention(dest, dest_key, result.version_id, lock_mode, retain_until)
            return Transferred(dest_key, result.version_id, SERVER_SIDE)
        except (AccessDenied, Unsupported) as exc:
            # The destination's credentials may not read the primary: stream with each side's own.
            log.info("server-side copy refused, streaming instead key=%s error=%s", key, exc.message)
    body = source.open_read(key, version_id=version_id)
    try:
        with dest.multipart_upload(
            dest_key, lock_mode=lock_mode, retain_until=retain_until, storage_class=storage_class
        ) as upload:
            while chunk := body.read(READ_SIZE):
                upload.write(chunk)
    finally:
        body.close()
    assert upload.result is not None
    return Transferred(dest_key, upload.result.version_id, STREAMED)


def _hold_retention(dest: Store, key: str, version_id: str | None, mode: str | None, until: datetime | None) -> None:
    """Set the retention a server-side copy was asked for when the store dropped it (SeaweedFS does)."""
    if mode is None or until is None:
        return
    held = dest.get_retention(key, version_id=version_id)
    if held is None or held[1] < until.replace(microsecond=0):
        dest.set_retention(key, mode, until, version_id=version_id)


def read_back(store: Store, key: str, version_id: str | None) -> tuple[str, int]:
    """(sha256, bytes) of the stored object, read in full from ``store``."""
    digest = hashlib.sha256()
    size = 0
    body = store.open_read(key, version_id=version_id)
    try:
        while chunk := body.read(READ_SIZE):
            digest.update(chunk)
            size += len(chunk)
    finally:
        body.close()
    return digest.hexdigest(), size
