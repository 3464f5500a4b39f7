"""MemoryStore: the in-memory Store that unit tests put in place of S3."""

from __future__ import annotations

import base64
import hashlib
import inspect
from datetime import UTC, datetime, timedelta

import pytest

from restorable.exceptions import IntegrityError, NotFound, StorageError, ToolError
from restorable.storage import AccessDenied, InvalidBucketState, ObjectExists, ObjectLocked, Unsupported
from restorable.storage.memory import MemoryStore
from restorable.storage.protocol import Store

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore("b", clock=lambda: NOW)


def test_memory_store_is_a_store_with_the_protocols_signatures() -> None:
    assert isinstance(MemoryStore(), Store)
    for name, member in vars(Store).items():
        if not callable(member) or name.startswith("_"):
            continue
        wanted = inspect.signature(member).parameters
        found = inspect.signature(getattr(MemoryStore, name)).parameters
        for param in wanted.values():
            if param.kind is param.VAR_KEYWORD:
                continue
            assert param.name in found, f"MemoryStore.{name} lacks {param.name}"
            assert found[param.name].kind == param.kind, f"MemoryStore.{name}({param.name})"
            assert (found[param.name].default is param.empty) == (param.default is param.empty), name


def test_put_get_head_and_checksums(store: MemoryStore) -> None:
    result = store.put_bytes("a/x", b"hello")
    assert result.checksum == base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
    assert (result.size, result.parts) == (5, 1) and result.version_id
    assert store.get_bytes("a/x") == b"hello"
    assert store.open_read("a/x").read() == b"hello"
    head = store.head("a/x")
    assert head["ContentLength"] == 5 and head["ChecksumSHA256"] == result.checksum
    assert head["VersionId"] == result.version_id
    assert "ChecksumSHA256" not in store.head("a/x", checksum=False)
    assert store.head("a/missing") is None and not store.exists("a/missing")
    with pytest.raises(NotFound):
        store.get_bytes("a/missing")


def test_json_round_trip_and_damaged_json(store: MemoryStore) -> None:
    store.put_json("m.json", {"b": 1, "a": [1, 2]})
    assert store.get_json("m.json") == {"a": [1, 2], "b": 1}
    assert store.head("m.json")["ContentType"] == "application/json"
    store.put_bytes("bad.json", b"{not json")
    with pytest.raises(IntegrityError, match="not valid JSON"):
        store.get_json("bad.json")


def test_if_none_match_refuses_an_existing_key_but_not_a_deleted_one(store: MemoryStore) -> None:
    store.put_bytes("k", b"1", if_none_match=True)
    with pytest.raises(ObjectExists):
        store.put_bytes("k", b"2", if_none_match=True)
    assert store.get_bytes("k") == b"1"
    store.delete_object("k")
    store.put_bytes("k", b"3", if_none_match=True)
    assert store.get_bytes("k") == b"3"


def test_versions_survive_overwrite_and_delete_marker(store: MemoryStore) -> None:
    first = store.put_bytes("k", b"1").version_id
    store.put_bytes("k", b"2")
    marker = store.delete_object("k")
    assert marker["DeleteMarker"] is True
    assert not store.exists("k") and list(store.list_objects()) == []
    assert store.get_bytes("k", version_id=first) == b"1"
    assert store.delete_all_versions("k") == 3  # two versions and the marker
    with pytest.raises(NotFound):
        store.get_bytes("k", version_id=first)


def test_list_objects_sorted_by_key_under_prefix(store: MemoryStore) -> None:
    for key in ("p/b", "p/a", "q/c", "p/c"):
        store.put_bytes(key, key.encode())
    store.copy_storage_class("p/c", "GLACIER")
    listed = list(store.list_objects("p/"))
    assert [o.key for o in listed] == ["p/a", "p/b", "p/c"]
    assert listed[0].size == 3 and listed[0].last_modified == NOW
    assert [o.storage_class for o in listed] == ["STANDARD", "STANDARD", "GLACIER"]
    assert listed[0].etag == hashlib.md5(b"p/a").hexdigest()


def test_multipart_upload_stores_on_clean_exit_with_s3s_composite_checksum() -> None:
    store = MemoryStore(part_size=5 << 20)
    data = b"x" * ((5 << 20) + 3)
    with store.multipart_upload("db/data", metadata={"m": "1"}) as writer:
        assert [u.key for u in store.list_multipart_uploads("db/")] == ["db/data"]
        writer.write(data[:100])
        writer.write(memoryview(data)[100:])
    assert store.list_multipart_uploads() == []
    parts = [data[: 5 << 20], data[5 << 20 :]]
    digests = b"".join(hashlib.sha256(p).digest() for p in parts)
    assert writer.result.checksum == f"{base64.b64encode(hashlib.sha256(digests).digest()).decode()}-2"
    assert (writer.result.parts, writer.result.size, writer.bytes_written) == (2, len(data), len(data))
    assert store.get_bytes("db/data") == data and store.head("db/data")["Metadata"] == {"m": "1"}


def test_multipart_upload_that_fails_leaves_nothing(store: MemoryStore) -> None:
    with pytest.raises(ToolError, match="aborted"):
        with store.multipart_upload("db/data") as writer:
            writer.write(b"partial")
            raise ToolError("pg_dump exited 1")
    with pytest.raises(StorageError, match="failed and was aborted"):
        with store.multipart_upload("db/data") as writer:
            raise ValueError("boom")
    assert not store.exists("db/data") and store.list_multipart_uploads() == []


