"""The object format of one archived WAL file, written by the archiver and read by every restore.

Body: the file's bytes → zstd → age (``restorable.stream.encode``), one small object per file
at ``Layout.wal_key``. User metadata: ``restorable-sha256`` (hex sha256 of the plain file),
``restorable-size`` (its size) and ``restorable-format`` (``restorable.wal/1``).

Which version is the archived one: the archiver writes every name but ``.partial`` once, with a
conditional PUT (If-None-Match), so on a versioned bucket the archived object is the *oldest*
version since the key was last deleted. A later version under the same name was written by
something else (a person, another tool, an attacker holding write access): ``archived_version``
reads past it and says so (``overwritten``), and ``read_wal_file`` checks the body it reads
against that version's own sha256. A ``.partial`` grows in place, so its newest version counts.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from typing import Any

from restorable.exceptions import IntegrityError, NotFound
from restorable.repository.layout import Layout
from restorable.storage.protocol import Store
from restorable.stream.decode import decode_stream
from restorable.stream.encode import encode_stream
from restorable.wal.names import kind_of

log = logging.getLogger(__name__)

WAL_FORMAT = "restorable.wal/1"
META_SHA256 = "restorable-sha256"
META_SIZE = "restorable-size"
META_FORMAT = "restorable-format"


def wal_object_metadata(plain_sha256: str, plain_size: int) -> dict[str, str]:
    """The S3 user metadata every archived WAL object carries."""
    return {META_SHA256: plain_sha256, META_SIZE: str(plain_size), META_FORMAT: WAL_FORMAT}


@dataclass(frozen=True)
class EncodedWal:
    body: bytes
    plain_sha256: str
    plain_size: int
    stored_sha256: str


class _Reader:
    """Only ``read``: ``encode_stream`` must not take a BytesIO for a file descriptor."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._buf.read(size)


def encode_wal_file(data: bytes, *, recipients: tuple[str, ...] | list[str], level: int = 1) -> EncodedWal:
    """zstd + age of one WAL file, in memory (a segment is 16 MiB; WAL compresses 13-35x)."""
    out = io.BytesIO()
    # One thread per file: the archiver runs several files side by side instead.
    digests = encode_stream(_Reader(data), out, recipients=recipients, level=level, threads=0)
    return EncodedWal(out.getvalue(), digests.plain_sha256, digests.plain_bytes, digests.stored_sha256)


@dataclass(frozen=True)
class ArchivedWal:
    """The archived version of one WAL file and what its metadata records."""

    key: str
    version_id: str | None
    plain_sha256: str | None
    plain_size: int | None
    stored_size: int
    #: S3's ChecksumSHA256 of the stored bytes (base64), when the store keeps one.
    stored_checksum: str | None
    #: Versions written after the archived one (never by the archiver, except for ``.partial``).
    overwritten: int = 0
    format: str | None = None


def archived_version(store: Store, layout: Layout, database_id: str, wal_file: str) -> ArchivedWal | None:
    """The archived object of ``wal_file`` (see the module docstring for which version), or None."""
    key = layout.wal_key(database_id, wal_file)
    versions = store.list_versions(key)
    # Only the versions since the last delete: a deleted file is not in the archive.
    last_marker = max((i for i, v in enumerate(versions) if v.delete_marker), default=-1)
    alive = [v for v in versions[last_marker + 1 :] if not v.delete_marker]
    if not alive:
        return None
    chosen = alive[-1] if kind_of(wal_file) == "partial" else alive[0]
    head = store.head(key, version_id=None if chosen.version_id == "null" else chosen.version_id)
    if head is None:
        return None
    meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    size = meta.get(META_SIZE)
    return ArchivedWal(
        key=key,
        version_id=head.get("VersionId") or None,
        plain_sha256=meta.get(META_SHA256),
        plain_size=int(size) if size and size.isdigit() else None,
        stored_size=int(head.get("ContentLength") or 0),
        stored_checksum=head.get("ChecksumSHA256"),
        overwritten=len(alive) - 1 if kind_of(wal_file) != "partial" else 0,
        format=meta.get(META_FORMAT),
    )


def stored_digest_matches(body: bytes, archived: ArchivedWal) -> bool | None:
    """Do the stored bytes match S3's own checksum of them? None when the store kept none."""
    if not archived.stored_checksum or "-" in archived.stored_checksum:
        return None
    import base64

    return base64.b64encode(hashlib.sha256(body).digest()).decode() == archived.stored_checksum


def read_wal_file(store: Store, layout: Layout, identity: str, database_id: str, wal_file: str) -> bytes:
    """The plain bytes of an archived WAL file, checked against its recorded sha256 and size.

    ``NotFound`` when the archive has no such file; ``IntegrityError`` when the body does not
    decrypt or does not match; ``StorageError`` when the bucket cannot be read.
    """
    archived = archived_version(store, layout, database_id, wal_file)
    if archived is None:
        where = store.url(layout.wal_key(database_id, wal_file))
        raise NotFound(f"{wal_file} is not in the WAL archive of {database_id} ({where})")
    return read_archived(store, archived, identity, wal_file)


def read_archived(store: Store, archived: ArchivedWal, identity: str, wal_file: str) -> bytes:
    """Read and check one archived version (``read_wal_file`` once the version is known)."""
    if archived.overwritten:
        log.warning(
            "wal object overwritten key=%s versions_after=%d: reading the archived (first) version %s",
            archived.key,
            archived.overwritten,
            archived.version_id,
        )
    if archived.format != WAL_FORMAT or not archived.plain_sha256:
        raise IntegrityError(
            f"{store.url(archived.key)} has no {META_SHA256} metadata of format {WAL_FORMAT}",
            hint="The object was not written by Restorable's archiver; do not replay it",
        )
    body = store.get_bytes(archived.key, version_id=archived.version_id)
    out = io.BytesIO()
    digests = decode_stream(io.BytesIO(body), out, identity=identity)
    data = out.getvalue()
    if digests.plain_sha256 != archived.plain_sha256 or (
        archived.plain_size is not None and digests.plain_bytes != archived.plain_size
    ):
        raise IntegrityError(
            f"{wal_file} from {store.url(archived.key)} decodes to sha256 {digests.plain_sha256} "
            f"({digests.plain_bytes} bytes); its metadata records {archived.plain_sha256} "
            f"({archived.plain_size} bytes)",
            hint="The archived WAL was altered; recovery must not replay it",
        )
    return data


def describe(archived: ArchivedWal) -> dict[str, Any]:
    return {
        "key": archived.key,
        "version_id": archived.version_id,
        "plain_sha256": archived.plain_sha256,
        "plain_size": archived.plain_size,
        "stored_size": archived.stored_size,
        "overwritten": archived.overwritten,
    }
