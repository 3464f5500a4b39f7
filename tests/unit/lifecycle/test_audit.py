"""The bucket audit against MemoryStore: what it reports, what it fixes, how refusals read."""

from __future__ import annotations

from restorable.lifecycle.audit import UNSUPPORTED, BucketExpectations, audit_bucket
from restorable.lifecycle.policy import ObjectLockPolicy
from restorable.storage.memory import MemoryStore

EVERY_SETTING = {
    "versioning",
    "object_lock",
    "encryption",
    "lifecycle.abort_incomplete_multipart_upload",
    "lifecycle.noncurrent_version_expiration",
}


def test_a_bare_bucket_is_reported_then_fixed_keeping_foreign_rules() -> None:
    store = MemoryStore(versioning=False, object_lock=False)
    theirs = {"ID": "theirs", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}
    store.put_bucket_lifecycle_rules([theirs])
    expected = BucketExpectations(prefix="restorable/")
    drifts = {d.setting: d for d in audit_bucket(store, expected, fix=False)}
    assert set(drifts) == EVERY_SETTING
    assert drifts["versioning"].found == "never enabled" and not any(d.fixed for d in drifts.values())
    fixed = audit_bucket(store, expected, fix=True)
    assert {d.setting for d in fixed if d.fixed} == EVERY_SETTING, fixed
    assert audit_bucket(store, expected, fix=False) == []
    assert [r["ID"] for r in store.get_bucket_lifecycle_rules()] == [
        "theirs",
        "restorable-abort-incomplete-multipart",
        "restorable-expire-noncurrent-versions",
    ]


def test_default_retention_is_checked_and_set() -> None:
    store = MemoryStore()
    expected = BucketExpectations(default_retention=ObjectLockPolicy("GOVERNANCE", 7), encryption=False)
    [drift, *_] = audit_bucket(store, expected, fix=True)
    assert (drift.setting, drift.found, drift.fixed) == ("object_lock.default_retention", "no default retention", True)
    rule = store.get_object_lock_configuration()["Rule"]
    assert rule == {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 7}}


def test_unsupported_settings_are_reported_not_raised() -> None:
    store = MemoryStore()
    store.unsupported |= {"GetBucketEncryption", "GetBucketLifecycleConfiguration"}
    drifts = audit_bucket(store, BucketExpectations(), fix=True)
    assert {d.setting for d in drifts} == EVERY_SETTING - {"versioning", "object_lock"}
    for drift in drifts:
        assert drift.found == f"{UNSUPPORTED} (NotImplemented)" and drift.unsupported and not drift.fixed


def test_denied_reads_and_writes_say_so() -> None:
    store = MemoryStore()
    store.denied |= {"GetBucketEncryption", "PutBucketLifecycleConfiguration"}
    drifts = {d.setting: d for d in audit_bucket(store, BucketExpectations(), fix=True)}
    assert drifts["encryption"].found == "could not be read: access denied (these credentials lack the permission)"
    note = drifts["lifecycle.noncurrent_version_expiration"].note
    assert note == "could not be set: could not be read: access denied (these credentials lack the permission)"
    assert not drifts["encryption"].unsupported


def test_object_lock_refused_on_an_unversioned_bucket_says_why() -> None:
    store = MemoryStore(versioning=False, object_lock=False)
    expected = BucketExpectations(
        versioning=False,
        encryption=False,
        abort_incomplete_multipart_days=None,
        noncurrent_version_expiration_days=None,
    )
    [drift] = audit_bucket(store, expected, fix=True)
    assert (drift.setting, drift.found, drift.fixed) == ("object_lock", "not enabled", False)
    assert "versioning must be Enabled first" in drift.note