def test_an_upload_aborted_meanwhile_does_not_complete(store: MemoryStore) -> None:
    with pytest.raises(StorageError, match="aborted"):
        with store.multipart_upload("db/data") as writer:
            writer.write(b"x")
            [pending] = store.list_multipart_uploads()
            store.abort_multipart_upload(pending.key, pending.upload_id)
    assert not store.exists("db/data")


def test_retention_refuses_deleting_the_version_but_not_adding_a_marker(store: MemoryStore) -> None:
    until = NOW + timedelta(days=7)
    version = store.put_bytes("k", b"1", lock_mode="governance", retain_until=until).version_id
    assert store.get_retention("k") == ("GOVERNANCE", until)
    assert store.head("k")["ObjectLockMode"] == "GOVERNANCE"
    with pytest.raises(ObjectLocked) as info:
        store.delete_object("k", version)
    assert info.value.retain_until == until and info.value.mode == "GOVERNANCE" and not info.value.legal_hold
    assert store.delete_object("k")["DeleteMarker"] is True
    with pytest.raises(ObjectLocked, match="1 version"):
        store.delete_all_versions("k")
    assert store.get_bytes("k", version_id=version) == b"1"


def test_retention_is_extended_freely_and_shortened_only_with_the_bypass(store: MemoryStore) -> None:
    store.put_bytes("k", b"1")
    assert store.get_retention("k") is None
    store.set_retention("k", "GOVERNANCE", NOW + timedelta(days=1))
    store.set_retention("k", "GOVERNANCE", NOW + timedelta(days=3))
    with pytest.raises(AccessDenied):
        store.set_retention("k", "GOVERNANCE", NOW + timedelta(days=2))
    store.set_retention("k", "GOVERNANCE", NOW + timedelta(days=2), bypass_governance=True)
    store.set_retention("k", "COMPLIANCE", NOW + timedelta(days=2), bypass_governance=True)
    with pytest.raises(AccessDenied):
        store.set_retention("k", "COMPLIANCE", NOW + timedelta(days=1), bypass_governance=True)
    assert store.get_retention("k") == ("COMPLIANCE", NOW + timedelta(days=2))


def test_legal_hold_blocks_delete_until_lifted(store: MemoryStore) -> None:
    version = store.put_bytes("k", b"1").version_id
    store.set_legal_hold("k", True)
    assert store.get_legal_hold("k") and store.head("k")["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(ObjectLocked) as info:
        store.delete_object("k", version)
    assert info.value.legal_hold
    store.set_legal_hold("k", False, version_id=version)
    assert store.delete_object("k", version)["VersionId"] == version
    assert not store.exists("k")


def test_copy_storage_class_keeps_the_lock_and_makes_a_new_version(store: MemoryStore) -> None:
    until = NOW + timedelta(days=1)
    old = store.put_bytes("k", b"data", lock_mode="COMPLIANCE", retain_until=until).version_id
    store.set_legal_hold("k", True)
    new = store.copy_storage_class("k", "STANDARD_IA")
    assert new != old and store.head("k")["StorageClass"] == "STANDARD_IA"
    assert store.get_retention("k") == ("COMPLIANCE", until) and store.get_legal_hold("k")
    assert store.get_bytes("k", version_id=old) == b"data"
    with pytest.raises(NotFound):
        store.copy_storage_class("missing", "GLACIER")


def test_object_lock_needs_a_bucket_with_object_lock() -> None:
    store = MemoryStore(object_lock=False)
    store.put_bytes("k", b"1")
    with pytest.raises(StorageError, match="no Object Lock"):
        store.set_legal_hold("k", True)


def test_unversioned_bucket_overwrites_and_deletes_for_good() -> None:
    store = MemoryStore(versioning=False, object_lock=False)
    assert store.put_bytes("k", b"1").version_id == "null"
    store.put_bytes("k", b"2")
    assert store.delete_all_versions("k") == 1
    store.put_bytes("k", b"3")
    store.delete_object("k")
    assert not store.exists("k") and store.delete_all_versions("k") == 0


def test_bucket_settings_bookkeeping_and_injected_refusals() -> None:
    store = MemoryStore(versioning=False, object_lock=False)
    store.head_bucket()
    assert store.get_bucket_versioning() == {}
    assert store.get_object_lock_configuration() is None
    with pytest.raises(InvalidBucketState):
        store.put_object_lock_configuration({"ObjectLockEnabled": "Enabled"})
    store.put_bucket_versioning("Enabled")
    store.put_object_lock_configuration({"ObjectLockEnabled": "Enabled"})
    assert store.get_object_lock_configuration() == {"ObjectLockEnabled": "Enabled"}
    assert store.get_bucket_encryption() is None and store.get_bucket_lifecycle_rules() is None
    store.put_bucket_lifecycle_rules([{"ID": "r", "Status": "Enabled"}])
    assert store.get_bucket_lifecycle_rules() == [{"ID": "r", "Status": "Enabled"}]
    store.unsupported.add("GetBucketEncryption")
    store.denied.add("HeadBucket")
    with pytest.raises(Unsupported) as unsupported:
        store.get_bucket_encryption()
    assert unsupported.value.code == "NotImplemented" and unsupported.value.permanent
    with pytest.raises(AccessDenied):
        store.head_bucket()
