"""Lifecycle enforcement against a real SeaweedFS: deletes, locks, orphans, audit, storage roles.

Backups here are small but real objects in the bucket layout (data, verification records,
manifest last), some under Object Lock retention or legal hold.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import botocore.exceptions
import pytest

from devstack.seaweedfs import SeaweedS3
from devstack.seaweedfs_roles import seaweedfs_bucket_policy, seaweedfs_identities
from restorable.exceptions import StorageError
from restorable.lifecycle.apply import enforce, scan_bucket, set_legal_hold
from restorable.lifecycle.audit import UNSUPPORTED, BucketExpectations, audit_bucket
from restorable.lifecycle.policy import ObjectLockPolicy, policy_from_config
from restorable.lifecycle.roles import BACKUP_WRITER, LIFECYCLE_MANAGER, RESTORE_READER
from restorable.repository.catalog import Catalog
from restorable.storage.s3 import S3Store

pytestmark = pytest.mark.integration

PREFIX = "restorable"
DATA = "data.dump.zst.age"
WHERE = "include/restorable.yaml: databases[shop].retention"


def put_backup(
    store: S3Store,
    db: str,
    backup_id: str,
    created_at: datetime,
    *,
    verified: bool | None = True,
    lock_until: datetime | None = None,
    manifest: bool = True,
) -> str:
    """Write one backup the way the chain does: data, verification record, manifest last."""
    base = f"{PREFIX}/{db}/{backup_id}/"
    lock = {"lock_mode": "GOVERNANCE", "retain_until": lock_until} if lock_until else {}
    data = secrets.token_bytes(2048)
    store.put_bytes(base + DATA, data, **lock)
    if verified is not None:
        stamp = (created_at + timedelta(minutes=5)).strftime("%Y%m%dT%H%M%S%fZ")
        record = {"kind": "checksum", "ok": verified, "checked_at": created_at.isoformat()}
        store.put_json(f"{base}verifications/{stamp}-checksum.json", record)
    if manifest:
        body = {
            "format": "restorable.manifest/2",
            "kind": "logical",
            "backup_id": backup_id,
            "database_id": db,
            "created_at": created_at.isoformat().replace("+00:00", "Z"),
            "finished_at": (created_at + timedelta(minutes=2)).isoformat(),
            "objects": [{"key": base + DATA, "stored_bytes": len(data), "role": "dump"}],
            "object_lock": {"mode": "GOVERNANCE", "retain_until": lock_until.isoformat()} if lock_until else None,
        }
        store.put_json(base + "manifest.json", body, if_none_match=True, **lock)
    return base


def bid(name: str) -> str:
    """A backup id in the layout's form for a readable test name (the lifecycle ignores other names)."""
    return f"20260101T000000Z-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def keys(store: S3Store) -> list[str]:
    return sorted(o.key for o in store.list_objects(PREFIX + "/"))


def delete_markers(client, bucket: str, prefix: str) -> list[str]:
    page = client.list_object_versions(Bucket=bucket, Prefix=prefix)
    return [m["Key"] for m in page.get("DeleteMarkers", [])]


@pytest.fixture
def store(seaweed, bucket) -> S3Store:
    return S3Store(seaweed.client(), bucket, max_attempts=2, backoff_base=0.05)


