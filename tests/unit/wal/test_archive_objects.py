"""The archived object format, the uploader's outcomes and the continuity check, on a MemoryStore."""

from __future__ import annotations

import pytest

from restorable.exceptions import IntegrityError, NotFound
from restorable.repository.layout import Layout
from restorable.storage.memory import MemoryStore
from restorable.stream.keys import generate_identity
from restorable.wal.continuity import check_continuity
from restorable.wal.objects import archived_version, encode_wal_file, read_wal_file, wal_object_metadata
from restorable.wal.uploader import ALREADY, ARCHIVED, CONFLICT, UploadSettings, upload_wal_file

IDENTITY, RECIPIENT = generate_identity()
LAYOUT = Layout("r")
SEG = 16 * 1024 * 1024


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def _settings() -> UploadSettings:
    return UploadSettings("shop", (RECIPIENT,))


def _spool_file(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_upload_then_read_back_and_the_same_file_again_is_already_archived(store, tmp_path):
    data = b"wal" * 5000
    path = _spool_file(tmp_path, "000000010000000000000003", data)
    first = upload_wal_file(store, LAYOUT, _settings(), path)
    assert first.status == ARCHIVED and first.stored_size < len(data)
    assert read_wal_file(store, LAYOUT, IDENTITY, "shop", path.name) == data
    again = upload_wal_file(store, LAYOUT, _settings(), path)
    assert again.status == ALREADY
    assert len(store.list_versions(LAYOUT.wal_key("shop", path.name))) == 1


def test_other_content_under_an_archived_name_is_a_conflict_and_nothing_is_written(store, tmp_path):
    name = "000000010000000000000004"
    upload_wal_file(store, LAYOUT, _settings(), _spool_file(tmp_path, name, b"a" * 100))
    (tmp_path / "other").mkdir()
    outcome = upload_wal_file(store, LAYOUT, _settings(), _spool_file(tmp_path / "other", name, b"b" * 100))
    assert outcome.status == CONFLICT and outcome.found_sha256 != outcome.plain_sha256
    assert len(store.list_versions(LAYOUT.wal_key("shop", name))) == 1
    assert read_wal_file(store, LAYOUT, IDENTITY, "shop", name) == b"a" * 100


def test_a_later_version_is_read_past_a_partial_takes_the_newest_and_a_deleted_file_is_missing(store, tmp_path):
    name = "000000010000000000000005"
    upload_wal_file(store, LAYOUT, _settings(), _spool_file(tmp_path, name, b"original"))
    forged = encode_wal_file(b"forged", recipients=[RECIPIENT])
    store.put_bytes(LAYOUT.wal_key("shop", name), forged.body, metadata=wal_object_metadata(forged.plain_sha256, 6))
    archived = archived_version(store, LAYOUT, "shop", name)
    assert archived.overwritten == 1
    assert read_wal_file(store, LAYOUT, IDENTITY, "shop", name) == b"original"

    partial = name + ".partial"
    for content in (b"grow", b"growing"):
        upload_wal_file(store, LAYOUT, _settings(), _spool_file(tmp_path, partial, content))
    assert read_wal_file(store, LAYOUT, IDENTITY, "shop", partial) == b"growing"

    store.delete_object(LAYOUT.wal_key("shop", name))
    with pytest.raises(NotFound):
        read_wal_file(store, LAYOUT, IDENTITY, "shop", name)


def test_a_body_that_does_not_match_its_metadata_or_a_foreign_object_is_refused(store):
    encoded = encode_wal_file(b"real", recipients=[RECIPIENT])
    key = LAYOUT.wal_key("shop", "000000010000000000000006")
    store.put_bytes(key, encoded.body, metadata=wal_object_metadata("0" * 64, 4))
    with pytest.raises(IntegrityError, match="altered"):
        read_wal_file(store, LAYOUT, IDENTITY, "shop", "000000010000000000000006")
    store.put_bytes(LAYOUT.wal_key("shop", "000000010000000000000007"), encoded.body)
    with pytest.raises(IntegrityError, match="not written by Restorable"):
        read_wal_file(store, LAYOUT, IDENTITY, "shop", "000000010000000000000007")


def _archive(store, name: str, data: bytes = b"x") -> None:
    encoded = encode_wal_file(data, recipients=[RECIPIENT])
    size = SEG if len(name) == 24 else len(data)
    store.put_bytes(
        LAYOUT.wal_key("shop", name), encoded.body, metadata=wal_object_metadata(encoded.plain_sha256, size)
    )


def test_continuity_finds_gaps_per_timeline_and_checks_history_files(store):
    for n in (2, 3, 5, 6, 9):
        _archive(store, f"0000000100000000000000{n:02X}")
    report = check_continuity(store, LAYOUT, "shop", identity=IDENTITY)
    assert report.start == "000000010000000000000002" and report.start_source == "oldest archived"
    assert [(g.first, g.last, g.segments) for g in report.gaps] == [
        ("000000010000000000000004", "000000010000000000000004", 1),
        ("000000010000000000000007", "000000010000000000000008", 2),
    ]
    assert report.segment_size == SEG
    # --from before the oldest archived: those are missing too.
    early = check_continuity(store, LAYOUT, "shop", identity=IDENTITY, start="000000010000000000000001")
    assert early.gaps[0].first == "000000010000000000000001"

    # Timeline 2 switched off timeline 1 in segment 6: it needs 2.history, begins at segment 6.
    for n in (6, 7):
        _archive(store, f"0000000200000000000000{n:02X}")
    no_history = check_continuity(store, LAYOUT, "shop", identity=IDENTITY, start="000000010000000000000009")
    assert any("no 00000002.history" in p for p in no_history.history_problems)
    _archive(store, "00000002.history", b"1\t0/6000100\tno recovery target specified\n")
    clean = check_continuity(store, LAYOUT, "shop", identity=IDENTITY, start="000000010000000000000005")
    assert clean.history_problems == [] and [g.timeline for g in clean.gaps] == [1]
    assert clean.newest == {1: "000000010000000000000009", 2: "000000020000000000000007"}
    # A history that does not extend its parent's is reported.
    _archive(store, "00000003.history", b"1\t0/2000000\tx\n2\t0/7000000\ty\n")
    _archive(store, "000000030000000000000007")
    bad = check_continuity(store, LAYOUT, "shop", identity=IDENTITY, start="000000010000000000000005")
    assert any("does not extend 00000002.history" in p for p in bad.history_problems)


def test_continuity_starts_at_the_oldest_physical_base_backup_and_names_the_backups_a_gap_breaks(store):
    for n in (3, 4, 6, 7):
        _archive(store, f"0000000100000000000000{n:02X}")
    for backup_id, start in (
        ("20261203T010000Z-0000000a", "000000010000000000000003"),
        ("20261203T020000Z-0000000b", "000000010000000000000007"),
    ):
        store.put_json(
            LAYOUT.manifest_key("shop", backup_id),
            {"kind": "physical", "backup_id": backup_id, "wal": {"start_segment": start}},
        )
    report = check_continuity(store, LAYOUT, "shop", identity=IDENTITY)
    assert (report.start, report.start_source) == ("000000010000000000000003", "base")
    assert [(g.first, g.last) for g in report.gaps] == [("000000010000000000000005", "000000010000000000000005")]
    assert [b["backup_id"] for b in report.broken_backups] == ["20261203T010000Z-0000000a"]
