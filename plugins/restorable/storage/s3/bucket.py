"""Bucket-level settings the audit reads and fixes: versioning, Object Lock, encryption, lifecycle rules.

Getters return the setting in S3's own shape (without ``ResponseMetadata``), or None when the
bucket has none of that kind: S3 says "absent" with an error code per setting, translated here
so callers never see those codes. A store that does not implement a setting raises
``Unsupported``, never retried; credentials that may not touch it raise ``AccessDenied``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from restorable.exceptions import NotFound, RestorableError, StorageError
from restorable.storage.s3.failures import error_code

#: How S3 (and SeaweedFS) say "this bucket has no such configuration".
ABSENT_SETTING_CODES = frozenset(
    {
        "NoSuchLifecycleConfiguration",
        "ServerSideEncryptionConfigurationNotFoundError",
        "ObjectLockConfigurationNotFoundError",
        "NoSuchObjectLockConfiguration",
    }
)
_BUCKET_HINT = "Check storage.bucket; create the bucket (with Object Lock if wanted)"


class BucketSettingsMixin:
    """``S3Store``'s bucket-level operations (the store provides ``client``, ``bucket``, ``_call``)."""

    client: Any
    bucket: str
    _call: Callable[..., Any]

    def head_bucket(self) -> None:
        """Check that the bucket exists and these credentials reach it; raise StorageError if not."""
        try:
            self._call("HeadBucket", None, lambda: self.client.head_bucket(Bucket=self.bucket))
        except NotFound as exc:
            # A missing bucket is a storage setting to fix, not a missing backup (NotFound's exit code).
            raise StorageError(f"bucket s3://{self.bucket} does not exist", hint=_BUCKET_HINT) from exc

    def get_bucket_versioning(self) -> dict[str, Any]:
        """GetBucketVersioning's answer: ``{"Status": "Enabled" | "Suspended"}``, or {} if never enabled."""
        return self._setting("GetBucketVersioning", lambda: self.client.get_bucket_versioning(Bucket=self.bucket)) or {}

    def put_bucket_versioning(self, status: str) -> None:
        self._call(
            "PutBucketVersioning",
            None,
            lambda: self.client.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": status}),
        )

    def get_object_lock_configuration(self) -> dict[str, Any] | None:
        """The bucket's ``ObjectLockConfiguration`` (``ObjectLockEnabled``, ``Rule``), or None."""
        response = self._setting(
            "GetObjectLockConfiguration", lambda: self.client.get_object_lock_configuration(Bucket=self.bucket)
        )
        return None if response is None else response.get("ObjectLockConfiguration") or {}

    def put_object_lock_configuration(self, configuration: Mapping[str, Any]) -> None:
        """Raises InvalidBucketState where the store enables Object Lock only on versioned (or new) buckets."""
        self._call(
            "PutObjectLockConfiguration",
            None,
            lambda: self.client.put_object_lock_configuration(
                Bucket=self.bucket, ObjectLockConfiguration=dict(configuration)
            ),
        )

    def get_bucket_encryption(self) -> dict[str, Any] | None:
        """The bucket's ``ServerSideEncryptionConfiguration`` (its ``Rules``), or None."""
        response = self._setting("GetBucketEncryption", lambda: self.client.get_bucket_encryption(Bucket=self.bucket))
        return None if response is None else response.get("ServerSideEncryptionConfiguration") or {}

    def put_bucket_encryption(self, configuration: Mapping[str, Any]) -> None:
        self._call(
            "PutBucketEncryption",
            None,
            lambda: self.client.put_bucket_encryption(
                Bucket=self.bucket, ServerSideEncryptionConfiguration=dict(configuration)
            ),
        )

    def get_bucket_lifecycle_rules(self) -> list[dict[str, Any]] | None:
        """The bucket's lifecycle rules, or None when it has no lifecycle configuration."""
        response = self._setting(
            "GetBucketLifecycleConfiguration",
            lambda: self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket),
        )
        return None if response is None else list(response.get("Rules") or [])

    def put_bucket_lifecycle_rules(self, rules: Sequence[Mapping[str, Any]]) -> None:
        """Replace the bucket's lifecycle rules with ``rules`` (S3 has no per-rule update)."""
        self._call(
            "PutBucketLifecycleConfiguration",
            None,
            lambda: self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": [dict(r) for r in rules]}
            ),
        )

    def _setting(self, op: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        try:
            response = self._call(op, None, fn)
        except RestorableError as exc:
            if error_code(exc.__cause__)[0] in ABSENT_SETTING_CODES:
                return None
            raise
        response.pop("ResponseMetadata", None)
        return response