def test_enforce_deletes_by_policy_keeps_locked_and_held_and_cleans_orphans(store, seaweed, bucket):
    now = datetime.now(UTC)
    ids = [bid(f"b{i}") for i in range(6)]  # ids[0] newest
    for age, backup_id in enumerate(ids):
        lock = now + timedelta(days=1) if age == 4 else None
        put_backup(store, "shop", backup_id, now - timedelta(days=age, hours=1), lock_until=lock)
    set_legal_hold(store, PREFIX, "shop", ids[5], True)
    # Another database with no policy: nothing of it is touched.
    put_backup(store, "crm", bid("old-one"), now - timedelta(days=900))
    # A crashed upload: data without a manifest, and an unfinished multipart upload.
    put_backup(store, "shop", bid("crashed"), now - timedelta(days=3), manifest=False)
    upload = store.client.create_multipart_upload(Bucket=bucket, Key=f"{PREFIX}/shop/{bid('dying')}/{DATA}")["UploadId"]
    policies = {"shop": policy_from_config({"keep_last": 2}, where=WHERE)}
    later = now + timedelta(hours=2)  # orphans and the upload are then 2 h old

    before = keys(store)
    dry = enforce(store, scan_bucket(store, PREFIX), policies, later, dry_run=True, orphan_min_age=timedelta(hours=1))
    assert keys(store) == before
    assert [u.upload_id for u in store.list_multipart_uploads(PREFIX + "/")] == [upload]
    assert delete_markers(store.client, bucket, PREFIX) == []
    assert sorted(o.backup_id for o in dry.deleted) == [ids[2], ids[3]]
    assert dry.to_dict()["dry_run"] is True

    report = enforce(
        store, scan_bucket(store, PREFIX), policies, later, dry_run=False, orphan_min_age=timedelta(hours=1)
    )
    assert report.ok, report.to_json()
    assert sorted(o.backup_id for o in report.deleted) == [ids[2], ids[3]]
    assert sorted(o.backup_id for o in report.kept) == sorted([ids[0], ids[1], bid("old-one")])
    retained = {o.backup_id: o.reason for o in report.retained_by_lock}
    assert retained[ids[4]].startswith("retained until ") and "by Object Lock" in retained[ids[4]]
    assert retained[ids[5]].startswith("kept: under legal hold")
    assert [o.backup_id for o in report.orphans_removed] == [bid("crashed")]
    assert [o.keys for o in report.uploads_aborted] == [[f"{PREFIX}/shop/{bid('dying')}/{DATA}"]]
    assert store.list_multipart_uploads(PREFIX + "/") == []
    json.loads(report.to_json())  # JSON-able

    remaining = keys(store)
    for gone in (ids[2], ids[3], bid("crashed")):
        assert not [k for k in remaining if f"/{gone}/" in k]
    for kept in (ids[0], ids[1], ids[4], ids[5]):
        assert f"{PREFIX}/shop/{kept}/manifest.json" in remaining
        assert f"{PREFIX}/shop/{kept}/{DATA}" in remaining
    # Readers see exactly the kept backups, and the locked one has no delete marker over it.
    assert Catalog(store, PREFIX).backup_ids("shop") == sorted([ids[0], ids[1], ids[4], ids[5]])
    assert not [k for k in delete_markers(store.client, bucket, PREFIX) if f"/{ids[4]}/" in k]

    again = enforce(
        store, scan_bucket(store, PREFIX), policies, later, dry_run=False, orphan_min_age=timedelta(hours=1)
    )
    assert again.deleted == [] and again.orphans_removed == [] and again.ok

    set_legal_hold(store, PREFIX, "shop", ids[5], False)
    freed = enforce(
        store, scan_bucket(store, PREFIX), policies, later, dry_run=False, orphan_min_age=timedelta(hours=1)
    )
    assert [o.backup_id for o in freed.deleted] == [ids[5]]


def test_young_orphans_and_uploads_are_left_alone(store, bucket):
    now = datetime.now(UTC)
    put_backup(store, "shop", bid("in-flight"), now, manifest=False)
    store.client.create_multipart_upload(Bucket=bucket, Key=f"{PREFIX}/shop/{bid('uploading')}/{DATA}")
    report = enforce(store, scan_bucket(store, PREFIX), {}, now, dry_run=False, orphan_min_age=timedelta(hours=1))
    assert report.orphans_removed == [] and report.uploads_aborted == []
    assert f"{PREFIX}/shop/{bid('in-flight')}/{DATA}" in keys(store)
    assert len(store.list_multipart_uploads(PREFIX + "/")) == 1


