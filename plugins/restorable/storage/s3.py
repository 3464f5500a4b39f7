"""S3 (and S3-compatible) object storage: streaming multipart uploads, reads, Object Lock.

Everything Restorable stores goes through ``S3Store``: the one file to open for "how do we
talk to S3". Each part and each small object carries a SHA-256 checksum computed here, so
the server rejects bytes damaged in transit; transient failures (connection errors, 5xx,
throttling) are retried with exponential backoff and full jitter; every boto error becomes
a ``StorageError`` (``NotFound`` for a missing key) that names bucket, key and what to do.

Clients built by ``s3_client_from_connection`` leave retrying to ``S3Store`` (botocore's own
retries are off), so one knob, ``max_attempts``, bounds how long a dead endpoint is tried.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from restorable.connections import ConnectionInfo
from restorable.exceptions import ConfigError, IntegrityError, NotFound, RestorableError, StorageError

log = logging.getLogger(__name__)

MiB = 1 << 20
GiB = 1 << 30
#: S3's limits: every part but the last is at least 5 MiB, at most 5 GiB, and 10,000 parts.
S3_MIN_PART_SIZE = 5 * MiB
S3_MAX_PART_SIZE = 5 * GiB
S3_MAX_PARTS = 10_000
#: CopyObject copies at most 5 GiB in one request; larger objects are copied in parts.
S3_MAX_COPY_SIZE = 5 * GiB

DEFAULT_PART_SIZE = 16 * MiB
DEFAULT_MAX_IN_FLIGHT = 4
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 20.0
_LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")

_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequests",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "ConditionalRequestConflict",
        # The server received different bytes than we hashed: damaged in transit, resend.
        "BadDigest",
        "XAmzContentSHA256Mismatch",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchVersion"})
_NO_LOCK_CONFIG_CODES = frozenset(
    {"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError", "NoSuchObjectLegalHold"}
)

T = TypeVar("T")


# -- results and errors -------------------------------------------------------------------
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


class ObjectLocked(StorageError):
    """Object Lock (retention or legal hold) refused a delete or overwrite."""

    permanent = True

    def __init__(
        self,
        message: str,
        *,
        key: str,
        retain_until: datetime | None = None,
        mode: str | None = None,
        legal_hold: bool = False,
        **kw: Any,
    ) -> None:
        self.key = key
        self.retain_until = retain_until
        self.mode = mode
        self.legal_hold = legal_hold
        super().__init__(message, **kw)


class ObjectExists(StorageError):
    """A conditional put (If-None-Match) found the key already there."""

    permanent = True


# -- the client ---------------------------------------------------------------------------
def s3_client_from_connection(conn: ConnectionInfo) -> Any:
    """A boto3 S3 client from an Airflow-style ``aws`` connection.

    Fields follow the Amazon provider: ``login``/``password`` are the access key id and
    secret (``extra.aws_access_key_id``/``aws_secret_access_key`` also work); extra keys
    ``aws_session_token``, ``region_name``, ``endpoint_url`` (or
    ``service_config.s3.endpoint_url``), ``verify``, ``profile_name`` and ``config_kwargs``
    (botocore ``Config`` arguments); ``addressing_style`` is a shortcut for
    ``config_kwargs.s3.addressing_style``. Without keys, boto3's default credential chain
    (environment, profile, instance role) is used. A custom endpoint gets path-style
    addressing unless told otherwise: S3-compatible stores rarely serve bucket subdomains.
    """
    import boto3
    from botocore.config import Config

    extra = dict(conn.extra or {})
    if isinstance(extra.get("config_kwargs"), str):
        extra["config_kwargs"] = _json_field(conn, "config_kwargs", extra["config_kwargs"])
    for unsupported in ("role_arn", "assume_role_method"):
        if extra.get(unsupported):
            raise ConfigError(
                f"connection {conn.conn_id!r}: extra.{unsupported} is not supported by Restorable's S3 client",
                hint="Use access keys, a profile_name, or the default credential chain (instance role)",
            )
    key_id = conn.login or extra.get("aws_access_key_id")
    secret = conn.password or extra.get("aws_secret_access_key")
    if bool(key_id) != bool(secret):
        raise ConfigError(
            f"connection {conn.conn_id!r} has an access key id without a secret (or the reverse)",
            hint="Set both login (aws_access_key_id) and password (aws_secret_access_key), or neither",
        )
    service_config = extra.get("service_config") or {}
    endpoint_url = extra.get("endpoint_url") or (service_config.get("s3") or {}).get("endpoint_url")
    region = extra.get("region_name") or None

    config_kwargs: dict[str, Any] = dict(extra.get("config_kwargs") or {})
    s3_config = dict(config_kwargs.pop("s3", None) or {})
    if extra.get("addressing_style"):
        s3_config["addressing_style"] = extra["addressing_style"]
    if endpoint_url and "addressing_style" not in s3_config:
        s3_config["addressing_style"] = "path"
    # Every body we send carries a signed x-amz-checksum-sha256 header the server verifies, so
    # hashing the body a second time for the SigV4 payload hash (botocore does on plain-HTTP
    # endpoints) adds CPU and no integrity.
    s3_config.setdefault("payload_signing_enabled", False)
    config_kwargs.setdefault("retries", {"mode": "standard", "total_max_attempts": 1})
    config_kwargs.setdefault("connect_timeout", 10)
    config_kwargs.setdefault("read_timeout", 60)
    config_kwargs.setdefault("max_pool_connections", 16)
    config_kwargs.setdefault("tcp_keepalive", True)
    # We send SHA-256 checksums ourselves; botocore would otherwise add a CRC32 to every put.
    config_kwargs.setdefault("request_checksum_calculation", "when_required")
    try:
        config = Config(s3=s3_config or None, **config_kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"connection {conn.conn_id!r}: extra.config_kwargs is not valid for botocore: {exc}",
            hint="Use botocore.config.Config argument names (retries, connect_timeout, s3, ...)",
        ) from None

    session = boto3.session.Session(
        aws_access_key_id=key_id or None,
        aws_secret_access_key=secret or None,
        aws_session_token=extra.get("aws_session_token") or None,
        region_name=region,
        profile_name=extra.get("profile_name") or None,
    )
    kwargs: dict[str, Any] = {"config": config}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if "verify" in extra:
        kwargs["verify"] = extra["verify"]
    log.debug(
        "s3 client conn_id=%s endpoint=%s region=%s keys=%s",
        conn.conn_id,
        endpoint_url or "aws",
        region or "default",
        "connection" if key_id else "default-chain",
    )
    return session.client("s3", **kwargs)


def _json_field(conn: ConnectionInfo, name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"connection {conn.conn_id!r}: extra.{name} is not valid JSON: {exc.msg}") from None


# -- error classification -----------------------------------------------------------------
def _error_code(exc: BaseException) -> tuple[str, int]:
    response = getattr(exc, "response", None) or {}
    code = str((response.get("Error") or {}).get("Code") or "")
    status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    return code, status


def _is_transient(exc: BaseException) -> bool:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        HTTPClientError,
        IncompleteReadError,
    )

    if isinstance(exc, ConnectionError | HTTPClientError | IncompleteReadError):
        return True
    if isinstance(exc, ClientError):
        code, status = _error_code(exc)
        return status >= 500 or status == 429 or code in _TRANSIENT_CODES
    if isinstance(exc, BotoCoreError):
        return False
    # urllib3/socket errors that escaped botocore's wrapping (mid-body reads).
    return isinstance(exc, OSError)


def _backoff(attempt: int, base: float) -> float:
    """Full jitter: uniform in [0, base * 2**(attempt-1)], capped."""
    return random.uniform(0, min(_BACKOFF_CAP, base * (2 ** (attempt - 1))))


# -- the store ----------------------------------------------------------------------------
class S3Store:
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
                if attempt < self.max_attempts and _is_transient(exc):
                    delay = _backoff(attempt, self.backoff_base)
                    log.warning(
                        "s3 retry op=%s bucket=%s key=%s attempt=%d/%d delay=%.2fs error=%s",
                        op,
                        self.bucket,
                        key,
                        attempt,
                        self.max_attempts,
                        delay,
                        _short(exc),
                    )
                    time.sleep(delay)
                    continue
                raise self._translate(exc, op, key, attempts=attempt, hint=hint) from exc

    def _translate(
        self, exc: BaseException, op: str, key: str | None, *, attempts: int = 1, hint: str | None = None
    ) -> RestorableError:
        if isinstance(exc, RestorableError):
            return exc
        code, status = _error_code(exc)
        where = self.url(key) if key else f"s3://{self.bucket}"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        text = f"S3 {op} on {where} failed{tries}: {_short(exc)}"
        if code in _NO_LOCK_CONFIG_CODES:
            return StorageError(text, hint=hint or "The object (or bucket) has no Object Lock setting of that kind")
        if code in _NOT_FOUND_CODES or (status == 404 and code not in ("NoSuchBucket", "NoSuchUpload")):
            return NotFound(f"{where} does not exist ({op})", hint=hint or "Check the backup id and the prefix")
        if code == "NoSuchBucket":
            return StorageError(text, hint="Check storage.bucket; create the bucket (with Object Lock if wanted)")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"):
            err = StorageError(text, hint="Check the aws connection's access key id and secret (login/password)")
            err.permanent = True
            return err
        if code == "AccessDenied" or status == 403:
            return StorageError(
                text,
                hint=hint or "Check the credentials' permissions on this bucket; Object Lock may also refuse it",
            )
        if op == "PutObject" and (code == "PreconditionFailed" or status == 412):
            return ObjectExists(
                f"{where} already exists (the write was conditional: If-None-Match)",
                hint=hint or "Another run wrote this key first; it was not overwritten",
            )
        if code == "PreconditionFailed" or status == 412:
            return StorageError(f"{text} (the object changed while it was being read)", hint=hint)
        if _is_transient(exc):
            return StorageError(text, hint=hint or "Is the S3 endpoint reachable? The operation can be retried")
        return StorageError(text, hint=hint)

    # -- multipart upload ---------------------------------------------------------------
    @contextlib.contextmanager
    def multipart_upload(
        self,
        key: str,
        *,
        lock_mode: str | None = None,
        retain_until: datetime | None = None,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
    ) -> Iterator[MultipartWriter]:
        """Stream an object of unknown length: ``with store.multipart_upload(key) as w: w.write(b)``.

        On a clean exit the upload is completed and ``w.result`` holds an ``UploadResult``.
        On any exception the upload is aborted (nothing is left behind) and the error is
        re-raised: a ``RestorableError`` from the block (e.g. the dump failing) keeps its
        type; anything else, and any S3 failure, becomes a ``StorageError`` naming the key.
        """
        extra = _lock_args(lock_mode, retain_until)
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "ChecksumAlgorithm": "SHA256",
            "ContentType": content_type,
            **extra,
        }
        if metadata:
            params["Metadata"] = dict(metadata)
        response = self._call("CreateMultipartUpload", key, lambda: self.client.create_multipart_upload(**params))
        writer = MultipartWriter(self, key, response["UploadId"])
        log.info("s3 multipart started bucket=%s key=%s upload_id=%s", self.bucket, key, writer.upload_id)
        try:
            yield writer
            writer._complete()
        except BaseException as exc:
            abort_note = writer._abort()
            if isinstance(exc, RestorableError):
                # Keep the type (a failed dump stays a ToolError); say what became of the upload.
                if isinstance(exc, StorageError):
                    exc.message = f"{exc.message}{abort_note or '; the upload was aborted'}"
                else:
                    exc.message = f"{exc.message} (upload of {self.url(key)} aborted{abort_note})"
                exc.args = (str(exc),)
                raise
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: do not wrap
                raise
            raise StorageError(
                f"upload to {self.url(key)} failed and was aborted{abort_note}: {_short(exc)}",
                hint="Nothing was committed; the backup can be retried",
            ) from exc

    def part_size_for(self, part_number: int) -> int:
        """Part sizes double every ``max_parts // 10`` parts, so 10,000 parts starting at 16 MiB
        hold about 16 TiB (more than S3's 5 TiB object limit) while small streams use small parts."""
        step = max(1, self.max_parts // 10)
        return min(S3_MAX_PART_SIZE, self.part_size << ((part_number - 1) // step))

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
    ) -> UploadResult:
        """PUT a small object with a SHA-256 checksum. ``if_none_match`` refuses to overwrite
        (raises ObjectExists), which makes retried writes of the same key safe."""
        data = bytes(data)
        digest = hashlib.sha256(data).digest()
        checksum = base64.b64encode(digest).decode()
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": data,
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": checksum,
            **_lock_args(lock_mode, retain_until),
        }
        if content_type:
            params["ContentType"] = content_type
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
        reader = _ResumableBody(self, key, version_id)
        reader._open(0)
        return reader

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

    # -- deleting and Object Lock -------------------------------------------------------
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

    def _lock_refusal(self, key: str, version_id: str | None, exc: StorageError) -> ObjectLocked | None:
        """When a delete was refused, find out whether Object Lock is why."""
        code, status = _error_code(exc.__cause__) if exc.__cause__ is not None else ("", 0)
        if status not in (400, 403) and code not in ("AccessDenied", "InvalidRequest", "ObjectLocked"):
            return None
        try:
            retention = self.get_retention(key, version_id=version_id)
            hold = self.get_legal_hold(key, version_id=version_id)
        except RestorableError:
            return None
        now = datetime.now(UTC)
        active = retention is not None and retention[1] is not None and retention[1] > now
        if not active and not hold:
            return None
        mode, until = retention if retention else (None, None)
        what = self.url(key) + (f" (version {version_id})" if version_id else "")
        reasons = []
        if active:
            reasons.append(f"{mode} retention until {until.isoformat()}")
        if hold:
            reasons.append("a legal hold")
        return ObjectLocked(
            f"{what} is locked by {' and '.join(reasons)}",
            key=key,
            retain_until=until if active else None,
            mode=mode if active else None,
            legal_hold=hold,
            hint="Wait until the retention ends (or lift the legal hold); locked backups cannot be deleted early",
        )

    def list_multipart_uploads(self, prefix: str = "") -> list[PendingUpload]:
        uploads: list[PendingUpload] = []
        key_marker: str | None = None
        upload_marker: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if key_marker:
                params["KeyMarker"] = key_marker
                if upload_marker:
                    params["UploadIdMarker"] = upload_marker
            page = self._call("ListMultipartUploads", prefix, lambda p=params: self.client.list_multipart_uploads(**p))
            for item in page.get("Uploads", []):
                uploads.append(PendingUpload(item["Key"], item["UploadId"], item.get("Initiated")))
            if not page.get("IsTruncated"):
                return uploads
            key_marker = page.get("NextKeyMarker")
            upload_marker = page.get("NextUploadIdMarker")

    def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        try:
            self._call(
                "AbortMultipartUpload",
                key,
                lambda: self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id),
            )
        except NotFound:
            pass  # already gone
        except StorageError as exc:
            if _error_code(exc.__cause__)[0] != "NoSuchUpload":
                raise
        log.info("s3 multipart aborted bucket=%s key=%s upload_id=%s", self.bucket, key, upload_id)

    def set_legal_hold(self, key: str, on: bool, *, version_id: str | None = None) -> None:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "LegalHold": {"Status": "ON" if on else "OFF"}}
        if version_id:
            params["VersionId"] = version_id
        self._call(
            "PutObjectLegalHold",
            key,
            lambda: self.client.put_object_legal_hold(**params),
            hint="Object Lock must be enabled on the bucket",
        )

    def get_legal_hold(self, key: str, *, version_id: str | None = None) -> bool:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        try:
            response = self._call("GetObjectLegalHold", key, lambda: self.client.get_object_legal_hold(**params))
        except StorageError as exc:
            if _error_code(exc.__cause__)[0] in _NO_LOCK_CONFIG_CODES:
                return False
            raise
        return (response.get("LegalHold") or {}).get("Status") == "ON"

    def set_retention(
        self, key: str, mode: str, until: datetime, *, version_id: str | None = None, bypass_governance: bool = False
    ) -> None:
        """Set or extend an object's retention (shortening needs ``bypass_governance`` in GOVERNANCE)."""
        lock = _lock_args(mode, until)
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Retention": {"Mode": lock["ObjectLockMode"], "RetainUntilDate": lock["ObjectLockRetainUntilDate"]},
        }
        if version_id:
            params["VersionId"] = version_id
        if bypass_governance:
            params["BypassGovernanceRetention"] = True
        self._call("PutObjectRetention", key, lambda: self.client.put_object_retention(**params))

    def get_retention(self, key: str, *, version_id: str | None = None) -> tuple[str, datetime] | None:
        """``(mode, retain_until)`` of the object's retention, or None when it has none."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        try:
            response = self._call("GetObjectRetention", key, lambda: self.client.get_object_retention(**params))
        except StorageError as exc:
            if _error_code(exc.__cause__)[0] in _NO_LOCK_CONFIG_CODES:
                return None
            raise
        retention = response.get("Retention") or {}
        if not retention.get("Mode") or not retention.get("RetainUntilDate"):
            return None
        return retention["Mode"], _aware(retention["RetainUntilDate"])

    def copy_storage_class(self, key: str, storage_class: str) -> str | None:
        """Move an object to another storage class by copying it onto itself; return the new version id.

        Retention and legal hold are carried over to the new version. On a versioned bucket the
        old version remains (under its own lock, if any) until lifecycle deletes it.
        """
        head = self.head(key)
        if head is None:
            raise NotFound(f"{self.url(key)} does not exist (copy to {storage_class})")
        source = {"Bucket": self.bucket, "Key": key}
        if head.get("VersionId"):
            source["VersionId"] = head["VersionId"]
        lock: dict[str, Any] = {}
        if head.get("ObjectLockMode") and head.get("ObjectLockRetainUntilDate"):
            lock["ObjectLockMode"] = head["ObjectLockMode"]
            lock["ObjectLockRetainUntilDate"] = head["ObjectLockRetainUntilDate"]
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            lock["ObjectLockLegalHoldStatus"] = "ON"
        size = int(head.get("ContentLength", 0))
        if size <= self.copy_part_threshold:
            response = self._call(
                "CopyObject",
                key,
                lambda: self.client.copy_object(
                    Bucket=self.bucket,
                    Key=key,
                    CopySource=source,
                    StorageClass=storage_class,
                    MetadataDirective="COPY",
                    **lock,
                ),
            )
            version_id = response.get("VersionId")
        else:
            version_id = self._multipart_copy(key, source, head, storage_class, lock)
        log.info("s3 storage class changed bucket=%s key=%s storage_class=%s", self.bucket, key, storage_class)
        return version_id

    def _multipart_copy(
        self, key: str, source: dict[str, Any], head: dict[str, Any], storage_class: str, lock: dict[str, Any]
    ) -> str | None:
        size = int(head["ContentLength"])
        part = max(self.min_part_size, min(S3_MAX_PART_SIZE, self.copy_part_threshold), -(-size // S3_MAX_PARTS))
        created = self._call(
            "CreateMultipartUpload",
            key,
            lambda: self.client.create_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                StorageClass=storage_class,
                ContentType=head.get("ContentType") or "application/octet-stream",
                Metadata=head.get("Metadata") or {},
                **lock,
            ),
        )
        upload_id = created["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, size, part), start=1):
                end = min(size, start + part) - 1
                response = self._call(
                    "UploadPartCopy",
                    key,
                    lambda n=number, s=start, e=end: self.client.upload_part_copy(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=n,
                        CopySource=source,
                        CopySourceRange=f"bytes={s}-{e}",
                    ),
                )
                parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
            done = self._call(
                "CompleteMultipartUpload",
                key,
                lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                ),
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self.abort_multipart_upload(key, upload_id)
            raise
        return done.get("VersionId")


# -- the streaming writer -----------------------------------------------------------------
@dataclass
class _Part:
    number: int
    size: int
    etag: str
    digest: bytes

    @property
    def checksum(self) -> str:
        return base64.b64encode(self.digest).decode()


class MultipartWriter:
    """The writer ``S3Store.multipart_upload`` yields. ``write`` blocks while ``max_in_flight``
    parts are uploading (backpressure), so memory stays near part_size x (max_in_flight + 1).

    Every part but the last is exactly its part size. Parts are filled in place in buffers
    that are reused once their upload is done: fresh 16 MiB buffers would be mapped and
    zero-filled by the kernel page by page for every part, and those page faults cost more
    CPU than hashing the part (measured: about 0.7 CPU-s per 500 MB on this machine).
    """

    def __init__(self, store: S3Store, key: str, upload_id: str) -> None:
        self.store = store
        self.key = key
        self.upload_id = upload_id
        self.result: UploadResult | None = None
        self.bytes_written = 0
        self._buffer: bytearray | None = None
        self._filled = 0
        self._spare: list[bytearray] = []
        self._next_part = 1
        self._parts: dict[int, _Part] = {}
        self._futures: list[Future] = []
        self._error: BaseException | None = None
        self._closed = False
        self._slots = threading.BoundedSemaphore(store.max_in_flight)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=store.max_in_flight, thread_name_prefix="s3-part")

    @property
    def parts_started(self) -> int:
        return self._next_part - 1

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError(f"write to {self.store.url(self.key)} after the upload finished")
        self._raise_if_failed()
        view = memoryview(data).cast("B")
        size = len(view)
        offset = 0
        while offset < size:
            if self._buffer is None:
                self._buffer = self._take_buffer(self.store.part_size_for(self._next_part))
            take = min(size - offset, len(self._buffer) - self._filled)
            self._buffer[self._filled : self._filled + take] = view[offset : offset + take]
            self._filled += take
            offset += take
            if self._filled == len(self._buffer):
                self._submit_part()
        self.bytes_written += size
        return size

    def flush(self) -> None:
        pass

    def _take_buffer(self, size: int) -> bytearray:
        with self._lock:
            while self._spare:
                buffer = self._spare.pop()
                if len(buffer) == size:
                    return buffer
        # Parts grow every max_parts // 10 parts: buffers of the old size are dropped.
        return bytearray(size)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _submit_part(self) -> None:
        number = self._next_part
        if number > self.store.max_parts:
            raise StorageError(
                f"upload to {self.store.url(self.key)} would need more than {self.store.max_parts} parts",
                hint="Raise storage.part_size",
            )
        # Take a slot first: while all are busy, write() blocks here holding one part at most.
        self._slots.acquire()
        try:
            self._raise_if_failed()
        except BaseException:
            self._slots.release()
            raise
        body = self._buffer if self._buffer is not None else bytearray()
        if self._filled < len(body):
            del body[self._filled :]  # the last part: shorter, and never reused
        self._buffer = None
        self._filled = 0
        self._next_part += 1
        future = self._pool.submit(self._upload_part, number, body)
        future.add_done_callback(lambda done: self._part_done(done, body))
        self._futures.append(future)

    def _part_done(self, future: Future, body: bytearray) -> None:
        # The buffer goes back before the slot: the writer waiting on the slot then finds it.
        with self._lock:
            self._spare.append(body)
        self._slots.release()
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            with self._lock:
                if self._error is None:
                    self._error = exc

    def _upload_part(self, number: int, body: bytearray) -> None:
        store = self.store
        digest = hashlib.sha256(body).digest()
        checksum = base64.b64encode(digest).decode()
        started = time.monotonic()
        response = store._call(
            "UploadPart",
            self.key,
            lambda: store.client.upload_part(
                Bucket=store.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=body,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
            ),
            hint="Nothing was committed; the backup can be retried",
        )
        returned = response.get("ChecksumSHA256")
        if returned and returned != checksum:
            raise IntegrityError(
                f"S3 acknowledged part {number} of {store.url(self.key)} with checksum {returned}, expected {checksum}",
                hint="The store altered the data; check the endpoint and retry",
            )
        with self._lock:
            self._parts[number] = _Part(number, len(body), response["ETag"], digest)
        log.debug(
            "s3 part uploaded key=%s part=%d bytes=%d seconds=%.2f",
            self.key,
            number,
            len(body),
            time.monotonic() - started,
        )

    def _wait_all(self) -> None:
        for future in self._futures:
            try:
                future.result()
            except BaseException:
                pass
        self._raise_if_failed()

    def _complete(self) -> None:
        store = self.store
        if self._filled or self._next_part == 1:
            # The last part may be small; an empty stream is one empty part.
            self._submit_part()
        self._wait_all()
        self._closed = True
        self._pool.shutdown(wait=True)
        parts = [self._parts[n] for n in sorted(self._parts)]
        composite = base64.b64encode(hashlib.sha256(b"".join(p.digest for p in parts)).digest()).decode()
        expected = f"{composite}-{len(parts)}"
        manifest = [{"PartNumber": p.number, "ETag": p.etag, "ChecksumSHA256": p.checksum} for p in parts]
        attempts = 0

        def complete() -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            return store.client.complete_multipart_upload(
                Bucket=store.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": manifest}
            )

        try:
            response = store._call("CompleteMultipartUpload", self.key, complete)
        except StorageError as exc:
            # A retry after a lost response finds the upload already completed.
            if attempts > 1 and _error_code(exc.__cause__)[0] == "NoSuchUpload":
                head = store.head(self.key) or {}
                if head.get("ChecksumSHA256") == expected:
                    response = head
                else:
                    raise
            else:
                raise
        returned = response.get("ChecksumSHA256")
        if returned and returned != expected:
            raise IntegrityError(
                f"S3 completed {store.url(self.key)} with checksum {returned}, expected {expected}",
                hint="The store assembled different parts than were sent; the backup must be retried",
            )
        self.result = UploadResult(
            key=self.key,
            size=sum(p.size for p in parts),
            parts=len(parts),
            etag=(response.get("ETag") or "").strip('"'),
            version_id=response.get("VersionId"),
            checksum=expected,
        )
        log.info(
            "s3 multipart completed bucket=%s key=%s bytes=%d parts=%d version_id=%s",
            store.bucket,
            self.key,
            self.result.size,
            self.result.parts,
            self.result.version_id,
        )

    def _abort(self) -> str:
        """Stop uploading and abort; return a note for the error message when abort failed."""
        self._closed = True
        self._buffer = None
        self._spare = []
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        try:
            self.store.abort_multipart_upload(self.key, self.upload_id)
            return ""
        except Exception as exc:
            log.error(
                "s3 abort failed bucket=%s key=%s upload_id=%s error=%s",
                self.store.bucket,
                self.key,
                self.upload_id,
                _short(exc),
            )
            return (
                f"; aborting upload {self.upload_id} also failed ({_short(exc)}): "
                "enforce_lifecycle aborts stale uploads, or add an AbortIncompleteMultipartUpload bucket rule"
            )


# -- reading ------------------------------------------------------------------------------
class _ResumableBody(io.RawIOBase):
    """An object's body that survives dropped connections by resuming with a Range GET."""

    def __init__(self, store: S3Store, key: str, version_id: str | None) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._version_id = version_id
        self._etag: str | None = None
        self._body: Any = None
        self._pos = 0
        self.size: int | None = None

    def _open(self, start: int) -> None:
        store = self._store
        params: dict[str, Any] = {"Bucket": store.bucket, "Key": self._key}
        if self._version_id:
            params["VersionId"] = self._version_id
        if start:
            params["Range"] = f"bytes={start}-"
            if self._etag:
                params["IfMatch"] = self._etag
        response = store._call("GetObject", self._key, lambda: store.client.get_object(**params))
        if start == 0:
            self._etag = response.get("ETag")
            self._version_id = self._version_id or response.get("VersionId")
            self.size = int(response.get("ContentLength", 0))
        self._body = response["Body"]

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(8 * MiB):
                chunks.append(chunk)
            return b"".join(chunks)
        attempt = 0
        while True:
            try:
                data = self._body.read(size)
                self._pos += len(data)
                return data
            except Exception as exc:
                attempt += 1
                if not _is_transient(exc) or attempt >= self._store.max_attempts:
                    raise self._store._translate(exc, "GetObject (reading body)", self._key, attempts=attempt) from exc
                log.warning(
                    "s3 read interrupted, resuming bucket=%s key=%s offset=%d attempt=%d error=%s",
                    self._store.bucket,
                    self._key,
                    self._pos,
                    attempt,
                    _short(exc),
                )
                with contextlib.suppress(Exception):
                    self._body.close()
                time.sleep(_backoff(attempt, self._store.backoff_base))
                self._open(self._pos)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._body is not None:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


# -- helpers ------------------------------------------------------------------------------
def _lock_args(mode: str | None, until: datetime | None) -> dict[str, Any]:
    if mode is None and until is None:
        return {}
    if mode is None or until is None:
        raise ConfigError(
            "Object Lock needs both a mode and a retain-until date",
            hint="Set storage.object_lock.mode (GOVERNANCE or COMPLIANCE) and days",
        )
    upper = mode.upper()
    if upper not in _LOCK_MODES:
        raise ConfigError(f"Object Lock mode {mode!r} is not GOVERNANCE or COMPLIANCE")
    return {"ObjectLockMode": upper, "ObjectLockRetainUntilDate": _aware(until)}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."
