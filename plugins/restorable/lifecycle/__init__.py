"""Lifecycle enforcement: retention policy, planning, applying, bucket audit, storage roles.

``policy`` parses a database's ``retention`` config; ``plan`` decides keep / transition / delete
(pure); ``apply`` scans the bucket and carries a plan out; ``audit`` checks the bucket's own
settings; ``roles`` holds the least-privilege storage roles.
"""

from restorable.lifecycle.apply import LifecycleReport, enforce, scan_bucket, set_legal_hold
from restorable.lifecycle.audit import BucketExpectations, Drift, audit_bucket
from restorable.lifecycle.plan import BackupSummary, Decision, plan
from restorable.lifecycle.policy import RetentionPolicy, parse_duration, policy_from_config

__all__ = [
    "BackupSummary",
    "BucketExpectations",
    "Decision",
    "Drift",
    "LifecycleReport",
    "RetentionPolicy",
    "audit_bucket",
    "enforce",
    "parse_duration",
    "plan",
    "policy_from_config",
    "scan_bucket",
    "set_legal_hold",
]
