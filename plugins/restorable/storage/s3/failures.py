"""How a boto failure is classified: worth retrying, missing, unsupported, or none of these.

``S3Store._call`` retries what ``is_transient`` accepts and ``S3Store._translate`` turns the
rest into Restorable's errors; the codes below are the S3 (and SeaweedFS) spellings.
"""

from __future__ import annotations

import random

BACKOFF_CAP = 20.0

TRANSIENT_CODES = frozenset(
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
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchVersion"})
NO_LOCK_CONFIG_CODES = frozenset(
    {"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError", "NoSuchObjectLegalHold"}
)
#: The store does not implement the request. SeaweedFS answers 501 for some bucket settings:
#: a 5xx, yet asking again cannot help, so these are never retried.
UNSUPPORTED_CODES = frozenset(
    {"NotImplemented", "XNotImplemented", "MethodNotAllowed", "UnsupportedOperation", "NotSupported"}
)
INVALID_CREDENTIALS_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"})


def error_code(exc: BaseException | None) -> tuple[str, int]:
    """(S3 error code, HTTP status) of a botocore ClientError; ("", 0) for anything else."""
    response = getattr(exc, "response", None) or {}
    code = str((response.get("Error") or {}).get("Code") or "")
    status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    return code, status


def is_unsupported(exc: BaseException) -> bool:
    code, status = error_code(exc)
    return code in UNSUPPORTED_CODES or status == 501


def is_transient(exc: BaseException) -> bool:
    """Could the same request succeed if sent again (connection errors, 5xx, throttling)?"""
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
        if is_unsupported(exc):
            return False
        code, status = error_code(exc)
        return status >= 500 or status == 429 or code in TRANSIENT_CODES
    if isinstance(exc, BotoCoreError):
        return False
    # urllib3/socket errors that escaped botocore's wrapping (mid-body reads).
    return isinstance(exc, OSError)


def backoff(attempt: int, base: float) -> float:
    """Full jitter: uniform in [0, base * 2**(attempt-1)], capped."""
    return random.uniform(0, min(BACKOFF_CAP, base * (2 ** (attempt - 1))))


def short(exc: BaseException) -> str:
    """An exception's text, cut to 500 characters for messages and logs."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."
