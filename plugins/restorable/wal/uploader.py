"""Upload one spooled WAL file: encode, conditional PUT, read back; decide whether it may go.

The read-back checks the *stored bytes*: it GETs the version just written and compares its
sha256 and length with what the encoder produced. It cannot decrypt, on purpose: the archiver
holds only the age recipients (public keys), so a compromised database host cannot read the
archive. The plain sha256 recorded in the metadata is what every restore checks after
decrypting (``objects.read_wal_file``).

Outcomes: ``archived`` (written and read back), ``already`` (the same name was archived with
the same sha256 earlier, e.g. before a SIGKILL; the spool file may go), ``conflict`` (the same
name holds different content: an alarm, never an overwrite; the spool file stays).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from restorable.exceptions import IntegrityError, StorageError
from restorable.repository.layout import Layout
from restorable.repository.manifest import utcnow
from restorable.storage.errors import ObjectExists
from restorable.storage.protocol import Store
from restorable.wal.names import kind_of
from restorable.wal.objects import archived_version, encode_wal_file, stored_digest_matches, wal_object_metadata

log = logging.getLogger(__name__)

ARCHIVED = "archived"
ALREADY = "already"
CONFLICT = "conflict"


@dataclass(frozen=True)
class UploadSettings:
    database_id: str
    recipients: tuple[str, ...]
    level: int = 1
    lock_mode: str | None = None
    lock_days: int | None = None

    def retain_until(self) -> datetime | None:
        return utcnow() + timedelta(days=self.lock_days) if self.lock_mode and self.lock_days else None


@dataclass(frozen=True)
class UploadOutcome:
    name: str
    status: str
    key: str
    plain_size: int
    plain_sha256: str
    stored_size: int = 0
    version_id: str | None = None
    seconds: float = 0.0
    #: For a conflict: the sha256 the archive already holds under this name.
    found_sha256: str | None = None
    #: The spool file's mtime when it was read (a growing .partial is uploaded again once it changed).
    source_mtime: float | None = None


def upload_wal_file(store: Store, layout: Layout, settings: UploadSettings, path: Path) -> UploadOutcome:
    """Archive one file from the spool; raises StorageError (retry later) or IntegrityError."""
    started = time.monotonic()
    name = path.name
    mtime = path.stat().st_mtime
    data = path.read_bytes()
    plain_sha256 = hashlib.sha256(data).hexdigest()
    key = layout.wal_key(settings.database_id, name)
    partial = kind_of(name) == "partial"
    encoded = encode_wal_file(data, recipients=settings.recipients, level=settings.level)
    assert encoded.plain_sha256 == plain_sha256
    try:
        result = store.put_bytes(
            key,
            encoded.body,
            # A .partial grows in place; every other name is written once, never overwritten.
            if_none_match=not partial,
            lock_mode=settings.lock_mode if not partial else None,
            retain_until=settings.retain_until() if not partial else None,
            metadata=wal_object_metadata(plain_sha256, len(data)),
        )
    except ObjectExists:
        return _compare_with_archived(store, layout, settings, name, plain_sha256, len(data), started, mtime)
    stored = store.get_bytes(key, version_id=result.version_id)
    if len(stored) != len(encoded.body) or hashlib.sha256(stored).hexdigest() != encoded.stored_sha256:
        # Our own fresh version reads back wrong: remove it so a retry can write it again.
        try:
            store.delete_object(key, result.version_id)
        except StorageError as exc:
            raise IntegrityError(
                f"{store.url(key)} read back differently from what was written and could not be removed: {exc}",
                hint="Inspect the object; the spool file is kept",
            ) from None
        raise StorageError(f"{store.url(key)} read back differently from what was written; removed, will retry")
    return UploadOutcome(
        name,
        ARCHIVED,
        key,
        len(data),
        plain_sha256,
        len(encoded.body),
        result.version_id,
        round(time.monotonic() - started, 3),
        source_mtime=mtime,
    )


def _compare_with_archived(
    store: Store,
    layout: Layout,
    settings: UploadSettings,
    name: str,
    sha: str,
    size: int,
    started: float,
    mtime: float,
) -> UploadOutcome:
    archived = archived_version(store, layout, settings.database_id, name)
    key = layout.wal_key(settings.database_id, name)
    if archived is None:
        # Deleted between our PUT and this look: the next attempt writes it.
        raise StorageError(f"{store.url(key)} existed and then vanished; will retry")
    seconds = round(time.monotonic() - started, 3)
    if archived.plain_sha256 == sha and archived.plain_size in (None, size):
        # Same content archived before (a restart after SIGKILL): check its stored bytes too.
        body = store.get_bytes(key, version_id=archived.version_id)
        if stored_digest_matches(body, archived) is False:
            raise IntegrityError(
                f"{store.url(key)} is archived with the right sha256 but its stored bytes do not match S3's checksum",
                hint="The object was damaged in the bucket; inspect it (the spool file is kept)",
            )
        return UploadOutcome(
            name, ALREADY, key, size, sha, archived.stored_size, archived.version_id, seconds, source_mtime=mtime
        )
    return UploadOutcome(
        name, CONFLICT, key, size, sha, archived.stored_size, archived.version_id, seconds, archived.plain_sha256
    )
