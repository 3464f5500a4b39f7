"""S3 (and S3-compatible) object storage: the ``S3Store`` core, and where each other concern lives.

Everything Restorable stores goes through ``S3Store``. Each small object and each multipart
part carries a SHA-256 checksum computed here, so the server rejects bytes damaged in transit;
transient failures (connection errors, 5xx but 501, throttling) are retried by ``_call`` with
exponential backoff and full jitter; every boto error becomes a Restorable error (``NotFound``
for a missing key, ``ObjectExists``, ``AccessDenied``, ``Unsupported``... else ``StorageError``)
that names bucket, key and what to do.

This module holds small objects, reads, listings and deletes; the other concerns are mixed in
from their own modules: ``multipart`` (streaming uploads), ``download`` (resumable reads),
``object_lock``, ``tiering`` (storage classes), ``replicate`` (server-side copies from another bucket)
and ``bucket`` (bucket-level settings). Clients
built by ``client.s3_client_from_connection`` leave retrying to ``S3Store`` (botocore's own
retries are off), so one knob, ``max_attempts``, bounds how long a dead endpoint is tried.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from restorable.exceptions import ConfigError, IntegrityError, NotFound, RestorableError, StorageError
from restorable.storage.errors import AccessDenied, InvalidBucketState, ObjectExists, ObjectLocked, Unsupported
from restorable.storage.s3.bucket import BucketSettingsMixin
from restorable.storage.s3.download import open_resumable
from restorable.storage.s3.failures import (
    INVALID_CREDENTIALS_CODES,
    NO_LOCK_CONFIG_CODES,
    NOT_FOUND_CODES,
    backoff,
    error_code,
    is_transient,
    is_unsupported,
    short,
)
from restorable.storage.s3.limits import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_PART_SIZE,
    S3_MAX_COPY_SIZE,
    S3_MAX_PART_SIZE,
    S3_MAX_PARTS,
    S3_MIN_PART_SIZE,
    MiB,
)
from restorable.storage.s3.multipart import MultipartUploadMixin
from restorable.storage.s3.object_lock import ObjectLockMixin, lock_args
from restorable.storage.s3.replicate import ServerSideCopyMixin
from restorable.storage.s3.tiering import StorageClassMixin
from restorable.storage.types import ObjectInfo, UploadResult, VersionInfo

log = logging.getLogger(__name__)

T = TypeVar("T")


class S3Store(MultipartUploadMixin, ObjectLockMixin, StorageClassMixin, ServerSideCopyMixin, BucketSettingsMixin):
    """One bucket, with retries and readable errors around every call.

    ``part_size`` is the first multipart part's size (at least 5 MiB); ``max_in_flight``
    parts are uploaded concurrently and bound the memory a stream uses; ``max_attempts``
    and ``backoff_base`` (seconds) govern retries of transient failures; ``max_parts``
    (S3's 10,000 unless testing) drives how fast parts grow for streams of unknown length.
    """

    #: Parts smaller than this are refused (S3 and SeaweedFS reject them at completion).
    min_part_size = S3_MIN_PART_SIZE

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        max_parts: int = S3_MAX_PARTS,
    ) -> None:
        if not bucket:
            raise ConfigError("no bucket given for object storage", hint="Set storage.bucket in the config")
        if part_size < self.min_part_size or part_size > S3_MAX_PART_SIZE:
            raise ConfigError(
                f"part_size {part_size} is outside S3's limits",
                hint=f"Use between {self.min_part_size // MiB} MiB and 5 GiB (16 MiB is a good default)",
            )
        if max_in_flight < 1 or max_attempts < 1 or not 1 <= max_parts <= S3_MAX_PARTS:
            raise ConfigError(
                "max_in_flight and max_attempts must be at least 1, max_parts between 1 and 10000",
            )
        self.client = client
        self.bucket = bucket
        self.part_size = part_size
        self.max_in_flight = max_in_flight
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.max_parts = max_parts
        self.copy_part_threshold = S3_MAX_COPY_SIZE

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r})"

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # -- plumbing ---------------------------------------------------------------------
    def _call(self, op: str, key: str | None, fn: Callable[[], T], *, hint: str | None = None) -> T:
        """Run one S3 request with retries on transient errors; map failures to our errors."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except Exception as exc:
                if attempt < self.max_attempts and is_transient(exc):
                    delay = backoff(attempt, self.backoff_base)
                    log.warning(
                        "s3 retry op=%s bucket=%s key=%s attempt=%d/%d delay=%.2fs error=%s",
                        op,
                        self.bucket,
                        key,
                        attempt,
                        self.max_attempts,
                        delay,
                        short(exc),
                    )
                    time.sleep(delay)
                    continue
                raise self._translate(exc, op, key, attempts=attempt, hint=hint) from exc

    def _translate(
        self, exc: BaseException, op: str, key: str | None, *, attempts: int = 1, hint: str | None = None
    ) -> RestorableError:
        if isinstance(exc, RestorableError):
            return exc
        code, status = error_code(exc)
        where = self.url(key) if key else f"s3://{self.bucket}"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        text = f"S3 {op} on {where} failed{tries}: {short(exc)}"
        if code in NO_LOCK_CONFIG_CODES:
            return StorageError(text, hint=hint or "The object (or bucket) has no Object Lock setting of that kind")
        if code in NOT_FOUND_CODES or (status == 404 and code not in ("NoSuchBucket", "NoSuchUpload")):
            return NotFound(f"{where} does not exist ({op})", hint=hint or "Check the backup id and the prefix")
        if code == "NoSuchBucket":
            return StorageError(text, hint="Check storage.bucket; create the bucket (with Object Lock if wanted)")
        if code in INVALID_CREDENTIALS_CODES:
            err = StorageError(text, hint="Check the aws connection's access key id and secret (login/password)")
            err.permanent = True
            return err
        if code == "AccessDenied" or status == 403:
            return AccessDenied(
                text,
                code=code or str(status),
                hint=hint or "Check the credentials' permissions on this bucket; Object Lock may also refuse it",
            )
        if is_unsupported(exc):
            return Unsupported(text, code=code or str(status), hint=hint or "This store does not implement it")
        if code == "InvalidBucketState":
            return InvalidBucketState(text, code=code, hint=hint)
        if op == "PutObject" and (code == "PreconditionFailed" or status == 412):
            return ObjectExists(
                f"{where} already exists (the write was conditional: If-None-Match)",
                hint=hint or "Another run wrote this key first; it was not overwritten",
            )
        if code == "PreconditionFailed" or status == 412:
            return StorageError(f"{text} (the object changed while it was being read)", hint=hint)
        if is_transient(exc):
            return StorageError(text, hint=hint or "Is the S3 endpoint reachable? The operation can be retried")
        return StorageError(text, hint=hint)

    # -- small objects ------------------------------------------------------------------
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
        """PUT a small object with a SHA-256 checksum. ``if_none_match`` refuses to overwrite
        (raises ObjectExists), which makes retried writes of the same key safe. ``metadata`` is
        S3 user metadata (``x-amz-meta-*``), read back by ``head()["Metadata"]``."""
        data = bytes(data)
        digest = hashlib.sha256(data).digest()
        checksum = base64.b64encode(digest).decode()
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": data,
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": checksum,
            **lock_args(lock_mode, retain_until),
        }
        if content_type:
            params["ContentType"] = content_type
        if metadata:
            params["Metadata"] = dict(metadata)
        if if_none_match:
            params["IfNoneMatch"] = "*"
        attempts = 0

        def put() -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            return self.client.put_object(**params)

        try:
            response = self._call("PutObject", key, put)
        except ObjectExists:
            # A retry after a lost response finds our own first write: that is success.
            if attempts > 1:
                head = self.head(key, checksum=True)
                if head and head.get("ChecksumSHA256") == checksum:
                    return UploadResult(key, len(data), 1, head.get("ETag", ""), head.get("VersionId"), checksum)
            raise
        returned = response.get("ChecksumSHA256")
        if returned and returned != checksum:
            raise IntegrityError(
                f"S3 stored {self.url(key)} with checksum {returned}, expected {checksum}",
                hint="The store altered the object; check the endpoint and retry",
            )
        return UploadResult(key, len(data), 1, response.get("ETag", ""), response.get("VersionId"), checksum)

    def put_json(self, key: str, obj: Any, **kwargs: Any) -> UploadResult:
        """``put_bytes`` of ``obj`` as indented, key-sorted UTF-8 JSON."""
        data = json.dumps(obj, indent=2, sort_keys=True, default=str).encode() + b"\n"
        kwargs.setdefault("content_type", "application/json")
        return self.put_bytes(key, data, **kwargs)

    def get_bytes(self, key: str, *, version_id: str | None = None) -> bytes:
        with self.open_read(key, version_id=version_id) as body:
            return body.read()

    def get_json(self, key: str, *, version_id: str | None = None) -> Any:
        data = self.get_bytes(key, version_id=version_id)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise IntegrityError(
                f"{self.url(key)} is not valid JSON: {exc}",
                hint="The object is damaged or was not written by Restorable",
            ) from None

    def open_read(self, key: str, *, version_id: str | None = None) -> io.RawIOBase:
        """A binary stream of the object. Connection failures (at the start or mid-body) are
        retried, resuming with a Range request pinned to the same version and ETag."""
        return open_resumable(self, key, version_id)

    def head(self, key: str, *, version_id: str | None = None, checksum: bool = True) -> dict[str, Any] | None:
        """The object's metadata (HeadObject response without ResponseMetadata), or None when absent."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        if checksum:
            params["ChecksumMode"] = "ENABLED"
        try:
            response = self._call("HeadObject", key, lambda: self.client.head_object(**params))
        except NotFound:
            return None
        response.pop("ResponseMetadata", None)
        return response

    def exists(self, key: str) -> bool:
        return self.head(key, checksum=False) is not None

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every current object under ``prefix``, in key order."""
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            page = self._call("ListObjectsV2", prefix, lambda p=params: self.client.list_objects_v2(**p))
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"],
                    size=int(item.get("Size", 0)),
                    last_modified=item.get("LastModified"),
                    storage_class=item.get("StorageClass") or "STANDARD",
                    etag=(item.get("ETag") or "").strip('"'),
                )
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    def list_versions(self, key: str) -> list[VersionInfo]:
        """Every version and delete marker of exactly ``key``, oldest first (empty when none)."""
        found: list[VersionInfo] = []
        key_marker: str | None = None
        version_marker: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": key}
            if key_marker:
                params["KeyMarker"] = key_marker
                if version_marker:
                    params["VersionIdMarker"] = version_marker
            page = self._call("ListObjectVersions", key, lambda p=params: self.client.list_object_versions(**p))
            for marker, items in ((False, page.get("Versions", [])), (True, page.get("DeleteMarkers", []))):
                for item in items:
                    if item.get("Key") == key:
                        found.append(
                            VersionInfo(
                                key=key,
                                version_id=item.get("VersionId") or "null",
                                last_modified=item.get("LastModified"),
                                size=int(item.get("Size", 0)),
                                is_latest=bool(item.get("IsLatest")),
                                delete_marker=marker,
                            )
                        )
            if not page.get("IsTruncated"):
                break
            key_marker = page.get("NextKeyMarker")
            version_marker = page.get("NextVersionIdMarker")
        # The latest sorts last whatever the clock resolution; the others by time, and within one
        # timestamp in reverse listing order (S3 lists a key's versions newest first).
        order = {id(v): i for i, v in enumerate(found)}
        found.sort(key=lambda v: (v.is_latest, v.last_modified, -order[id(v)]))
        return found

    # -- deleting ---------------------------------------------------------------------
    def delete_object(self, key: str, version_id: str | None = None) -> dict[str, Any]:
        """Delete a key (a delete marker on a versioned bucket) or one version of it.

        Raises ObjectLocked, with the retain-until date, when retention or a legal hold refuses.
        """
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        try:
            response = self._call("DeleteObject", key, lambda: self.client.delete_object(**params))
        except StorageError as exc:
            locked = self._lock_refusal(key, version_id, exc)
            if locked is not None:
                raise locked from exc
            raise
        response.pop("ResponseMetadata", None)
        log.info("s3 deleted bucket=%s key=%s version_id=%s", self.bucket, key, version_id or "-")
        return response

    def delete_all_versions(self, key: str) -> int:
        """Delete every version and delete marker of exactly ``key``; return how many were removed.

        Tries them all; if any is locked, raises ObjectLocked (for the first) afterwards.
        """
        deleted = 0
        locked: list[ObjectLocked] = []
        for version_id in self._versions_of(key):
            try:
                self.delete_object(key, version_id)
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

    def _versions_of(self, key: str) -> list[str]:
        versions: list[str] = []
        key_marker: str | None = None
        version_marker: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": key}
            if key_marker:
                params["KeyMarker"] = key_marker
                if version_marker:
                    params["VersionIdMarker"] = version_marker
            page = self._call("ListObjectVersions", key, lambda p=params: self.client.list_object_versions(**p))
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                if item.get("Key") == key:
                    versions.append(item.get("VersionId") or "null")
            if not page.get("IsTruncated"):
                return versions
            key_marker = page.get("NextKeyMarker")
            version_marker = page.get("NextVersionIdMarker")
