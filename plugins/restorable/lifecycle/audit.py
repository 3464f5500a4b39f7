"""Audit the backup bucket's own settings, and optionally set what is missing.

What a backup bucket needs, and why:

- versioning Enabled: an overwrite or delete keeps the old bytes (and Object Lock requires it);
- Object Lock enabled (plus the default retention, when one is expected): WORM backups;
- default encryption (SSE) configured: data at rest is encrypted even if a writer forgets;
- a lifecycle rule with ``AbortIncompleteMultipartUpload``: crashed uploads do not pile up parts;
- a lifecycle rule with ``NoncurrentVersionExpiration``: deleted backups (delete markers over
  old versions) really go after a grace period; without it nothing is ever freed.

Each difference is a ``Drift``. The audit reads and sets through the store's bucket-level
operations (``Store.get_bucket_versioning`` and friends), never a client of its own. A setting
the store does not implement (``Unsupported``: 501 NotImplemented and friends, not retried) is
reported as "unsupported by the store", never an exception; a setting the credentials may not
read (``AccessDenied``) is reported as such too. ``fix=True`` sets what can be set; lifecycle
rules are merged into the bucket's existing ones (PutBucketLifecycleConfiguration replaces the
whole set), under rule ids starting ``restorable-``.

SeaweedFS 4.48 (``weed mini``) was checked: versioning, Object Lock (enabling it on an existing
bucket works once versioning is Enabled, which the audit fixes first; on a never-versioned bucket
it answers InvalidBucketState), default retention, SSE-S3 default encryption
(Get/PutBucketEncryption, which need an Admin identity there) and lifecycle configurations with
both rules are all accepted and read back. Whether SeaweedFS then *acts* on the lifecycle rules
on schedule was not measured (it takes days).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from restorable.exceptions import RestorableError
from restorable.lifecycle.policy import ObjectLockPolicy
from restorable.storage.errors import AccessDenied, InvalidBucketState, Unsupported

if TYPE_CHECKING:
    from restorable.storage.protocol import Store

log = logging.getLogger(__name__)

ABORT_RULE_ID = "restorable-abort-incomplete-multipart"
NONCURRENT_RULE_ID = "restorable-expire-noncurrent-versions"

UNSUPPORTED = "unsupported by the store"

T = TypeVar("T")


@dataclass(frozen=True)
class BucketExpectations:
    """What the bucket should have. ``None`` for a rule's days means "do not check"."""

    versioning: bool = True
    object_lock: bool = True
    #: Expected default retention (mode, days); None: per-object retention only, not checked.
    default_retention: ObjectLockPolicy | None = None
    encryption: bool = True
    #: SSE algorithm to set when fixing ("AES256" = SSE-S3, "aws:kms" = SSE-KMS); any SSE passes the check.
    sse_algorithm: str = "AES256"
    kms_key_id: str | None = None
    abort_incomplete_multipart_days: int | None = 7
    noncurrent_version_expiration_days: int | None = 30
    #: The key prefix the backups live under: rules filtered to a parent prefix (or none) cover it.
    prefix: str = ""


@dataclass(frozen=True)
class Drift:
    setting: str
    expected: str
    found: str
    fixed: bool = False
    note: str = ""

    @property
    def unsupported(self) -> bool:
        return self.found.startswith(UNSUPPORTED)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unsupported": self.unsupported}


class _Unreadable(Exception):
    """A Get* call failed in a way that is not "absent": unsupported, denied, or other."""

    def __init__(self, found: str) -> None:
        super().__init__(found)
        self.found = found


def _describe_failure(exc: RestorableError) -> str:
    if isinstance(exc, Unsupported):
        return f"{UNSUPPORTED} ({exc.code})"
    if isinstance(exc, AccessDenied):
        return "could not be read: access denied (these credentials lack the permission)"
    return f"could not be read: {exc.message}"


