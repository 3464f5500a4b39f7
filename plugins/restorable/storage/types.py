"""What stores return: object listings, upload results, pending uploads. Driver-neutral."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime
    storage_class: str
    etag: str


@dataclass(frozen=True)
class UploadResult:
    """What a completed upload stored. ``checksum`` is S3's ChecksumSHA256 (base64; a
    multipart object's is the composite ``<sha256 of the part digests>-<parts>``)."""

    key: str
    size: int
    parts: int
    etag: str
    version_id: str | None
    checksum: str
    checksum_algorithm: str = "SHA256"


@dataclass(frozen=True)
class PendingUpload:
    """A multipart upload that was started and neither completed nor aborted."""

    key: str
    upload_id: str
    initiated: datetime | None


@dataclass(frozen=True)
class VersionInfo:
    """One version (or delete marker) of exactly one key; ``list_versions`` gives them oldest first."""

    key: str
    version_id: str
    last_modified: datetime
    size: int
    is_latest: bool
    delete_marker: bool = False
