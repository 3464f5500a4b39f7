"""Manifest format 2 (kind + objects[]) round-trips; format 1, as released, is still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from restorable.exceptions import IntegrityError
from restorable.metadata import SnapshotMetadata
from restorable.repository.manifest import (
    DUMP,
    FORMAT,
    BackupManifest,
    StoredObject,
    stored_objects_of,
)

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "manifest-format-1.json"


def format_1() -> dict:
    # Written by the released format-1 code (BackupManifest.to_dict before manifest format 2).
    return json.loads(FIXTURE.read_text())


def test_a_format_1_manifest_reads_as_a_logical_backup_with_one_dump_object():
    raw = format_1()
    assert raw["format"] == "restorable.manifest/1" and "data" in raw and "objects" not in raw
    manifest = BackupManifest.from_dict(raw)
    assert manifest.kind == "logical" and len(manifest.objects) == 1
    assert manifest.dump.key == raw["data"]["key"] and manifest.dump.role == DUMP
    assert manifest.dump.stored_sha256 == raw["data"]["stored_sha256"]
    assert manifest.stored_bytes == raw["data"]["stored_bytes"]
    assert manifest.metadata.row_counts == raw["metadata"]["row_counts"]
    summary = manifest.summary()
    assert summary["rows"] == sum(raw["metadata"]["row_counts"].values()) and summary["key"] == raw["data"]["key"]


def test_a_format_1_manifest_written_after_the_repository_move_reads_too():
    raw = {**format_1(), "format": "restorable.repository.manifest/1"}
    assert BackupManifest.from_dict(raw).dump.key == raw["data"]["key"]


def test_format_2_round_trips_and_names_kind_and_objects():
    manifest = BackupManifest.from_dict(format_1())
    written = manifest.to_dict()
    assert written["format"] == FORMAT and written["kind"] == "logical" and "data" not in written
    assert [o["role"] for o in written["objects"]] == [DUMP]
    assert set(written["objects"][0]) >= {
        "key",
        "plain_bytes",
        "stored_bytes",
        "plain_sha256",
        "stored_sha256",
        "parts",
        "version_id",
    }
    again = BackupManifest.from_dict(json.loads(json.dumps(written)))
    assert again == manifest


def test_several_objects_add_up_and_a_missing_role_is_a_clear_error():
    obj = StoredObject("a", 10, 4, "p", "s", 1, 8, role="base")
    manifest = BackupManifest(
        backup_id="20261203T083903Z-1a2b3c4d",
        database_id="shop",
        engine="postgres",
        dump_format="pg_dump-custom",
        created_at="2026-12-03T08:39:03Z",
        finished_at="2026-12-03T08:39:09Z",
        objects=[obj, StoredObject("b", 5, 3, "p2", "s2", 1, 8, role="base")],
        metadata=SnapshotMetadata("15", {}, {}),
        compression={},
        encryption={},
    )
    assert manifest.plain_bytes == 15 and manifest.stored_bytes == 7
    with pytest.raises(IntegrityError, match="2 objects with role 'base'"):
        manifest.object("base")
    with pytest.raises(IntegrityError, match="0 objects with role 'dump'"):
        _ = manifest.dump


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "restorable.manifest/9"}, "format 'restorable.manifest/9'"),
        ({"format": FORMAT, "kind": "incremental", "objects": []}, "kind 'incremental'"),
    ],
)
def test_formats_and_kinds_this_version_does_not_know_are_refused(change, message):
    raw = {**format_1(), **change}
    raw.pop("data", None) if "objects" in change else None
    with pytest.raises(IntegrityError, match=message):
        BackupManifest.from_dict(raw)


def test_stored_objects_of_reads_both_formats_and_damaged_ones():
    raw1 = format_1()
    assert stored_objects_of(raw1) == [raw1["data"]]
    raw2 = BackupManifest.from_dict(raw1).to_dict()
    assert [o["key"] for o in stored_objects_of(raw2)] == [raw1["data"]["key"]]
    assert stored_objects_of({"format": FORMAT, "objects": "nonsense"}) == []
    assert stored_objects_of({}) == []
