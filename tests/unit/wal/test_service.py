"""The archive loop on a MemoryStore and a temporary spool: upload and removal, order, a conflict
that stays in the spool, failed uploads retried with backoff, alarms on the spool's bounds."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from restorable.config import parse_config
from restorable.repository.layout import Layout
from restorable.services import Services
from restorable.storage.memory import MemoryStore
from restorable.stream.keys import generate_identity
from restorable.wal.objects import read_wal_file
from restorable.wal.service import WalArchiver

IDENTITY, RECIPIENT = generate_identity()


def _archiver(spool: Path, store: MemoryStore, **wal) -> WalArchiver:
    data = {
        "storage": {"conn_id": "s3", "bucket": "wal-bucket"},
        "encryption": {"recipients": [RECIPIENT]},
        "databases": [
            {
                "id": "shop",
                "engine": "postgres",
                "conn_id": "src",
                "physical": {"wal": {"spool_dir": str(spool), **{"upload_concurrency": 2, **wal}}},
            }
        ],
    }
    services = Services(parse_config(data, Path("restorable.yaml"), {}), resolve=lambda conn_id: None)
    return WalArchiver(services, "shop", store=store, heartbeat=False)


def _run_until(archiver: WalArchiver, pool: ThreadPoolExecutor, done, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, archiver.state(running=True)
        archiver.tick(pool)
        time.sleep(0.02)


@pytest.fixture
def pool():
    with ThreadPoolExecutor(2) as executor:
        yield executor


def test_files_are_uploaded_history_first_and_removed_a_conflict_stays(tmp_path, pool):
    store = MemoryStore()
    archiver = _archiver(tmp_path, store, upload_concurrency=1)
    archiver._open_spool()
    names = ["000000010000000000000002", "00000002.history", "000000010000000000000001"]
    for name in names:
        (tmp_path / name).write_bytes(name.encode() * 100)
    (tmp_path / ".tmp.000000010000000000000003.77").write_bytes(b"in progress")
    _run_until(archiver, pool, lambda: not archiver.spool.files() and not archiver._in_flight)
    for name in names:
        assert read_wal_file(store, Layout("restorable"), IDENTITY, "shop", name) == name.encode() * 100
    written = {n: store.list_versions(Layout("restorable").wal_key("shop", n))[0].version_id for n in names}
    assert sorted(written, key=written.get) == ["00000002.history", names[2], names[0]]
    assert (tmp_path / ".tmp.000000010000000000000003.77").exists()  # an archive step in progress: not touched
    assert archiver.last_segment == "000000010000000000000002"

    (tmp_path / names[0]).write_bytes(b"different")
    _run_until(archiver, pool, lambda: archiver.counts["conflict"] == 1)
    assert (tmp_path / names[0]).exists()
    assert [a["kind"] for a in archiver.state(running=True)["alarms"]] == ["conflict"]
    (tmp_path / names[0]).unlink()
    archiver.tick(pool)
    assert archiver.alarms == {}


def test_a_failing_bucket_keeps_files_and_retries_them_with_backoff(tmp_path, pool):
    store = MemoryStore()
    archiver = _archiver(tmp_path, store)
    archiver._open_spool()
    (tmp_path / "000000010000000000000005").write_bytes(b"w" * 1000)
    store.denied.add("PutObject")
    _run_until(archiver, pool, lambda: archiver.counts["failed_attempts"] >= 2)
    assert (tmp_path / "000000010000000000000005").exists()
    assert archiver._not_before["000000010000000000000005"] > time.monotonic() - 0.1
    store.denied.clear()
    _run_until(archiver, pool, lambda: not (tmp_path / "000000010000000000000005").exists())
    assert archiver.counts["archived"] == 1


def test_the_spool_over_its_alarm_and_its_bound_raises_alarms(tmp_path, pool):
    store = MemoryStore()
    store.denied.add("PutObject")
    archiver = _archiver(tmp_path, store, spool_alarm=1000, spool_max=3000)
    archiver._open_spool()
    (tmp_path / "000000010000000000000001").write_bytes(b"w" * 1500)
    archiver.tick(pool)
    assert set(archiver.alarms) == {"spool_alarm"}
    (tmp_path / "000000010000000000000002").write_bytes(b"w" * 1500)
    archiver.tick(pool)
    assert set(archiver.alarms) == {"spool_alarm", "spool_full"}
    assert archiver.state(running=True)["queue"]["files"] == 2


def test_a_second_archiver_on_the_same_spool_is_refused(tmp_path):
    from restorable.exceptions import RestorableError

    first = _archiver(tmp_path, MemoryStore())
    first._open_spool()
    with pytest.raises(RestorableError, match="already running"):
        _archiver(tmp_path, MemoryStore())._open_spool()


def test_a_file_replaced_while_it_uploads_is_kept_and_then_found_in_conflict(tmp_path, pool):
    store = MemoryStore()
    archiver = _archiver(tmp_path, store, upload_concurrency=1)
    archiver._open_spool()
    name = "000000010000000000000007"
    (tmp_path / name).write_bytes(b"a" * 1000)
    put = store.put_bytes

    def put_then_replace(key, body, **kwargs):
        result = put(key, body, **kwargs)
        (tmp_path / name).write_bytes(b"b" * 1001)  # replaced after it was read
        return result

    store.put_bytes = put_then_replace
    _run_until(archiver, pool, lambda: archiver.counts["archived"] == 1 and not archiver._in_flight)
    store.put_bytes = put
    assert (tmp_path / name).read_bytes() == b"b" * 1001  # never uploaded: not removed
    _run_until(archiver, pool, lambda: archiver.counts["conflict"] == 1)
    assert read_wal_file(store, Layout("restorable"), IDENTITY, "shop", name) == b"a" * 1000