def _get(read: Callable[[], T]) -> T:
    """Read one bucket setting (the store returns None when it is absent); _Unreadable otherwise."""
    try:
        return read()
    except RestorableError as exc:
        raise _Unreadable(_describe_failure(exc)) from exc


_OBJECT_LOCK_REFUSED = (
    "the store refuses to enable Object Lock on this bucket (versioning must be Enabled "
    "first; some stores allow it only at creation): create a new bucket with Object Lock "
    "and point storage.bucket at it"
)


def _put(write: Callable[[], None], *, invalid_state_note: str | None = None) -> tuple[bool, str]:
    """Set one bucket setting; (fixed, note)."""
    try:
        write()
    except InvalidBucketState as exc:
        return False, invalid_state_note or f"could not be set: {_describe_failure(exc)}"
    except RestorableError as exc:
        return False, f"could not be set: {_describe_failure(exc)}"
    return True, ""


def _covers(rule: dict[str, Any], prefix: str) -> bool:
    """Does an Enabled rule apply to every key under ``prefix``?"""
    if rule.get("Status") != "Enabled":
        return False
    if "Filter" in rule:
        flt = rule["Filter"] or {}
        if set(flt) - {"Prefix"}:
            return False  # tags, sizes or And: not every object
        rule_prefix = flt.get("Prefix", "")
    else:
        rule_prefix = rule.get("Prefix", "")
    return prefix.startswith(rule_prefix or "")


def _lifecycle_rule_ok(rules: list[dict[str, Any]], field: str, days_key: str, limit: int, prefix: str) -> bool:
    for rule in rules:
        days = (rule.get(field) or {}).get(days_key)
        if days is not None and int(days) <= limit and _covers(rule, prefix):
            return True
    return False


def _describe_rules(rules: list[dict[str, Any]], field: str, days_key: str) -> str:
    found = [
        f"{rule.get('ID') or 'unnamed'}: {days_key}={rule[field].get(days_key)}, {rule.get('Status')}"
        for rule in rules
        if rule.get(field)
    ]
    return "; ".join(found) if found else "no such rule"


def audit_bucket(store: Store, expected: BucketExpectations, *, fix: bool) -> list[Drift]:
    """Compare ``store``'s bucket settings with ``expected``; with ``fix``, set what can be set.

    Returns only the differences (an empty list: all good).
    """
    drifts: list[Drift] = []
    drifts += _audit_versioning(store, expected, fix)
    drifts += _audit_object_lock(store, expected, fix)
    drifts += _audit_encryption(store, expected, fix)
    drifts += _audit_lifecycle(store, expected, fix)
    for drift in drifts:
        log.warning(
            "bucket drift bucket=%s setting=%s expected=%r found=%r fixed=%s note=%r",
            store.bucket,
            drift.setting,
            drift.expected,
            drift.found,
            drift.fixed,
            drift.note,
        )
    return drifts


def _audit_versioning(store: Store, expected: BucketExpectations, fix: bool) -> list[Drift]:
    if not expected.versioning:
        return []
    try:
        status = _get(store.get_bucket_versioning).get("Status") or "never enabled"
    except _Unreadable as exc:
        return [Drift("versioning", "Enabled", exc.found)]
    if status == "Enabled":
        return []
    fixed, note = False, ""
    if fix:
        fixed, note = _put(lambda: store.put_bucket_versioning("Enabled"))
    return [Drift("versioning", "Enabled", status, fixed, note)]


