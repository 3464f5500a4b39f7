"""One object to another bucket: streamed between two SeaweedFS instances in bounded memory, and
server-side in parts (UploadPartCopy) on one endpoint, each with the destination's lock and class."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
import uuid
from datetime import timedelta

import pytest

from devstack.seaweedfs import SeaweedS3
from restorable.copies.transfer import SERVER_SIDE, STREAMED, read_back, transfer
from restorable.repository.manifest import utcnow
from restorable.storage.s3 import S3Store, s3_client_from_connection
from restorable.storage.s3.limits import MiB

pytestmark = pytest.mark.integration


def _store(server, bucket: str, **kw) -> S3Store:
    return S3Store(s3_client_from_connection(server.connection("copy_s3")), bucket, **kw)


def _bucket(server, *, lock: bool) -> str:
    name = f"x-{uuid.uuid4().hex[:12]}"
    server.create_bucket(name, object_lock=lock, versioning=True)
    return name


def test_a_streamed_copy_holds_a_few_parts_in_memory_whatever_the_object_size(seaweed, bucket, region_b):
    size = 40 * MiB
    data = os.urandom(size)
    source = _store(seaweed, bucket)
    put = source.client.put_object(Bucket=bucket, Key="big/object", Body=data)
    del data  # only its digest is kept
    expected = hashlib.sha256(source.get_bytes("big/object")).hexdigest()
    dest = _store(region_b, _bucket(region_b, lock=True), part_size=5 * MiB, max_in_flight=2)
    until = utcnow() + timedelta(days=1)

    tracemalloc.start()
    try:
        moved = transfer(
            source,
            "big/object",
            put["VersionId"],
            dest,
            "copied/object",
            size=size,
            lock_mode="GOVERNANCE",
            retain_until=until,
            storage_class="STANDARD_IA",
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert moved.how == STREAMED  # two endpoints
    # Parts of 5 MiB, two in flight and one filling, plus a read buffer: far below the object's 40 MiB.
    assert peak < 24 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert read_back(dest, "copied/object", moved.version_id) == (expected, size)
    head = dest.head("copied/object")
    assert head["StorageClass"] == "STANDARD_IA" and head["ObjectLockMode"] == "GOVERNANCE"


def test_a_server_side_copy_above_the_copy_limit_goes_in_parts_and_keeps_its_lock(seaweed, bucket):
    data = os.urandom(12 * MiB + 123)
    source = _store(seaweed, bucket)
    put = source.client.put_object(Bucket=bucket, Key="obj", Body=data)
    dest_bucket = _bucket(seaweed, lock=True)
    try:
        dest = _store(seaweed, dest_bucket)
        dest.copy_part_threshold = 5 * MiB  # as an object above 5 GiB would be
        until = utcnow() + timedelta(days=2)
        moved = transfer(
            source,
            "obj",
            put["VersionId"],
            dest,
            "copy/obj",
            size=len(data),
            lock_mode="GOVERNANCE",
            retain_until=until,
        )
        assert moved.how == SERVER_SIDE
        assert read_back(dest, "copy/obj", moved.version_id) == (hashlib.sha256(data).hexdigest(), len(data))
        mode, held = dest.get_retention("copy/obj", version_id=moved.version_id)
        assert mode == "GOVERNANCE" and held >= until.replace(microsecond=0)
    finally:
        seaweed.delete_bucket(dest_bucket)


def test_one_endpoint_but_credentials_that_may_not_read_the_primary_stream_instead(tmp_path):
    from tests.conftest import _reap_if_killed

    # The destination's writer may touch its own bucket only: CopyObject from the primary is refused.
    scoped = {"eu_writer": {"actions": [f"{a}:dst-bucket" for a in ("Read", "Write", "List")]}}
    with SeaweedS3(tmp_path / "one_endpoint", identities=scoped) as server:
        _reap_if_killed(server, server.state_dir)
        server.create_bucket("src-bucket", object_lock=False, versioning=True)
        server.create_bucket("dst-bucket", object_lock=False, versioning=True)
        data = os.urandom(3 * MiB)
        source = _store(server, "src-bucket")
        put = source.client.put_object(Bucket="src-bucket", Key="obj", Body=data)
        conn = server.identity_connection("eu_writer")
        dest = S3Store(s3_client_from_connection(conn), "dst-bucket", max_attempts=1)
        assert dest.same_endpoint(source)
        moved = transfer(source, "obj", put["VersionId"], dest, "copy/obj", size=len(data))
        assert moved.how == STREAMED
        assert read_back(dest, "copy/obj", moved.version_id) == (hashlib.sha256(data).hexdigest(), len(data))
