"""Copies in another region: two real SeaweedFS instances, a real PostgreSQL source and restore server.

The "other region" is a second ``weed mini`` of its own (``region_b``); the primary is either the
session's SeaweedFS or, where a test stops it, one of the test's own. Restores and drills go through
the CLI as an operator runs them, so "says so" is what the operator reads.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta

import pytest

from devstack.chain import make_chain
from devstack.seaweedfs import SeaweedS3
from restorable.commands.backup import run_backup
from restorable.commands.copy import copy_backup, copy_status
from restorable.commands.verify import verify_backup
from restorable.copies import copy_services
from restorable.copies.lifecycle import audit_copies, enforce_everywhere
from restorable.exceptions import IntegrityError
from restorable.repository.manifest import utcnow
from tests.integration.copies.conftest import READER

pytestmark = pytest.mark.integration


@pytest.fixture
def own_primary(tmp_path):
    """A primary region this test may stop."""
    from tests.conftest import _reap_if_killed

    server = SeaweedS3(tmp_path / "region_a")
    try:
        server.start()
        _reap_if_killed(server, server.state_dir)
        yield server
    finally:
        server.stop()


@pytest.fixture
def flat_bucket(seaweed):
    """An unversioned bucket on the session's SeaweedFS: a damaged object there is what a restore reads."""
    name = f"flat-{uuid.uuid4().hex[:12]}"
    seaweed.create_bucket(name, object_lock=False, versioning=False)
    yield name
    seaweed.delete_bucket(name)


def _chain(tmp_path, pg_sample, pg_target_server, primary, bucket, region_b, *, versioned=True, **kw):
    copy_bucket = f"eu-{uuid.uuid4().hex[:12]}"
    region_b.create_bucket(copy_bucket, object_lock=versioned, versioning=versioned)
    lock = {"object_lock": {"mode": "GOVERNANCE", "days": 1}} if versioned else {}
    return make_chain(
        tmp_path,
        source=pg_sample,
        engine="postgres",
        s3=primary.connection(),
        bucket=bucket,
        target=pg_target_server.connection("postgres"),
        max_attempts=2,
        copies=[{"name": "eu", "conn_id": "s3_eu", "bucket": copy_bucket, "storage_class": "STANDARD_IA", **lock}],
        extra_connections={"s3_eu": region_b.connection("s3_eu")},
        **kw,
    )