def _audit_object_lock(store: Store, expected: BucketExpectations, fix: bool) -> list[Drift]:
    if not expected.object_lock and expected.default_retention is None:
        return []
    try:
        config = _get(store.get_object_lock_configuration) or {}
    except _Unreadable as exc:
        return [Drift("object_lock", "Enabled", exc.found)]
    drifts = []
    enabled = config.get("ObjectLockEnabled") == "Enabled"
    if expected.object_lock and not enabled:
        fixed, note = False, ""
        if fix:
            fixed, note = _put(
                lambda: store.put_object_lock_configuration({"ObjectLockEnabled": "Enabled"}),
                invalid_state_note=_OBJECT_LOCK_REFUSED,
            )
        drifts.append(Drift("object_lock", "Enabled", "not enabled", fixed, note))
        enabled = fixed
    want = expected.default_retention
    if want is not None:
        default = (config.get("Rule") or {}).get("DefaultRetention") or {}
        days = default.get("Days") or (default.get("Years") or 0) * 365 or None
        found = f"{default.get('Mode')} {days} days" if default else "no default retention"
        if default.get("Mode") != want.mode or days != want.days:
            fixed, note = False, ""
            if fix and enabled:
                fixed, note = _put(
                    lambda: store.put_object_lock_configuration(
                        {
                            "ObjectLockEnabled": "Enabled",
                            "Rule": {"DefaultRetention": {"Mode": want.mode, "Days": want.days}},
                        }
                    ),
                    invalid_state_note=_OBJECT_LOCK_REFUSED,
                )
            elif fix:
                note = "Object Lock is not enabled, so no default retention can be set"
            drifts.append(Drift("object_lock.default_retention", f"{want.mode} {want.days} days", found, fixed, note))
    return drifts


def _audit_encryption(store: Store, expected: BucketExpectations, fix: bool) -> list[Drift]:
    if not expected.encryption:
        return []
    want = expected.sse_algorithm
    try:
        config = _get(store.get_bucket_encryption)
    except _Unreadable as exc:
        return [Drift("encryption", f"default SSE ({want})", exc.found)]
    rules = (config or {}).get("Rules") or []
    algorithms = [
        (r.get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm")
        for r in rules
        if r.get("ApplyServerSideEncryptionByDefault")
    ]
    if any(algorithms):
        return []
    fixed, note = False, ""
    if fix:
        default: dict[str, Any] = {"SSEAlgorithm": want}
        if expected.kms_key_id:
            default["KMSMasterKeyID"] = expected.kms_key_id
        fixed, note = _put(
            lambda: store.put_bucket_encryption({"Rules": [{"ApplyServerSideEncryptionByDefault": default}]})
        )
    return [Drift("encryption", f"default SSE ({want})", "no default encryption", fixed, note)]


def _audit_lifecycle(store: Store, expected: BucketExpectations, fix: bool) -> list[Drift]:
    checks = []
    if expected.abort_incomplete_multipart_days is not None:
        checks.append(
            (
                "lifecycle.abort_incomplete_multipart_upload",
                "AbortIncompleteMultipartUpload",
                "DaysAfterInitiation",
                expected.abort_incomplete_multipart_days,
                ABORT_RULE_ID,
            )
        )
    if expected.noncurrent_version_expiration_days is not None:
        checks.append(
            (
                "lifecycle.noncurrent_version_expiration",
                "NoncurrentVersionExpiration",
                "NoncurrentDays",
                expected.noncurrent_version_expiration_days,
                NONCURRENT_RULE_ID,
            )
        )
    if not checks:
        return []
    try:
        rules = list(_get(store.get_bucket_lifecycle_rules) or [])
    except _Unreadable as exc:
        return [
            Drift(setting, f"a rule with {field} {key} <= {days}", exc.found) for setting, field, key, days, _ in checks
        ]
    missing = [c for c in checks if not _lifecycle_rule_ok(rules, c[1], c[2], c[3], expected.prefix)]
    if not missing:
        return []
    fixed, note = False, ""
    if fix:
        ours = {rule_id for *_, rule_id in missing}
        merged = [r for r in rules if r.get("ID") not in ours]
        for _setting, field, key, days, rule_id in missing:
            merged.append(
                {"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": expected.prefix}, field: {key: days}}
            )
        fixed, note = _put(lambda: store.put_bucket_lifecycle_rules(merged))
    return [
        Drift(setting, f"a rule with {field} {key} <= {days}", _describe_rules(rules, field, key), fixed, note)
        for setting, field, key, days, _ in missing
    ]