def test_orphan_cleaner_keeps_archives_key_objects_and_unknown_keys(store, bucket):
    """Only what the layout calls a backup object can be an orphan: WAL and binlog archives, key
    objects and keys it does not know have no manifest either, and must survive any age."""
    now = datetime.now(UTC)
    kept = [
        f"{PREFIX}/shop/wal/000000010000000000000003.zst.age",
        f"{PREFIX}/shop/wal/000000010000000000000004.zst.age",
        f"{PREFIX}/shop/wal/history/00000002.history.zst.age",
        f"{PREFIX}/crm/binlog/mysql-bin.000042.zst.age",
        f"{PREFIX}/_keys/kek/2026-12.json",
        f"{PREFIX}/shop/not-a-backup/{DATA}",  # a directory name that is not a backup id
        f"{PREFIX}/shop/notes.txt",
        f"{PREFIX}/README",
    ]
    for key in kept:
        store.put_bytes(key, b"archived")
    store.client.create_multipart_upload(Bucket=bucket, Key=f"{PREFIX}/shop/not-a-backup/part.bin")
    put_backup(store, "shop", bid("crashed"), now, manifest=False)  # a real orphan, for contrast
    later = now + timedelta(days=30)  # everything above is then a month old

    scan = scan_bucket(store, PREFIX)
    assert [(o.database, o.backup_id) for o in scan.orphans] == [("shop", bid("crashed"))]
    report = enforce(store, scan, {}, later, dry_run=False, orphan_min_age=timedelta(days=1))

    assert [o.backup_id for o in report.orphans_removed] == [bid("crashed")] and report.ok
    assert report.uploads_aborted == []
    assert keys(store) == sorted(kept)
    assert len(store.list_multipart_uploads(PREFIX + "/")) == 1


def test_a_lock_the_listing_did_not_know_still_stops_the_delete(store, bucket):
    """On a versioned bucket a plain DELETE of a locked object succeeds (a delete marker):
    enforce must look at the lock itself, or a retained backup would vanish from the catalog."""
    now = datetime.now(UTC)
    put_backup(store, "shop", bid("new"), now - timedelta(hours=1))
    base = put_backup(store, "shop", bid("old"), now - timedelta(days=10))
    until = now + timedelta(days=2)
    store.set_retention(base + DATA, "GOVERNANCE", until)
    scan = scan_bucket(store, PREFIX, read_lock_state=False)  # the manifest is not locked
    policies = {"shop": policy_from_config({"keep_last": 1}, where=WHERE)}
    report = enforce(store, scan, policies, now, dry_run=False, orphan_min_age=timedelta(days=1))
    assert report.deleted == []
    assert [o.reason for o in report.retained_by_lock] == [
        f"retained until {until.isoformat(timespec='seconds').replace('+00:00', 'Z')} by Object Lock"
    ]
    assert f"{base}manifest.json" in keys(store)
    assert delete_markers(store.client, bucket, base) == []


def test_purge_versions_removes_every_version(store, bucket):
    now = datetime.now(UTC)
    put_backup(store, "shop", bid("new"), now - timedelta(hours=1))
    old = put_backup(store, "shop", bid("old"), now - timedelta(days=10))
    policies = {"shop": policy_from_config({"keep_last": 1}, where=WHERE)}
    report = enforce(
        store,
        scan_bucket(store, PREFIX),
        policies,
        now,
        dry_run=False,
        orphan_min_age=timedelta(days=1),
        purge_versions=True,
    )
    assert [o.backup_id for o in report.deleted] == [bid("old")]
    page = store.client.list_object_versions(Bucket=bucket, Prefix=old)
    assert page.get("Versions", []) == [] and page.get("DeleteMarkers", []) == []


def test_default_delete_leaves_noncurrent_versions_for_the_bucket_rule(store, bucket):
    now = datetime.now(UTC)
    put_backup(store, "shop", bid("new"), now - timedelta(hours=1))
    old = put_backup(store, "shop", bid("old"), now - timedelta(days=10))
    old_keys = {k for k in keys(store) if k.startswith(old)}
    policies = {"shop": policy_from_config({"keep_last": 1}, where=WHERE)}
    enforce(store, scan_bucket(store, PREFIX), policies, now, dry_run=False, orphan_min_age=timedelta(days=1))
    page = store.client.list_object_versions(Bucket=bucket, Prefix=old)
    # The bytes stay as noncurrent versions under delete markers, until NoncurrentVersionExpiration.
    assert {v["Key"] for v in page["Versions"]} == old_keys
    assert {m["Key"] for m in page["DeleteMarkers"]} == old_keys
    assert not [k for k in keys(store) if k.startswith(old)]


