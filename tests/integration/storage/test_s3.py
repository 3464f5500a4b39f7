"""S3Store against a real SeaweedFS: multipart streaming, retries, aborts, Object Lock, conditional puts.

Faults are injected into real requests through botocore's event hooks (a 503 or a dropped
connection instead of sending; a body that breaks mid-read) or by killing the server: S3 itself
is never mocked.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
import threading
import time
from pathlib import Path

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, ResponseStreamingError

from devstack.seaweedfs import SeaweedS3
from restorable.exceptions import ConfigError, NotFound, StorageError, ToolError
from restorable.storage import ObjectExists, ObjectLocked, S3Store, s3_client_from_connection
from restorable.stream import decode_stream, encode_stream, generate_identity

pytestmark = pytest.mark.integration

MiB = 1 << 20


def _store(seaweed, bucket: str, **kw) -> S3Store:
    kw.setdefault("part_size", 5 * MiB)
    kw.setdefault("backoff_base", 0.01)
    return S3Store(s3_client_from_connection(seaweed.connection("test_s3")), bucket, **kw)


def _write_in_chunks(writer, data: bytes, chunk: int = MiB) -> None:
    for i in range(0, len(data), chunk):
        writer.write(data[i : i + chunk])


def _composite(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.sha256(p).digest() for p in parts)
    return f"{base64.b64encode(hashlib.sha256(digests).digest()).decode()}-{len(parts)}"


class _PartSpy:
    """Records the size of every UploadPart body as botocore builds the request."""

    def __init__(self, client) -> None:
        self.by_number: dict[int, int] = {}
        client.meta.events.register("before-parameter-build.s3.UploadPart", self)

    def __call__(self, params, **_):
        self.by_number[params["PartNumber"]] = len(params["Body"])

    @property
    def sizes(self) -> list[int]:
        """Part sizes in part order."""
        return [self.by_number[n] for n in sorted(self.by_number)]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_):
        yield self._body


# -- streaming uploads ---------------------------------------------------------------------
def test_multipart_round_trip_with_verified_checksums(seaweed, bucket) -> None:
    store = _store(seaweed, bucket)
    spy = _PartSpy(store.client)
    data = os.urandom(12 * MiB + 12345)
    with store.multipart_upload("db/1/data.bin") as writer:
        _write_in_chunks(writer, data, 65_552)  # the size age hands over

    result = writer.result
    assert result.parts == len(spy.sizes) == 3
    assert spy.sizes == [5 * MiB, 5 * MiB, 2 * MiB + 12345]  # every part but the last is exact
    assert result.size == len(data) == sum(spy.sizes)
    # Our composite checksum, computed from the parts actually sent, is what the server recorded.
    offsets = [0, spy.sizes[0], spy.sizes[0] + spy.sizes[1], len(data)]
    parts = [data[offsets[i] : offsets[i + 1]] for i in range(3)]
    assert result.checksum == _composite(parts)
    head = store.head("db/1/data.bin")
    assert head["ChecksumSHA256"] == result.checksum
    assert head["ContentLength"] == len(data)
    assert head["VersionId"] == result.version_id
    assert store.get_bytes("db/1/data.bin") == data
    assert store.list_multipart_uploads("db/") == []


def test_encode_upload_download_decode(seaweed, bucket) -> None:
    store = _store(seaweed, bucket)
    secret, public = generate_identity()
    data = os.urandom(3 * MiB) + b"row\t42\tsome text\n" * 400_000
    with store.multipart_upload("db/2/data.zst.age") as writer:
        enc = encode_stream(io.BytesIO(data), writer, recipients=[public])
    assert writer.result.size == enc.stored_bytes

    out = io.BytesIO()
    with store.open_read("db/2/data.zst.age") as body:
        dec = decode_stream(body, out, identity=secret)
    assert out.getvalue() == data
    assert dec == enc


def test_stream_smaller_than_a_part_and_empty_stream(seaweed, bucket) -> None:
    store = _store(seaweed, bucket)
    with store.multipart_upload("small") as writer:
        writer.write(b"tiny")
    assert writer.result.parts == 1 and writer.result.size == 4
    assert writer.result.checksum == _composite([b"tiny"])
    assert store.get_bytes("small") == b"tiny"

    with store.multipart_upload("empty"):
        pass
    assert store.get_bytes("empty") == b""
    assert store.head("empty")["ContentLength"] == 0


def test_part_size_grows_so_parts_never_run_out(seaweed, bucket) -> None:
    # max_parts=10 doubles the part size after every part: 5, 10, 20 MiB...
    store = _store(seaweed, bucket, max_parts=10)
    spy = _PartSpy(store.client)
    data = os.urandom(16 * MiB)
    with store.multipart_upload("grow") as writer:
        _write_in_chunks(writer, data)
    assert spy.sizes == [5 * MiB, 10 * MiB, 1 * MiB]
    assert store.get_bytes("grow") == data

    # With S3's real limit, 10,000 growing parts hold more than S3's 5 TiB maximum object.
    default = S3Store(store.client, bucket)
    assert sum(default.part_size_for(n) for n in range(1, 10_001)) > 5 * 2**40
    assert default.part_size_for(1) == 16 * MiB and default.part_size_for(1001) == 32 * MiB


def test_stream_needing_too_many_parts_is_refused_and_aborted(seaweed, bucket) -> None:
    store = _store(seaweed, bucket, max_parts=2)
    with pytest.raises(StorageError, match="more than 2 parts"):
        with store.multipart_upload("toolong") as writer:
            _write_in_chunks(writer, os.urandom(16 * MiB))
    assert store.list_multipart_uploads("toolong") == []
    assert not store.exists("toolong")


def test_in_flight_parts_are_bounded(seaweed, bucket) -> None:
    store = _store(seaweed, bucket, max_in_flight=2)
    active = 0
    peak = 0
    lock = threading.Lock()

    def slow_send(request, **_):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.3)
        with lock:
            active -= 1

    store.client.meta.events.register("before-send.s3.UploadPart", slow_send)
    with store.multipart_upload("bounded") as writer:
        _write_in_chunks(writer, os.urandom(30 * MiB))
    assert writer.result.parts == 6
    assert peak == 2


def test_part_buffers_are_reused(seaweed, bucket) -> None:
    """12 parts through 2 slots use at most 4 buffers: fresh ones would cost a page fault per 4 KiB."""
    store = _store(seaweed, bucket, max_in_flight=2)
    bodies: dict[int, object] = {}  # kept alive, so a freed buffer's id cannot come back as a new one's

    def record(params, **_):
        bodies[id(params["Body"])] = params["Body"]

    store.client.meta.events.register("before-parameter-build.s3.UploadPart", record)
    data = os.urandom(12 * 5 * MiB + 7)
    with store.multipart_upload("reused") as writer:
        _write_in_chunks(writer, data, 3 * MiB + 1)  # writes straddle part boundaries
    assert writer.result.parts == 13
    assert len(bodies) <= 2 + 1 + 1  # in flight, being filled, and the short last part
    assert store.get_bytes("reused") == data


# -- failures ------------------------------------------------------------------------------
def test_exception_in_block_aborts_and_leaves_nothing(seaweed, bucket) -> None:
    store = _store(seaweed, bucket)
    with pytest.raises(StorageError) as info:
        with store.multipart_upload("db/3/data.bin") as writer:
            _write_in_chunks(writer, os.urandom(11 * MiB))
            raise RuntimeError("pg_dump exited 1")
    assert "db/3/data.bin" in str(info.value) and "pg_dump exited 1" in str(info.value)
    assert store.list_multipart_uploads("db/") == []
    assert not store.exists("db/3/data.bin")

    # Our own errors keep their type (a failed dump is a ToolError, not a storage problem).
    with pytest.raises(ToolError):
        with store.multipart_upload("db/4/data.bin") as writer:
            writer.write(os.urandom(6 * MiB))
            raise ToolError("pg_dump failed", hint="see stderr")
    assert store.list_multipart_uploads("db/") == []
    assert not store.exists("db/4/data.bin")


def test_transient_part_failures_are_retried(seaweed, bucket) -> None:
    store = _store(seaweed, bucket, max_attempts=4)
    calls: list[int] = []

    def flaky(request, **_):
        calls.append(1)
        if len(calls) == 1:
            return AWSResponse(
                request.url,
                503,
                {"Content-Type": "application/xml"},
                _Raw(b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"),
            )
        if len(calls) == 2:
            raise ConnectionClosedError(endpoint_url=request.url)
        return None  # send for real

    store.client.meta.events.register("before-send.s3.UploadPart", flaky)
    data = os.urandom(11 * MiB)
    with store.multipart_upload("retried") as writer:
        _write_in_chunks(writer, data)
    assert writer.result.parts == 3
    assert len(calls) == 5  # 3 parts + 2 injected failures
    assert store.get_bytes("retried") == data


def test_part_failing_after_all_retries_aborts(seaweed, bucket) -> None:
    store = _store(seaweed, bucket, max_attempts=3)
    calls: list[int] = []

    def always_503(request, **_):
        calls.append(1)
        return AWSResponse(request.url, 500, {}, _Raw(b"<Error><Code>InternalError</Code></Error>"))

    store.client.meta.events.register("before-send.s3.UploadPart", always_503)
    with pytest.raises(StorageError) as info:
        with store.multipart_upload("doomed") as writer:
            _write_in_chunks(writer, os.urandom(20 * MiB))
    message = str(info.value)
    assert "doomed" in message and "after 3 attempts" in message and "InternalError" in message
    assert store.list_multipart_uploads("doomed") == []
    assert not store.exists("doomed")


def test_endpoint_killed_mid_upload(tmp_path: Path) -> None:
    """The server dies mid-stream: parts are retried, then StorageError; abort is attempted, and
    the leftover upload is visible (and abortable) once the server is back."""
    server = SeaweedS3(tmp_path / "weed")
    server.start()
    try:
        server.create_bucket("killed", object_lock=False, versioning=True)
        store = S3Store(
            s3_client_from_connection(server.connection()),
            "killed",
            part_size=5 * MiB,
            max_attempts=3,
            backoff_base=0.05,
        )
        with pytest.raises(StorageError) as info:
            with store.multipart_upload("db/data.bin") as writer:
                _write_in_chunks(writer, os.urandom(10 * MiB))
                server.kill()
                _write_in_chunks(writer, os.urandom(20 * MiB))
        message = str(info.value)
        assert "s3://killed/db/data.bin" in message
        assert "after 3 attempts" in message
        assert f"aborting upload {writer.upload_id} also failed" in message

        server.restart()
        leftover = store.list_multipart_uploads("db/")
        assert [u.upload_id for u in leftover] == [writer.upload_id]
        store.abort_multipart_upload("db/data.bin", writer.upload_id)
        assert store.list_multipart_uploads("db/") == []
        assert not store.exists("db/data.bin")
    finally:
        server.stop()


def test_read_resumes_after_a_dropped_connection(seaweed, bucket) -> None:
    store = _store(seaweed, bucket)
    data = os.urandom(7 * MiB)
    store.put_bytes("resume", data)
    broken: list[int] = []

    class BreaksOnce:
        def __init__(self, body) -> None:
            self._body, self._read = body, 0

        def read(self, n=-1):
            if not broken and self._read > 2 * MiB:
                broken.append(self._read)
                raise ResponseStreamingError(error="injected: connection reset")
            data = self._body.read(n)
            self._read += len(data)
            return data

        def close(self):
            self._body.close()

    def wrap_body(http_response, parsed, **_):
        if "Body" in parsed and not broken:
            parsed["Body"] = BreaksOnce(parsed["Body"])

    store.client.meta.events.register("after-call.s3.GetObject", wrap_body)
    with store.open_read("resume") as body:
        chunks = []
        while chunk := body.read(MiB):
            chunks.append(chunk)
    assert broken, "the fault was not injected"
    assert b"".join(chunks) == data


# -- small objects -------------------------------------------------------------------------
def test_put_get_json_head_list_and_not_found(seaweed, bucket) -> None:
    store = _store(seaweed, bucket)
    result = store.put_json("db/5/manifest.json", {"backup": 5, "ok": True})
    assert result.parts == 1 and result.version_id
    assert store.get_json("db/5/manifest.json") == {"backup": 5, "ok": True}
    store.put_bytes("db/5/verifications/a.json", b"{}", content_type="application/json")
    assert store.head("db/5/manifest.json")["ContentType"] == "application/json"
    assert store.exists("db/5/manifest.json") and not store.exists("db/5/nope")
    assert store.head("db/5/nope") is None

    listed = list(store.list_objects("db/5/"))
    assert [o.key for o in listed] == ["db/5/manifest.json", "db/5/verifications/a.json"]
    assert listed[1].size == 2 and listed[1].storage_class == "STANDARD"

    with pytest.raises(NotFound, match=f"s3://{bucket}/db/5/nope"):
        store.get_bytes("db/5/nope")
    store.delete_object("db/5/verifications/a.json")
    assert not store.exists("db/5/verifications/a.json")


def test_conditional_put_refuses_overwrite(seaweed, bucket) -> None:
    store = _store(seaweed, bucket)
    store.put_json("db/6/manifest.json", {"v": 1}, if_none_match=True)
    with pytest.raises(ObjectExists, match="already exists"):
        store.put_json("db/6/manifest.json", {"v": 2}, if_none_match=True)
    assert store.get_json("db/6/manifest.json") == {"v": 1}


def test_errors_name_bucket_and_key_without_secrets(seaweed, bucket) -> None:
    conn = seaweed.connection("bad_keys", secret_key="wrong-secret-value")
    store = S3Store(s3_client_from_connection(conn), bucket, max_attempts=1)
    with pytest.raises(StorageError) as info:
        store.put_bytes("k", b"x")
    text = str(info.value)
    assert f"s3://{bucket}/k" in text and "access key" in text
    assert "wrong-secret-value" not in text and info.value.permanent

    missing = _store(seaweed, "no-such-bucket-restorable")
    with pytest.raises(StorageError, match="NoSuchBucket"):
        missing.put_bytes("k", b"x")


def test_head_bucket_checks_the_bucket_and_names_a_missing_one(seaweed, bucket) -> None:
    _store(seaweed, bucket).head_bucket()
    with pytest.raises(StorageError, match="no-such-bucket-restorable does not exist") as info:
        _store(seaweed, "no-such-bucket-restorable").head_bucket()
    assert not isinstance(info.value, NotFound) and "storage.bucket" in str(info.value)


# -- Object Lock ---------------------------------------------------------------------------
def test_retention_blocks_delete_with_the_date(seaweed, bucket) -> None:
    store = _store(seaweed, bucket)
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(microsecond=0)
    with store.multipart_upload("db/7/data.bin", lock_mode="GOVERNANCE", retain_until=until) as writer:
        writer.write(os.urandom(MiB))
    version = writer.result.version_id

    mode, retained = store.get_retention("db/7/data.bin")
    assert mode == "GOVERNANCE" and abs((retained - until).total_seconds()) < 2
    with pytest.raises(ObjectLocked) as info:
        store.delete_object("db/7/data.bin", version)
    assert info.value.retain_until is not None and abs((info.value.retain_until - until).total_seconds()) < 2
    assert until.date().isoformat() in str(info.value)

    # Without a version id a versioned bucket only adds a delete marker; removing every
    # version then removes the marker but refuses the locked data.
    store.delete_object("db/7/data.bin")
    with pytest.raises(ObjectLocked):
        store.delete_all_versions("db/7/data.bin")
    assert store.head("db/7/data.bin", version_id=version) is not None

    store.put_bytes("db/7/manifest.json", b"{}", lock_mode="COMPLIANCE", retain_until=until)
    assert store.get_retention("db/7/manifest.json")[0] == "COMPLIANCE"
    store.put_bytes("db/7/free.json", b"{}")
    assert store.get_retention("db/7/free.json") is None


def test_legal_hold_blocks_delete_until_lifted(seaweed, bucket) -> None:
    store = _store(seaweed, bucket)
    result = store.put_bytes("db/8/data.bin", b"held")
    assert store.get_legal_hold("db/8/data.bin") is False
    store.set_legal_hold("db/8/data.bin", True)
    assert store.get_legal_hold("db/8/data.bin") is True
    with pytest.raises(ObjectLocked) as info:
        store.delete_object("db/8/data.bin", result.version_id)
    assert info.value.legal_hold and "legal hold" in str(info.value)
    store.set_legal_hold("db/8/data.bin", False)
    assert store.delete_all_versions("db/8/data.bin") == 1
    assert not store.exists("db/8/data.bin")


def test_lock_arguments_are_validated(seaweed, bucket) -> None:
    store = _store(seaweed, bucket)
    with pytest.raises(ConfigError):
        store.put_bytes("x", b"x", lock_mode="GOVERNANCE")
    with pytest.raises(ConfigError):
        store.put_bytes("x", b"x", lock_mode="FOREVER", retain_until=dt.datetime.now(dt.UTC))


# -- storage class -------------------------------------------------------------------------
@pytest.mark.parametrize("multipart_copy", [False, True], ids=["copy", "multipart-copy"])
def test_copy_storage_class_keeps_data_and_lock(seaweed, bucket, multipart_copy: bool) -> None:
    store = _store(seaweed, bucket)
    if multipart_copy:
        store.copy_part_threshold = 5 * MiB
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    data = os.urandom(11 * MiB)
    with store.multipart_upload("db/9/data.bin", lock_mode="GOVERNANCE", retain_until=until) as writer:
        _write_in_chunks(writer, data)
    new_version = store.copy_storage_class("db/9/data.bin", "STANDARD_IA")
    assert new_version and new_version != writer.result.version_id
    head = store.head("db/9/data.bin")
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert store.get_bytes("db/9/data.bin") == data
    assert [o.storage_class for o in store.list_objects("db/9/")] == ["STANDARD_IA"]


# -- connections ---------------------------------------------------------------------------
def test_upload_memory_is_bounded_by_parts_in_flight(seaweed, bucket) -> None:
    """60 MiB through 5 MiB parts, 2 in flight: Python holds about part_size x (2 + 2), not the stream."""
    import tracemalloc

    store = _store(seaweed, bucket, max_in_flight=2)
    block = os.urandom(64 * 1024)
    tracemalloc.start()
    try:
        with store.multipart_upload("bounded-memory") as writer:
            for _ in range(60 * 16):
                writer.write(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert writer.result.size == 60 * MiB and writer.result.parts == 12
    assert peak < 5 * MiB * (2 + 2) + 6 * MiB, f"peak {peak / MiB:.1f} MiB"
