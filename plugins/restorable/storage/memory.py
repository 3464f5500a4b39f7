"""An in-memory ``Store`` for unit tests: a versioned bucket in a dict, with S3's rules that the core relies on.

What it keeps like S3 (and ``tests/integration/storage/test_contract.py`` checks against a real
SeaweedFS): every put makes a new version and a plain delete leaves a delete marker;
``if_none_match`` refuses a key that exists; listings are current objects in key order;
retention and legal holds refuse deleting a version (``ObjectLocked``) but not a delete marker;
a multipart upload is listed while it runs, and is gone (with nothing stored) when its block
fails; checksums are S3's SHA-256 (a multipart object's is the composite over its parts, split
by ``part_size_for`` as ``S3Store`` splits them).

What it does not model: storage-class pricing, lifecycle rules acting on objects, eventual
consistency. Bucket settings are bookkeeping for the audit. Operations named (by their S3
name, e.g. ``"GetBucketEncryption"``) in ``unsupported`` or ``denied`` raise ``Unsupported`` or
``AccessDenied``, so failure paths can be tested without a server.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import itertools
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from restorable.exceptions import IntegrityError, NotFound, RestorableError, StorageError
from restorable.storage.errors import AccessDenied, InvalidBucketState, ObjectExists, ObjectLocked, Unsupported
from restorable.storage.s3.limits import S3_MAX_PART_SIZE, S3_MAX_PARTS, S3_MIN_PART_SIZE
from restorable.storage.s3.object_lock import lock_args
from restorable.storage.types import ObjectInfo, PendingUpload, UploadResult, VersionInfo


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@dataclass
class _Version:
    version_id: str
    #: None: a delete marker.
    data: bytes | None
    last_modified: datetime
    checksum: str = ""
    parts: int = 1
    content_type: str = "application/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    lock_mode: str | None = None
    retain_until: datetime | None = None
    legal_hold: bool = False

    @property
    def etag(self) -> str:
        return hashlib.md5(self.data or b"", usedforsecurity=False).hexdigest()


class MemoryWriter:
    """What ``MemoryStore.multipart_upload`` yields: collects the stream; ``result`` is set on a clean exit."""

    def __init__(self, key: str, upload_id: str) -> None:
        self.key = key
        self.upload_id = upload_id
        self.result: UploadResult | None = None
        self.bytes_written = 0
        self._buffer = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.result is not None:
            raise ValueError(f"write to {self.key} after the upload finished")
        view = memoryview(data).cast("B")
        self._buffer += view
        self.bytes_written += len(view)
        return len(view)

    def flush(self) -> None:
        pass


class _MemoryBody(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)
        self.size = len(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


class MemoryStore:
    """One versioned bucket held in memory. ``clock`` gives "now" (for retention and listings)."""

    def __init__(
        self,
        bucket: str = "memory",
        *,
        part_size: int = S3_MIN_PART_SIZE,
        max_parts: int = S3_MAX_PARTS,
        versioning: bool = True,
        object_lock: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.bucket = bucket
        self.part_size = part_size
        self.max_parts = max_parts
        self.clock = clock
        self.unsupported: set[str] = set()
        self.denied: set[str] = set()
        self.versioning: dict[str, Any] = {"Status": "Enabled"} if versioning else {}
        self.object_lock: dict[str, Any] | None = {"ObjectLockEnabled": "Enabled"} if object_lock else None
        self.encryption: dict[str, Any] | None = None
        self.lifecycle_rules: list[dict[str, Any]] | None = None
        self._versions: dict[str, list[_Version]] = {}
        self._uploads: dict[str, PendingUpload] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"MemoryStore(bucket={self.bucket!r})"

    def url(self, key: str) -> str:
        return f"memory://{self.bucket}/{key}"

    # -- plumbing -----------------------------------------------------------------------
    def _check(self, op: str, key: str | None = None) -> None:
        where = self.url(key) if key else f"memory://{self.bucket}"
        if op in self.unsupported:
            raise Unsupported(f"{op} on {where} failed: not implemented", code="NotImplemented")
        if op in self.denied:
            raise AccessDenied(f"{op} on {where} failed: access denied", code="AccessDenied")

    def _new_version_id(self) -> str:
        if self.versioning.get("Status") != "Enabled":
            return "null"
        return f"v{next(self._ids):08d}"

    def _add(self, key: str, version: _Version) -> None:
        versions = self._versions.setdefault(key, [])
        if version.version_id == "null":
            versions[:] = [v for v in versions if v.version_id != "null"]
        versions.append(version)

    def _current(self, key: str) -> _Version | None:
        versions = self._versions.get(key) or []
        return versions[-1] if versions and versions[-1].data is not None else None

    def _version(self, key: str, version_id: str | None) -> _Version:
        if version_id is None:
            found = self._current(key)
        else:
            found = next((v for v in self._versions.get(key, []) if v.version_id == version_id), None)
        if found is None or found.data is None:
            raise NotFound(f"{self.url(key)} does not exist", hint="Check the backup id and the prefix")
        return found

    def _store(self, key: str, data: bytes, checksum: str, parts: int, **fields: Any) -> UploadResult:
        version = _Version(self._new_version_id(), data, self.clock(), checksum, parts, **fields)
        with self._lock:
            self._add(key, version)
        return UploadResult(key, len(data), parts, f'"{version.etag}"', version.version_id, checksum)

    @staticmethod
    def _lock_fields(mode: str | None, until: datetime | None) -> dict[str, Any]:
        lock = lock_args(mode, until)
        return {"lock_mode": lock.get("ObjectLockMode"), "retain_until": lock.get("ObjectLockRetainUntilDate")}

    # -- writing ------------------------------------------------------------------------
    def part_size_for(self, part_number: int) -> int:
        """The same growth as ``S3Store.part_size_for``, so multipart checksums match S3's."""
        step = max(1, self.max_parts // 10)
        return min(S3_MAX_PART_SIZE, self.part_size << ((part_number - 1) // step))

    @contextlib.contextmanager
    def multipart_upload(
        self,
        key: str,
        *,
        lock_mode: str | None = None,
        retain_until: datetime | None = None,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
    ) -> Iterator[MemoryWriter]:
        """Collect a stream; store it on a clean exit. On an exception nothing is stored and, as
        ``S3Store`` does, a ``RestorableError`` keeps its type and anything else becomes a ``StorageError``."""
        self._check("CreateMultipartUpload", key)
        lock = self._lock_fields(lock_mode, retain_until)
        writer = MemoryWriter(key, f"upload-{next(self._ids)}")
        with self._lock:
            self._uploads[writer.upload_id] = PendingUpload(key, writer.upload_id, self.clock())
        try:
            yield writer
            with self._lock:
                if self._uploads.pop(writer.upload_id, None) is None:
                    raise StorageError(f"upload {writer.upload_id} of {self.url(key)} was aborted meanwhile")
            data = bytes(writer._buffer)
            digests, number, start = [], 1, 0
            while start < len(data) or number == 1:
                size = self.part_size_for(number)
                digests.append(hashlib.sha256(data[start : start + size]).digest())
                start, number = start + size, number + 1
            checksum = f"{base64.b64encode(hashlib.sha256(b''.join(digests)).digest()).decode()}-{len(digests)}"
            fields = {"content_type": content_type, "metadata": dict(metadata or {}), **lock}
            if storage_class:
                fields["storage_class"] = storage_class
            writer.result = self._store(key, data, checksum, len(digests), **fields)
        except BaseException as exc:
            with self._lock:
                self._uploads.pop(writer.upload_id, None)
            if isinstance(exc, RestorableError):
                exc.message = f"{exc.message} (upload of {self.url(key)} aborted)"
                exc.args = (str(exc),)
                raise
            if not isinstance(exc, Exception):
                raise
            raise StorageError(f"upload to {self.url(key)} failed and was aborted: {exc}") from exc

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        lock_mode: str | None = None,
        retain_until: datetime | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> UploadResult:
        self._check("PutObject", key)
        lock = self._lock_fields(lock_mode, retain_until)
        data = bytes(data)
        with self._lock:
            if if_none_match and self._current(key) is not None:
                raise ObjectExists(
                    f"{self.url(key)} already exists (the write was conditional: If-None-Match)",
                    hint="Another run wrote this key first; it was not overwritten",
                )
            fields = {"content_type": content_type or "application/octet-stream", **lock}
            return self._store(key, data, _sha256_b64(data), 1, metadata=dict(metadata or {}), **fields)

    def put_json(self, key: str, obj: Any, **kwargs: Any) -> UploadResult:
        data = json.dumps(obj, indent=2, sort_keys=True, default=str).encode() + b"\n"
        kwargs.setdefault("content_type", "application/json")
        return self.put_bytes(key, data, **kwargs)

    # -- reading ------------------------------------------------------------------------
    def get_bytes(self, key: str, *, version_id: str | None = None) -> bytes:
        self._check("GetObject", key)
        return bytes(self._version(key, version_id).data or b"")

    def get_json(self, key: str, *, version_id: str | None = None) -> Any:
        try:
            return json.loads(self.get_bytes(key, version_id=version_id))
        except ValueError as exc:
            raise IntegrityError(
                f"{self.url(key)} is not valid JSON: {exc}",
                hint="The object is damaged or was not written by Restorable",
            ) from None

    def open_read(self, key: str, *, version_id: str | None = None) -> io.RawIOBase:
        return _MemoryBody(self.get_bytes(key, version_id=version_id))

    def head(self, key: str, *, version_id: str | None = None, checksum: bool = True) -> dict[str, Any] | None:
        """A HeadObject-shaped answer (the fields the core reads), or None when absent."""
        self._check("HeadObject", key)
        try:
            version = self._version(key, version_id)
        except NotFound:
            return None
        head: dict[str, Any] = {
            "ContentLength": len(version.data or b""),
            "ETag": f'"{version.etag}"',
            "VersionId": version.version_id,
            "LastModified": version.last_modified,
            "ContentType": version.content_type,
            "Metadata": dict(version.metadata),
        }
        if checksum:
            head["ChecksumSHA256"] = version.checksum
        if version.storage_class != "STANDARD":
            head["StorageClass"] = version.storage_class  # S3 names only non-default classes
        if version.lock_mode:
            head["ObjectLockMode"] = version.lock_mode
            head["ObjectLockRetainUntilDate"] = version.retain_until
        if version.legal_hold:
            head["ObjectLockLegalHoldStatus"] = "ON"
        return head

    def exists(self, key: str) -> bool:
        return self.head(key, checksum=False) is not None

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every current object under ``prefix``, in key order."""
        self._check("ListObjectsV2", prefix)
        with self._lock:
            current = [(key, self._current(key)) for key in sorted(self._versions) if key.startswith(prefix)]
        for key, version in current:
            if version is not None:
                size = len(version.data or b"")
                yield ObjectInfo(key, size, version.last_modified, version.storage_class, version.etag)

    def list_versions(self, key: str) -> list[VersionInfo]:
        """Every version and delete marker of exactly ``key``, oldest first."""
        self._check("ListObjectVersions", key)
        with self._lock:
            versions = list(self._versions.get(key, []))
        return [
            VersionInfo(
                key=key,
                version_id=v.version_id,
                last_modified=v.last_modified,
                size=len(v.data or b""),
                is_latest=i == len(versions) - 1,
                delete_marker=v.data is None,
            )
            for i, v in enumerate(versions)
        ]

    # -- deleting and Object Lock -------------------------------------------------------
    def delete_object(self, key: str, version_id: str | None = None) -> dict[str, Any]:
        """A delete marker (versioned bucket, no ``version_id``) or the removal of one version."""
        self._check("DeleteObject", key)
        with self._lock:
            if version_id is None:
                if self.versioning.get("Status") == "Enabled":
                    marker = _Version(self._new_version_id(), None, self.clock())
                    self._versions.setdefault(key, []).append(marker)
                    return {"DeleteMarker": True, "VersionId": marker.version_id}
                version_id = "null"
            versions = self._versions.get(key, [])
            found = next((v for v in versions if v.version_id == version_id), None)
            if found is None:
                return {}
            locked = self._lock_refusal(key, found)
            if locked is not None:
                raise locked
            versions.remove(found)
            if not versions:
                del self._versions[key]
            return {"VersionId": version_id, **({"DeleteMarker": True} if found.data is None else {})}

    def _lock_refusal(self, key: str, version: _Version) -> ObjectLocked | None:
        active = version.retain_until is not None and version.retain_until > self.clock()
        if version.data is None or not (active or version.legal_hold):
            return None
        reasons = [f"{version.lock_mode} retention until {version.retain_until.isoformat()}"] if active else []
        reasons += ["a legal hold"] if version.legal_hold else []
        return ObjectLocked(
            f"{self.url(key)} (version {version.version_id}) is locked by {' and '.join(reasons)}",
            key=key,
            retain_until=version.retain_until if active else None,
            mode=version.lock_mode if active else None,
            legal_hold=version.legal_hold,
            hint="Wait until the retention ends (or lift the legal hold); locked backups cannot be deleted early",
        )

    def delete_all_versions(self, key: str) -> int:
        """Delete every version and delete marker of ``key``; ObjectLocked (for the first) if any is locked."""
        deleted, locked = 0, []
        for version in list(self._versions.get(key, [])):
            try:
                self.delete_object(key, version.version_id)
                deleted += 1
            except ObjectLocked as exc:
                locked.append(exc)
        if locked:
            first = locked[0]
            first.message = (
                f"{len(locked)} version(s) of {self.url(key)} are locked; {deleted} other version(s) deleted. "
                + first.message
            )
            raise first
        return deleted

    def list_multipart_uploads(self, prefix: str = "") -> list[PendingUpload]:
        self._check("ListMultipartUploads", prefix)
        with self._lock:
            return [u for u in self._uploads.values() if u.key.startswith(prefix)]

    def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        self._check("AbortMultipartUpload", key)
        with self._lock:
            self._uploads.pop(upload_id, None)

    def _lockable(self, op: str, key: str, version_id: str | None) -> _Version:
        self._check(op, key)
        if (self.object_lock or {}).get("ObjectLockEnabled") != "Enabled":
            raise StorageError(f"{op} on {self.url(key)} failed: the bucket has no Object Lock")
        return self._version(key, version_id)

    def set_legal_hold(self, key: str, on: bool, *, version_id: str | None = None) -> None:
        self._lockable("PutObjectLegalHold", key, version_id).legal_hold = on

    def get_legal_hold(self, key: str, *, version_id: str | None = None) -> bool:
        return self._lockable("GetObjectLegalHold", key, version_id).legal_hold

    def set_retention(
        self, key: str, mode: str, until: datetime, *, version_id: str | None = None, bypass_governance: bool = False
    ) -> None:
        """Set or extend retention; shortening it (or leaving COMPLIANCE) needs GOVERNANCE and the bypass."""
        fields = self._lock_fields(mode, until)
        version = self._lockable("PutObjectRetention", key, version_id)
        if version.retain_until is not None and version.retain_until > self.clock():
            weaker = fields["retain_until"] < version.retain_until or fields["lock_mode"] != version.lock_mode
            if weaker and (version.lock_mode == "COMPLIANCE" or not bypass_governance):
                raise AccessDenied(
                    f"PutObjectRetention on {self.url(key)} failed: the retention may only be extended",
                    code="AccessDenied",
                )
        version.lock_mode, version.retain_until = fields["lock_mode"], fields["retain_until"]

    def get_retention(self, key: str, *, version_id: str | None = None) -> tuple[str, datetime] | None:
        version = self._lockable("GetObjectRetention", key, version_id)
        if version.lock_mode is None or version.retain_until is None:
            return None
        return version.lock_mode, version.retain_until

    def copy_storage_class(self, key: str, storage_class: str) -> str | None:
        """A new current version in ``storage_class``, keeping retention and legal hold; its version id."""
        self._check("CopyObject", key)
        with self._lock:
            source = self._current(key)
            if source is None:
                raise NotFound(f"{self.url(key)} does not exist (copy to {storage_class})")
            copy = replace(
                source, version_id=self._new_version_id(), last_modified=self.clock(), storage_class=storage_class
            )
            self._add(key, copy)
        return copy.version_id

    # -- bucket-level settings ----------------------------------------------------------
    def head_bucket(self) -> None:
        self._check("HeadBucket")

    def get_bucket_versioning(self) -> dict[str, Any]:
        self._check("GetBucketVersioning")
        return dict(self.versioning)

    def put_bucket_versioning(self, status: str) -> None:
        self._check("PutBucketVersioning")
        self.versioning = {"Status": status}

    def get_object_lock_configuration(self) -> dict[str, Any] | None:
        self._check("GetObjectLockConfiguration")
        return None if self.object_lock is None else json.loads(json.dumps(self.object_lock))

    def put_object_lock_configuration(self, configuration: Mapping[str, Any]) -> None:
        self._check("PutObjectLockConfiguration")
        if self.object_lock is None and self.versioning.get("Status") != "Enabled":
            # As S3 and SeaweedFS answer: Object Lock needs versioning first.
            raise InvalidBucketState(
                f"PutObjectLockConfiguration on memory://{self.bucket} failed: versioning is not enabled",
                code="InvalidBucketState",
            )
        self.object_lock = json.loads(json.dumps(dict(configuration)))

    def get_bucket_encryption(self) -> dict[str, Any] | None:
        self._check("GetBucketEncryption")
        return None if self.encryption is None else json.loads(json.dumps(self.encryption))

    def put_bucket_encryption(self, configuration: Mapping[str, Any]) -> None:
        self._check("PutBucketEncryption")
        self.encryption = json.loads(json.dumps(dict(configuration)))

    def get_bucket_lifecycle_rules(self) -> list[dict[str, Any]] | None:
        self._check("GetBucketLifecycleConfiguration")
        return None if self.lifecycle_rules is None else json.loads(json.dumps(self.lifecycle_rules))

    def put_bucket_lifecycle_rules(self, rules: Sequence[Mapping[str, Any]]) -> None:
        self._check("PutBucketLifecycleConfiguration")
        self.lifecycle_rules = json.loads(json.dumps([dict(r) for r in rules]))