class FailingDataDeletes(S3Store):
    def delete_object(self, key, version_id=None):
        if key.endswith(DATA):
            raise StorageError(f"injected failure deleting {key}")
        return super().delete_object(key, version_id)


def test_a_failure_after_the_manifest_leaves_an_orphan_that_the_next_run_removes(seaweed, bucket, store):
    now = datetime.now(UTC)
    put_backup(store, "shop", bid("new"), now - timedelta(hours=1))
    old = put_backup(store, "shop", bid("old"), now - timedelta(days=10))
    policies = {"shop": policy_from_config({"keep_last": 1}, where=WHERE)}
    failing = FailingDataDeletes(seaweed.client(), bucket, max_attempts=1)
    report = enforce(failing, scan_bucket(failing, PREFIX), policies, now, dry_run=False, orphan_min_age=timedelta(0))
    assert [o.backup_id for o in report.errors] == [bid("old")]
    assert "manifest deleted but 1 object(s) remain" in report.errors[0].reason
    assert "orphan" in report.errors[0].reason
    # The commit went first: readers no longer see a backup whose data may be missing.
    assert keys(store) == sorted([old + DATA, *[k for k in keys(store) if f"/{bid('new')}/" in k]])
    assert Catalog(store, PREFIX).backup_ids("shop") == [bid("new")]
    later = datetime.now(UTC) + timedelta(seconds=1)  # the orphan was written after `now`
    cleanup = enforce(store, scan_bucket(store, PREFIX), policies, later, dry_run=False, orphan_min_age=timedelta(0))
    assert [o.backup_id for o in cleanup.orphans_removed] == [bid("old")]
    assert not [k for k in keys(store) if f"/{bid('old')}/" in k]


def test_transition_moves_data_forward_only(store, bucket):
    now = datetime.now(UTC)
    base = put_backup(store, "shop", bid("aged"), now - timedelta(days=3))
    put_backup(store, "shop", bid("fresh"), now - timedelta(hours=2))
    policy = policy_from_config({"keep_last": 5, "tiers": {"hot": "1d", "warm": "30d"}}, where=WHERE)
    dry = enforce(
        store, scan_bucket(store, PREFIX), {"shop": policy}, now, dry_run=True, orphan_min_age=timedelta(days=1)
    )
    assert [o.backup_id for o in dry.transitioned] == [bid("aged")]
    assert {o.key: o.storage_class for o in store.list_objects(base)}[base + DATA] == "STANDARD"

    report = enforce(
        store,
        scan_bucket(store, PREFIX),
        {"shop": policy},
        now,
        dry_run=False,
        orphan_min_age=timedelta(days=1),
        purge_versions=True,
    )
    assert report.ok, report.to_json()
    assert [(o.backup_id, o.storage_class, o.keys) for o in report.transitioned] == [
        (bid("aged"), "STANDARD_IA", [base + DATA])
    ]
    classes = {o.key: o.storage_class for o in store.list_objects(base)}
    assert classes[base + DATA] == "STANDARD_IA" and classes[base + "manifest.json"] == "STANDARD"
    versions = store.client.list_object_versions(Bucket=bucket, Prefix=base + DATA)["Versions"]
    assert len(versions) == 1  # purge_versions removed the STANDARD copy
    again = enforce(
        store, scan_bucket(store, PREFIX), {"shop": policy}, now, dry_run=False, orphan_min_age=timedelta(days=1)
    )
    assert again.transitioned == []


