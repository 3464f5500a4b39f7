"""wal-status from the spool, the state file and the bucket, with the archiver down or running."""

from __future__ import annotations

import os
from pathlib import Path

from restorable.config import parse_config
from restorable.repository.layout import Layout
from restorable.services import Services
from restorable.storage.memory import MemoryStore
from restorable.stream.keys import generate_identity
from restorable.wal.objects import encode_wal_file, wal_object_metadata
from restorable.wal.state import write_state
from restorable.wal.status import wal_status

_, RECIPIENT = generate_identity()


def _services(spool: Path, alarm: int = 100) -> Services:
    data = {
        "storage": {"conn_id": "s3", "bucket": "wal-bucket"},
        "encryption": {"recipients": [RECIPIENT]},
        "databases": [
            {
                "id": "shop",
                "engine": "postgres",
                "conn_id": "src",
                "physical": {"wal": {"spool_dir": str(spool), "spool_alarm": alarm, "spool_max": 10_000}},
            }
        ],
    }
    return Services(parse_config(data, Path("restorable.yaml"), {}), resolve=lambda conn_id: None)


def test_a_dead_archiver_a_growing_spool_and_the_bucket_are_all_reported(tmp_path):
    store = MemoryStore()
    for name in ("000000010000000000000004", "000000020000000000000005", "00000002.history"):
        body = encode_wal_file(b"x", recipients=[RECIPIENT])
        store.put_bytes(Layout("restorable").wal_key("shop", name), body.body, metadata=wal_object_metadata("0", 1))
    (tmp_path / "000000020000000000000006").write_bytes(b"w" * 500)
    os.utime(tmp_path / "000000020000000000000006", (0, 1_000_000_000))
    write_state(tmp_path / ".restorable-wal-state.json", {"running": True, "pid": 999_999_999, "alarms": []})
    status = wal_status(_services(tmp_path), "shop", store=store)
    assert status["archiver"]["running"] is False  # its pid is gone, whatever the file says
    assert {a["kind"] for a in status["alarms"]} == {"archiver_down", "spool_alarm"}
    assert status["queue"]["files"] == 1 and status["queue"]["oldest"]["name"] == "000000020000000000000006"
    assert status["queue"]["oldest"]["age_seconds"] > 1e8
    assert status["bucket"]["newest_segment"] == "000000020000000000000005"
    assert status["bucket"]["newest_per_timeline"] == {
        "00000001": "000000010000000000000004",
        "00000002": "000000020000000000000005",
    }
    assert status["bucket"]["history_files"] == ["00000002.history"]


def test_a_running_archiver_s_own_alarms_are_passed_on(tmp_path):
    alarm = {"name": "file:x", "kind": "conflict", "message": "m"}
    write_state(tmp_path / ".restorable-wal-state.json", {"running": True, "pid": os.getpid(), "alarms": [alarm]})
    status = wal_status(_services(tmp_path, alarm=5000), "shop", store=MemoryStore())
    assert status["archiver"]["running"] is True and status["alarms"] == [alarm]
    assert status["queue"] == {"files": 0, "bytes": 0, "spool_bytes": status["queue"]["spool_bytes"], "oldest": None}