def _flip_a_byte(store, key: str) -> None:
    """Damage the stored object in place (an unversioned bucket: what a restore reads is now wrong)."""
    data = bytearray(store.get_bytes(key))
    data[len(data) // 2] ^= 0x01
    store.client.put_object(Bucket=store.bucket, Key=key, Body=bytes(data))


def _backup(chain):
    """A committed backup, verified by its checksum read-back (what the backup DAG's verify task does)."""
    manifest = run_backup(chain.services, "shop")
    verify_backup(chain.services, "shop", manifest.backup_id)
    return manifest


def _json(proc):
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def test_a_backup_copied_to_the_second_region_is_verified_there_and_restores_when_the_primary_stops(
    tmp_path, pg_sample, pg_target_server, own_primary, region_b
):
    own_primary.create_bucket("primary", object_lock=True, versioning=True)
    chain = _chain(tmp_path, pg_sample, pg_target_server, own_primary, "primary", region_b)
    manifest = _backup(chain)

    copied = chain.run_cli("--json", "copy", "shop")
    assert copied.returncode == 0, copied.stderr
    (result,) = _json(copied)
    assert result["ok"] and result["backup_id"] == manifest.backup_id
    assert {o["how"] for o in result["objects"]} == {"streamed"}  # two endpoints: no server-side copy
    # The copy, listed from the second region alone: committed and verified by its own read-back.
    listed = _json(chain.run_cli("--json", "list", "shop", "--from", "eu"))
    assert [(r["backup_id"], r["verified"], r["last_check"]) for r in listed] == [
        (manifest.backup_id, True, "checksum:ok")
    ]
    copy_store = copy_services(chain.services, "eu").store("restore")
    held = copy_services(chain.services, "eu").catalog("restore").read_manifest("shop", manifest.backup_id)
    assert held.dump.stored_sha256 == manifest.dump.stored_sha256 and held.dump.version_id != manifest.dump.version_id
    head = copy_store.head(held.dump.key)
    assert head["StorageClass"] == "STANDARD_IA" and head["ObjectLockMode"] == "GOVERNANCE"
    assert copy_status(chain.services, "shop")[0]["copies"]["eu"]["ok"] is True

    own_primary.stop(remove_data=False)  # the primary region is down
    restored = chain.run_cli("--json", "restore", "shop", "latest", "--target", "tgt", "--database", "from_copy")
    assert restored.returncode == 0, restored.stderr
    report = _json(restored)
    assert report["ok"] and report["backup_id"] == manifest.backup_id and report["copy"] == "eu"
    assert "primary storage is unreachable" in report["fallback_reason"]
    assert "falling back to a copy" in restored.stderr  # and the log says so
    text = chain.run_cli("restore", "shop", "latest", "--target", "tgt", "--database", "from_copy_2")
    assert text.returncode == 0 and "FELL BACK to copy eu" in text.stdout, text.stderr


def test_a_flipped_byte_in_the_primary_falls_back_to_the_copy_for_restore_and_drill(
    tmp_path, pg_sample, pg_target_server, seaweed, flat_bucket, region_b
):
    # An unversioned primary, so a damaged object is what a restore reads (a versioned one keeps the recorded version).
    chain = _chain(tmp_path, pg_sample, pg_target_server, seaweed, flat_bucket, region_b)
    manifest = _backup(chain)
    copy_backup(chain.services, "shop", manifest.backup_id)
    _flip_a_byte(chain.services.store("backup"), manifest.dump.key)

    restored = chain.run_cli("--json", "restore", "shop", "latest", "--target", "tgt", "--database", "after_flip")
    assert restored.returncode == 0, restored.stderr
    report = _json(restored)
    assert report["ok"] and report["copy"] == "eu" and report["backup_id"] == manifest.backup_id
    assert "failed its checksum" in report["fallback_reason"]
    drilled = chain.run_cli("--json", "drill", "shop")
    assert drilled.returncode == 0, drilled.stderr
    drill = _json(drilled)
    assert drill["ok"] and drill["copy"] == "eu" and "failed its checksum" in drill["fallback_reason"]
    # The primary's failed drill is on record beside it; the copy's pass beside the copy.
    assert not chain.services.catalog("restore").entries("shop")[0].verified
    assert drill["evidence"]["record_key"].startswith("restorable/shop/")
    eu_records = copy_services(chain.services, "eu").catalog("restore").verifications("shop", manifest.backup_id)
    assert [r["kind"] for r in eu_records] == ["checksum", "drill"] and eu_records[-1]["ok"]


def test_a_copy_whose_checksum_fails_is_never_marked_verified(
    tmp_path, pg_sample, pg_target_server, seaweed, flat_bucket, region_b
):
    chain = _chain(tmp_path, pg_sample, pg_target_server, seaweed, flat_bucket, region_b)
    manifest = _backup(chain)
    _flip_a_byte(chain.services.store("backup"), manifest.dump.key)  # damaged after its verification passed

    failed = chain.run_cli("copy", "shop", manifest.backup_id)
    assert failed.returncode == 6, failed.stderr
    assert "was not copied to eu: copied object" in failed.stderr and "sha256" in failed.stderr
    eu = copy_services(chain.services, "eu").catalog("restore")
    assert eu.entries("shop") == []  # nothing committed: nothing a restore or a fallback could pick
    assert copy_status(chain.services, "shop")[0]["copies"]["eu"]["ok"] is False
    # A copy damaged after it verified: its re-verification fails and it is no longer verified there.
    good = _backup(chain)
    copy_backup(chain.services, "shop", good.backup_id)
    held = eu.read_manifest("shop", good.backup_id)
    _flip_a_byte(copy_services(chain.services, "eu").store("backup"), held.dump.key)
    with pytest.raises(IntegrityError):
        verify_backup(copy_services(chain.services, "eu"), "shop", good.backup_id)
    (entry,) = eu.entries("shop")
    assert not entry.verified
    assert chain.run_cli("copy", "shop", good.backup_id).returncode == 6  # a retry does not paper over it


def test_same_endpoint_copies_server_side_with_the_destinations_lock(
    tmp_path, pg_sample, pg_target_server, seaweed, bucket, request
):
    chain = _chain(tmp_path, pg_sample, pg_target_server, seaweed, bucket, seaweed)
    request.addfinalizer(lambda: seaweed.delete_bucket(chain.services.config.storage.copies[0].bucket))
    manifest = _backup(chain)
    (result,) = copy_backup(chain.services, "shop")
    assert {o["how"] for o in result.objects} == {"server-side"}
    store = copy_services(chain.services, "eu").store("restore")
    held = copy_services(chain.services, "eu").catalog("restore").read_manifest("shop", manifest.backup_id)
    # SeaweedFS drops CopyObject's lock arguments: the copy sets the retention it asked for.
    mode, until = store.get_retention(held.dump.key, version_id=held.dump.version_id)
    assert mode == "GOVERNANCE" and until > utcnow() + timedelta(hours=23)
    assert store.head(held.dump.key)["StorageClass"] == "STANDARD_IA"


def test_lifecycle_per_destination_keeps_each_destinations_newest_verified_backup(
    tmp_path, pg_sample, pg_target_server, seaweed, bucket, region_b
):
    chain = _chain(
        tmp_path,
        pg_sample,
        pg_target_server,
        seaweed,
        bucket,
        region_b,
        versioned=False,
        retention={"keep_last": 1, "min_verified": 1},
    )
    older = _backup(chain)
    newer = _backup(chain)
    copy_backup(chain.services, "shop", older.backup_id)
    copy_backup(chain.services, "shop", newer.backup_id)
    # In the copy, the newer backup stops verifying (its copied bytes rot); in the primary both are fine.
    eu = copy_services(chain.services, "eu")
    held = eu.catalog("restore").read_manifest("shop", newer.backup_id)
    _flip_a_byte(eu.store("backup"), held.dump.key)
    with pytest.raises(IntegrityError):
        verify_backup(eu, "shop", newer.backup_id)

    summary, failure = enforce_everywhere(chain.services, utcnow(), dry_run=False)
    assert failure is None, failure
    primary_left = [e.backup_id for e in chain.services.catalog("restore").entries("shop")]
    copy_left = [e.backup_id for e in eu.catalog("restore").entries("shop")]
    assert primary_left == [newer.backup_id]  # keep_last 1: its newest is verified
    # The copy keeps its own newest verified backup (the older one) beside its newest.
    assert copy_left == [older.backup_id, newer.backup_id]
    assert summary["deleted"] == [f"shop/{older.backup_id}"] and summary["copies"]["eu"]["deleted"] == []
    # The destination's bucket is audited as the primary's is: this one has no versioning.
    audits, failures = audit_copies(chain.services)
    assert "versioning" in json.dumps(audits["eu"]["drifts"]) and failures[0].message.startswith("copy eu: bucket")


def test_a_drill_from_the_copy_alone_with_only_its_read_credentials(
    tmp_path, pg_sample, pg_target_server, seaweed, bucket, region_b
):
    (tmp_path / "primary").mkdir()
    chain = _chain(tmp_path / "primary", pg_sample, pg_target_server, seaweed, bucket, region_b)
    manifest = _backup(chain)
    copy_backup(chain.services, "shop")
    copy = chain.services.config.storage.copies[0]
    (tmp_path / "alone").mkdir()
    # Another host: its config's primary storage *is* the copy, its only S3 keys read and list.
    alone = make_chain(
        tmp_path / "alone",
        source=pg_sample,
        engine="postgres",
        s3=region_b.identity_connection(READER, "restorable_s3"),
        bucket=copy.bucket,
        target=pg_target_server.connection("postgres"),
        max_attempts=2,
    )
    env = {k: v for k, v in alone.env.items() if k != "AIRFLOW_CONN_RESTORABLE_AGE"}
    env["AIRFLOW_CONN_RESTORABLE_AGE"] = chain.env["AIRFLOW_CONN_RESTORABLE_AGE"]  # the restore side's key
    alone.env.clear()
    alone.env.update(env)
    assert not any("s3_eu" in k.lower() or k == "AIRFLOW_CONN_S3_EU" for k in alone.env)
    drilled = alone.run_cli("--json", "drill", "shop")
    assert drilled.returncode == 0, drilled.stderr
    result = _json(drilled)
    assert result["ok"] and result["backup_id"] == manifest.backup_id and result["copy"] is None
    assert result["evidence"]["hashes_verified"] and result["evidence"]["record_key"] is None
    assert "drill evidence NOT recorded" in drilled.stderr


def test_an_envelope_backup_rotated_then_copied_restores_from_the_copy_once_the_old_key_version_is_retired(
    tmp_path, pg_sample, pg_target_server, seaweed, bucket, region_b, openbao
):
    """The copy carries the backup's key object and the rotation's: with the old KMS key version
    retired, the backup's own key.json no longer unwraps, and the copy restores by the rewrapped one."""
    from tests.integration.keys.test_envelope import _kms

    chain = _chain(tmp_path, pg_sample, pg_target_server, seaweed, bucket, region_b, kms=_kms(openbao))
    manifest = _backup(chain)
    assert manifest.encryption["key_object"]["key"].endswith("/key.json")
    new_version = openbao.rotate_key()
    rotated = chain.run_cli("keys", "rotate", "--json")
    assert rotated.returncode == 0, rotated.stderr
    copied = chain.run_cli("--json", "copy", "shop", manifest.backup_id)
    assert copied.returncode == 0, copied.stderr
    (result,) = _json(copied)
    roles = sorted(o["role"] for o in result["objects"])
    assert "wrapped_key" in roles and "rewrapped_key" in roles, roles
    eu = copy_services(chain.services, "eu")
    own = eu.catalog("restore").read_manifest("shop", manifest.backup_id).encryption["key_object"]
    raw = eu.store("restore").get_bytes(own["key"], version_id=own["version_id"])  # rebased to the copy's version
    assert hashlib.sha256(raw).hexdigest() == manifest.encryption["key_object"]["sha256"]

    openbao.set_min_decryption_version(new_version)
    restored = chain.run_cli(
        "--json", "restore", "shop", manifest.backup_id, "--from", "eu", "--target", "tgt", "--database", "eu_rotated"
    )
    assert restored.returncode == 0, restored.stderr
    report = _json(restored)
    assert report["ok"] and report["copy"] == "eu"