def test_scan_reads_verification_lock_and_hold(store):
    now = datetime.now(UTC)
    put_backup(store, "shop", bid("good"), now - timedelta(days=2), lock_until=now + timedelta(days=3))
    put_backup(store, "shop", bid("bad"), now - timedelta(days=1), verified=False)
    put_backup(store, "shop", bid("unchecked"), now - timedelta(hours=1), verified=None)
    set_legal_hold(store, PREFIX, "shop", bid("unchecked"), True)
    store.put_bytes(f"{PREFIX}/shop/{bid('broken')}/manifest.json", b"{not json")
    store.put_bytes(f"{PREFIX}/shop/{bid('broken')}/{DATA}", b"x")
    scan = scan_bucket(store, PREFIX)
    summaries = {b.backup_id: b for b in scan.backups["shop"]}
    assert {k: (b.verified, b.legal_hold, b.complete) for k, b in summaries.items()} == {
        bid("good"): (True, False, True),
        bid("bad"): (False, False, True),
        bid("unchecked"): (False, True, True),
    }
    assert abs((summaries[bid("good")].retain_until - (now + timedelta(days=3))).total_seconds()) < 2
    assert summaries[bid("good")].size == 2048 and summaries[bid("good")].storage_class == "STANDARD"
    assert [k for k, _ in scan.unreadable] == [f"{PREFIX}/shop/{bid('broken')}/manifest.json"]
    # An unreadable manifest is an error to look at, never a reason to delete.
    report = enforce(
        store,
        scan,
        {"shop": policy_from_config({"keep_last": 1}, where=WHERE)},
        now,
        dry_run=False,
        orphan_min_age=timedelta(0),
    )
    assert [(o.database, o.backup_id) for o in report.errors] == [("shop", bid("broken"))]
    assert f"{PREFIX}/shop/{bid('broken')}/{DATA}" in keys(store)
    set_legal_hold(store, PREFIX, "shop", bid("unchecked"), False)


# --------------------------------------------------------------------------- bucket audit


def test_audit_reports_and_fixes_a_bare_bucket(seaweed):
    name = "bare-" + secrets.token_hex(4)
    seaweed.create_bucket(name, object_lock=False, versioning=False)
    client = seaweed.client()
    store = S3Store(client, name, backoff_base=0.01)
    try:
        client.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={
                "Rules": [
                    {"ID": "theirs", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}
                ]
            },
        )
        expected = BucketExpectations(prefix=PREFIX + "/")
        drifts = {d.setting: d for d in audit_bucket(store, expected, fix=False)}
        assert set(drifts) == {
            "versioning",
            "object_lock",
            "encryption",
            "lifecycle.abort_incomplete_multipart_upload",
            "lifecycle.noncurrent_version_expiration",
        }
        assert drifts["versioning"].found == "never enabled" and not drifts["versioning"].fixed
        assert drifts["lifecycle.abort_incomplete_multipart_upload"].found == "no such rule"

        # Versioning is fixed first: SeaweedFS (like S3) enables Object Lock on a versioned bucket.
        fixed = audit_bucket(store, expected, fix=True)
        assert [d.setting for d in fixed if d.fixed] == list(drifts), fixed
        assert audit_bucket(store, expected, fix=False) == []
        assert client.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]["ObjectLockEnabled"] == (
            "Enabled"
        )
        rules = client.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        assert {r["ID"] for r in rules} == {
            "theirs",
            "restorable-abort-incomplete-multipart",
            "restorable-expire-noncurrent-versions",
        }
    finally:
        seaweed.delete_bucket(name)


def test_audit_of_a_prepared_bucket_checks_default_retention(seaweed, bucket):
    store = S3Store(seaweed.client(), bucket, backoff_base=0.01)
    expected = BucketExpectations(default_retention=ObjectLockPolicy("GOVERNANCE", 7), prefix=PREFIX + "/")
    first = {d.setting for d in audit_bucket(store, expected, fix=True)}
    assert first == {
        "object_lock.default_retention",
        "encryption",
        "lifecycle.abort_incomplete_multipart_upload",
        "lifecycle.noncurrent_version_expiration",
    }
    assert audit_bucket(store, expected, fix=False) == []


