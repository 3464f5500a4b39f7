"""The same behaviours against MemoryStore and an S3Store on SeaweedFS, so the fake cannot drift from S3.

Each test runs twice (``memory`` and ``s3``) and asserts only what the core relies on; where
the two must agree on a value (checksums, listings), the value is computed here, not taken
from either store.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os

import pytest

from restorable.exceptions import NotFound, StorageError, ToolError
from restorable.storage import ObjectExists, ObjectLocked, S3Store, s3_client_from_connection
from restorable.storage.memory import MemoryStore
from restorable.storage.protocol import Store

pytestmark = pytest.mark.integration

MiB = 1 << 20


@pytest.fixture(params=["memory", "s3"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "memory":
        return MemoryStore("contract", part_size=5 * MiB)
    seaweed = request.getfixturevalue("seaweed")
    bucket = request.getfixturevalue("bucket")
    client = s3_client_from_connection(seaweed.connection("contract"))
    return S3Store(client, bucket, part_size=5 * MiB, backoff_base=0.01)


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _until() -> dt.datetime:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(microsecond=0)


def test_put_get_head_and_missing_keys(store: Store) -> None:
    result = store.put_bytes("c/1/small", b"hello")
    assert (result.size, result.parts, result.checksum) == (5, 1, _sha256(b"hello"))
    assert store.get_bytes("c/1/small") == b"hello"
    with store.open_read("c/1/small") as body:
        assert body.read() == b"hello"
    head = store.head("c/1/small")
    assert head["ContentLength"] == 5 and head["ChecksumSHA256"] == result.checksum
    assert head["VersionId"] == result.version_id
    store.put_json("c/1/m.json", {"b": 2, "a": 1})
    assert store.get_json("c/1/m.json") == {"a": 1, "b": 2}
    assert store.head("c/1/nope") is None and not store.exists("c/1/nope")
    with pytest.raises(NotFound):
        store.get_bytes("c/1/nope")


def test_conditional_put_and_delete_markers(store: Store) -> None:
    first = store.put_bytes("c/2/manifest.json", b"1", if_none_match=True)
    with pytest.raises(ObjectExists):
        store.put_bytes("c/2/manifest.json", b"2", if_none_match=True)
    assert store.get_bytes("c/2/manifest.json") == b"1"
    store.delete_object("c/2/manifest.json")
    assert not store.exists("c/2/manifest.json")
    assert store.get_bytes("c/2/manifest.json", version_id=first.version_id) == b"1"
    # A deleted key may be written again, conditionally.
    store.put_bytes("c/2/manifest.json", b"3", if_none_match=True)
    assert store.delete_all_versions("c/2/manifest.json") == 3
    assert store.head("c/2/manifest.json", version_id=first.version_id) is None


def test_listing_is_current_objects_in_key_order(store: Store) -> None:
    for key in ("c/3/b", "c/3/a/x", "c/4/other", "c/3/c"):
        store.put_bytes(key, key.encode())
    store.delete_object("c/3/c")
    listed = list(store.list_objects("c/3/"))
    assert [(o.key, o.size, o.storage_class) for o in listed] == [("c/3/a/x", 7, "STANDARD"), ("c/3/b", 5, "STANDARD")]
    assert listed[1].etag == hashlib.md5(b"c/3/b").hexdigest()


def test_multipart_checksum_is_the_composite_of_the_part_size_split(store: Store) -> None:
    data = os.urandom(12 * MiB + 7)
    with store.multipart_upload("c/5/data", metadata={"plain-sha256": "x"}) as writer:
        for i in range(0, len(data), MiB):
            writer.write(data[i : i + MiB])
    sizes = [store.part_size_for(n) for n in (1, 2)]
    parts = [data[: sizes[0]], data[sizes[0] : sizes[0] + sizes[1]], data[sum(sizes) :]]
    digests = b"".join(hashlib.sha256(p).digest() for p in parts)
    assert writer.result.checksum == f"{_sha256(digests)}-3"
    assert (writer.result.size, writer.result.parts, writer.bytes_written) == (len(data), 3, len(data))
    assert store.get_bytes("c/5/data") == data
    assert store.head("c/5/data")["Metadata"] == {"plain-sha256": "x"}


def test_a_failed_upload_leaves_nothing_and_keeps_the_error_type(store: Store) -> None:
    with pytest.raises(ToolError, match="aborted"):
        with store.multipart_upload("c/6/data") as writer:
            writer.write(b"partial")
            assert [u.key for u in store.list_multipart_uploads("c/6/")] == ["c/6/data"]
            raise ToolError("pg_dump exited 1")
    with pytest.raises(StorageError, match="aborted"):
        with store.multipart_upload("c/6/data") as writer:
            raise ValueError("boom")
    assert not store.exists("c/6/data")
    assert store.list_multipart_uploads("c/6/") == []


def test_retention_refuses_deleting_a_version_not_a_marker(store: Store) -> None:
    until = _until()
    version = store.put_bytes("c/7/data", b"x", lock_mode="GOVERNANCE", retain_until=until).version_id
    mode, retained = store.get_retention("c/7/data")
    assert mode == "GOVERNANCE" and abs((retained - until).total_seconds()) < 2
    assert store.head("c/7/data", checksum=False)["ObjectLockMode"] == "GOVERNANCE"
    with pytest.raises(ObjectLocked) as info:
        store.delete_object("c/7/data", version)
    assert info.value.mode == "GOVERNANCE" and abs((info.value.retain_until - until).total_seconds()) < 2
    store.delete_object("c/7/data")
    assert not store.exists("c/7/data")
    with pytest.raises(ObjectLocked):
        store.delete_all_versions("c/7/data")
    assert store.get_bytes("c/7/data", version_id=version) == b"x"
    store.put_bytes("c/7/free", b"x")
    assert store.get_retention("c/7/free") is None and store.get_legal_hold("c/7/free") is False


def test_legal_hold_blocks_until_lifted(store: Store) -> None:
    version = store.put_bytes("c/8/data", b"held").version_id
    store.set_legal_hold("c/8/data", True)
    assert store.get_legal_hold("c/8/data") is True
    assert store.head("c/8/data", checksum=False)["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(ObjectLocked) as info:
        store.delete_object("c/8/data", version)
    assert info.value.legal_hold
    store.set_legal_hold("c/8/data", False)
    assert store.delete_all_versions("c/8/data") == 1


def test_copy_storage_class_makes_a_new_version_with_the_lock(store: Store) -> None:
    until = _until()
    old = store.put_bytes("c/9/data", b"tiered", lock_mode="GOVERNANCE", retain_until=until).version_id
    new = store.copy_storage_class("c/9/data", "STANDARD_IA")
    assert new and new != old
    head = store.head("c/9/data")
    assert head["StorageClass"] == "STANDARD_IA" and head["ObjectLockMode"] == "GOVERNANCE"
    assert [o.storage_class for o in store.list_objects("c/9/")] == ["STANDARD_IA"]
    assert store.get_bytes("c/9/data") == b"tiered" == store.get_bytes("c/9/data", version_id=old)
    with pytest.raises(NotFound):
        store.copy_storage_class("c/9/nope", "STANDARD_IA")


def test_bucket_settings_of_a_fresh_locked_versioned_bucket(store: Store) -> None:
    store.head_bucket()
    assert store.get_bucket_versioning().get("Status") == "Enabled"
    assert (store.get_object_lock_configuration() or {}).get("ObjectLockEnabled") == "Enabled"
    assert store.get_bucket_lifecycle_rules() is None
    rule = {"ID": "contract", "Status": "Enabled", "Filter": {"Prefix": "c/"}, "Expiration": {"Days": 3}}
    store.put_bucket_lifecycle_rules([rule])
    assert store.get_bucket_lifecycle_rules() == [rule]


def test_put_metadata_and_versions_oldest_first_with_delete_markers(store: Store) -> None:
    first = store.put_bytes("c/v/wal", b"one", if_none_match=True, metadata={"restorable-sha256": "ab" * 32})
    assert store.head("c/v/wal")["Metadata"] == {"restorable-sha256": "ab" * 32}
    second = store.put_bytes("c/v/wal", b"two")
    store.put_bytes("c/v/wal-other", b"a key with the same prefix is not a version")
    versions = store.list_versions("c/v/wal")
    assert [v.version_id for v in versions] == [first.version_id, second.version_id]
    assert [v.is_latest for v in versions] == [False, True] and [v.size for v in versions] == [3, 3]
    assert store.head("c/v/wal", version_id=first.version_id)["Metadata"]["restorable-sha256"] == "ab" * 32
    store.delete_object("c/v/wal")
    after = store.list_versions("c/v/wal")
    assert [v.delete_marker for v in after] == [False, False, True] and after[-1].is_latest
    assert store.list_versions("c/v/none") == []
