"""Object Lock on single objects: retention, legal holds, and telling a lock refusal from other failures.

S3 answers a delete refused by Object Lock with a bare AccessDenied (or InvalidRequest); only
asking the object for its retention and legal hold tells whether the lock is why.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from restorable.exceptions import ConfigError, RestorableError, StorageError
from restorable.storage.errors import ObjectLocked
from restorable.storage.s3.failures import NO_LOCK_CONFIG_CODES, error_code

LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")


def lock_args(mode: str | None, until: datetime | None) -> dict[str, Any]:
    """The Object Lock arguments of a put or multipart upload; {} for none."""
    if mode is None and until is None:
        return {}
    if mode is None or until is None:
        raise ConfigError(
            "Object Lock needs both a mode and a retain-until date",
            hint="Set storage.object_lock.mode (GOVERNANCE or COMPLIANCE) and days",
        )
    upper = mode.upper()
    if upper not in LOCK_MODES:
        raise ConfigError(f"Object Lock mode {mode!r} is not GOVERNANCE or COMPLIANCE")
    return {"ObjectLockMode": upper, "ObjectLockRetainUntilDate": aware(until)}


def aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class ObjectLockMixin:
    """``S3Store``'s per-object lock operations (the store provides ``client``, ``bucket``, ``_call``)."""

    client: Any
    bucket: str
    _call: Callable[..., Any]
    url: Callable[[str], str]

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
            if error_code(exc.__cause__)[0] in NO_LOCK_CONFIG_CODES:
                return False
            raise
        return (response.get("LegalHold") or {}).get("Status") == "ON"

    def set_retention(
        self, key: str, mode: str, until: datetime, *, version_id: str | None = None, bypass_governance: bool = False
    ) -> None:
        """Set or extend an object's retention (shortening needs ``bypass_governance`` in GOVERNANCE)."""
        lock = lock_args(mode, until)
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
            if error_code(exc.__cause__)[0] in NO_LOCK_CONFIG_CODES:
                return None
            raise
        retention = response.get("Retention") or {}
        if not retention.get("Mode") or not retention.get("RetainUntilDate"):
            return None
        return retention["Mode"], aware(retention["RetainUntilDate"])

    def _lock_refusal(self, key: str, version_id: str | None, exc: StorageError) -> ObjectLocked | None:
        """When a delete was refused, find out whether Object Lock is why."""
        code, status = error_code(exc.__cause__) if exc.__cause__ is not None else ("", 0)
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