def _not_implemented(operations: set[str], sent: list[str]):
    from botocore.awsrequest import AWSResponse

    class _Raw:
        def stream(self, **_):
            yield b""

    body = b"<Error><Code>NotImplemented</Code><Message>not implemented</Message></Error>"

    def handler(request, **kwargs):
        op = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        if op in operations:
            sent.append(op)
            response = AWSResponse(request.url, 501, {}, _Raw())
            response._content = body
            return response
        return None

    return handler


def test_audit_reports_settings_the_store_does_not_implement(seaweed):
    name = "bare-" + secrets.token_hex(4)
    seaweed.create_bucket(name, object_lock=False, versioning=False)
    client = seaweed.client(max_attempts=1)
    sent: list[str] = []
    client.meta.events.register(
        "before-send.s3", _not_implemented({"GetBucketEncryption", "GetBucketLifecycleConfiguration"}, sent)
    )
    # Room for retries: a 501 must not use them (asking again cannot make the store implement it).
    store = S3Store(client, name, max_attempts=4, backoff_base=0.01)
    try:
        drifts = {d.setting: d for d in audit_bucket(store, BucketExpectations(), fix=True)}
        for setting in (
            "encryption",
            "lifecycle.abort_incomplete_multipart_upload",
            "lifecycle.noncurrent_version_expiration",
        ):
            assert drifts[setting].found == f"{UNSUPPORTED} (NotImplemented)", drifts[setting]
            assert drifts[setting].unsupported and not drifts[setting].fixed
        assert drifts["versioning"].fixed
        assert sorted(sent) == ["GetBucketEncryption", "GetBucketLifecycleConfiguration"]
    finally:
        seaweed.delete_bucket(name)


# --------------------------------------------------------------------------- storage roles


ROLE_BUCKET = "roles-" + secrets.token_hex(4)


@pytest.fixture(scope="module")
def seaweed_roles(tmp_path_factory):
    server = SeaweedS3(
        Path(tmp_path_factory.mktemp("lifecycle-roles")) / "seaweedfs",
        identities=seaweedfs_identities(bucket=ROLE_BUCKET),
    )
    server.start()
    try:
        server.create_bucket(ROLE_BUCKET, object_lock=True, versioning=True)
        server.client().put_bucket_policy(Bucket=ROLE_BUCKET, Policy=json.dumps(seaweedfs_bucket_policy(ROLE_BUCKET)))
        yield server
    finally:
        server.stop()


def _denied(call) -> bool:
    try:
        call()
    except botocore.exceptions.ClientError as exc:
        return exc.response["Error"]["Code"] == "AccessDenied"
    return False


