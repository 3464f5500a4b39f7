"""The errors a store raises beyond ``StorageError`` and ``NotFound``, whatever the driver.

Callers branch on these types, never on a driver's error codes: the lifecycle tells a locked
backup from a failed delete, the bucket audit tells "the store does not implement this" from
"these credentials may not read it".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from restorable.exceptions import StorageError


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


class _RefusedWithCode(StorageError):
    """A refusal that keeps the store's own code (``NotImplemented``, ``AccessDenied``...) for reports."""

    def __init__(self, message: str, *, code: str = "", **kw: Any) -> None:
        self.code = code
        super().__init__(message, **kw)


class Unsupported(_RefusedWithCode):
    """The store does not implement the operation (S3's 501 NotImplemented and friends)."""

    # Asking again cannot make the store implement it.
    permanent = True


class AccessDenied(_RefusedWithCode):
    """The credentials lack the permission (or Object Lock refused without saying so)."""


class InvalidBucketState(_RefusedWithCode):
    """The bucket's current state forbids the change (e.g. Object Lock on an unversioned bucket)."""