def test_backup_writer_writes_locked_backups_but_cannot_delete(seaweed_roles):
    writer = seaweed_roles.identity_client(BACKUP_WRITER, max_attempts=1)
    store = S3Store(writer, ROLE_BUCKET, max_attempts=1)
    now = datetime.now(UTC)
    base = put_backup(store, "shop", bid("w1"), now, lock_until=now + timedelta(days=1))
    with store.multipart_upload(
        base + "data.extra", lock_mode="GOVERNANCE", retain_until=now + timedelta(days=1)
    ) as up:
        up.write(b"x" * 1024)
    assert store.get_json(base + "manifest.json")["backup_id"] == bid("w1")
    unlocked = put_backup(store, "shop", bid("w2"), now)
    assert _denied(lambda: writer.delete_object(Bucket=ROLE_BUCKET, Key=unlocked + "manifest.json"))
    versions = writer.list_object_versions(Bucket=ROLE_BUCKET, Prefix=unlocked + DATA)["Versions"]
    assert _denied(
        lambda: writer.delete_object(Bucket=ROLE_BUCKET, Key=unlocked + DATA, VersionId=versions[0]["VersionId"])
    )
    assert _denied(lambda: writer.delete_bucket_policy(Bucket=ROLE_BUCKET))
    assert _denied(
        lambda: writer.put_bucket_lifecycle_configuration(
            Bucket=ROLE_BUCKET,
            LifecycleConfiguration={
                "Rules": [{"ID": "x", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]
            },
        )
    )
    assert _denied(
        lambda: writer.put_object_legal_hold(Bucket=ROLE_BUCKET, Key=unlocked + DATA, LegalHold={"Status": "OFF"})
    )
    assert f"{PREFIX}/shop/{bid('w2')}/manifest.json" in keys(store)


def test_restore_reader_reads_but_cannot_write_or_delete(seaweed_roles):
    admin = S3Store(seaweed_roles.client(), ROLE_BUCKET, max_attempts=1)
    base = put_backup(admin, "shop", bid("r1"), datetime.now(UTC))
    reader = seaweed_roles.identity_client(RESTORE_READER, max_attempts=1)
    assert json.loads(reader.get_object(Bucket=ROLE_BUCKET, Key=base + "manifest.json")["Body"].read())
    assert reader.list_objects_v2(Bucket=ROLE_BUCKET, Prefix=base)["KeyCount"] >= 2
    assert _denied(lambda: reader.put_object(Bucket=ROLE_BUCKET, Key=base + "evil", Body=b"x"))
    assert _denied(lambda: reader.delete_object(Bucket=ROLE_BUCKET, Key=base + "manifest.json"))
    assert _denied(lambda: reader.create_multipart_upload(Bucket=ROLE_BUCKET, Key=base + "evil"))


def test_lifecycle_manager_deletes_only_what_the_lock_allows(seaweed_roles):
    admin = S3Store(seaweed_roles.client(), ROLE_BUCKET, max_attempts=1)
    now = datetime.now(UTC)
    put_backup(admin, "crm", bid("new"), now - timedelta(hours=1))
    put_backup(admin, "crm", bid("old-free"), now - timedelta(days=5))
    locked = put_backup(admin, "crm", bid("old-locked"), now - timedelta(days=6), lock_until=now + timedelta(days=1))
    client = seaweed_roles.identity_client(LIFECYCLE_MANAGER, max_attempts=1)
    store = S3Store(client, ROLE_BUCKET, max_attempts=1)
    policies = {"crm": policy_from_config({"keep_last": 1}, where=WHERE)}
    scan = scan_bucket(store, PREFIX)
    report = enforce(store, scan, policies, now, dry_run=False, orphan_min_age=timedelta(days=1), purge_versions=True)
    assert [o.backup_id for o in report.deleted] == [bid("old-free")]
    assert [o.backup_id for o in report.retained_by_lock] == [bid("old-locked")]
    assert report.ok, report.to_json()
    # Even asked directly, with the bypass header, the lock holds against this role.
    version = client.list_object_versions(Bucket=ROLE_BUCKET, Prefix=locked + DATA)["Versions"][0]["VersionId"]
    assert _denied(
        lambda: client.delete_object(
            Bucket=ROLE_BUCKET, Key=locked + DATA, VersionId=version, BypassGovernanceRetention=True
        )
    )
    assert _denied(lambda: client.delete_bucket_policy(Bucket=ROLE_BUCKET))
    # It may place and lift legal holds (restorable hold ...).
    assert set_legal_hold(store, PREFIX, "crm", bid("new"), True)
    assert set_legal_hold(store, PREFIX, "crm", bid("new"), False)
    # Bucket audit with these credentials: SeaweedFS keeps bucket encryption to Admin identities.
    drifts = {d.setting: d for d in audit_bucket(store, BucketExpectations(), fix=False)}
    assert drifts["encryption"].found.startswith("could not be read: access denied")


def test_audit_says_why_object_lock_could_not_be_enabled(seaweed):
    name = "bare-" + secrets.token_hex(4)
    seaweed.create_bucket(name, object_lock=False, versioning=False)
    expected = BucketExpectations(
        versioning=False,
        encryption=False,
        abort_incomplete_multipart_days=None,
        noncurrent_version_expiration_days=None,
    )
    try:
        [drift] = audit_bucket(S3Store(seaweed.client(), name, max_attempts=1), expected, fix=True)
        assert (drift.setting, drift.found, drift.fixed) == ("object_lock", "not enabled", False)
        assert "versioning must be Enabled first" in drift.note
    finally:
        seaweed.delete_bucket(name)
