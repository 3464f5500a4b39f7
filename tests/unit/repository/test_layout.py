"""The bucket layout: every key the product writes parses back to what it is, and nothing else
is taken for a backup object (the orphan cleaner deletes only those)."""

from __future__ import annotations

import pytest

from restorable.repository.layout import BACKUP_OBJECT_KINDS, KeyKind, Layout, is_backup_id, wal_file_of
from restorable.repository.manifest import new_backup_id, utcnow

BACKUP = "20261203T083903Z-1a2b3c4d"


@pytest.mark.parametrize("prefix", ["restorable", "", "/team/backups/"])
def test_every_key_the_layout_builds_parses_back(prefix):
    layout = Layout(prefix)
    built = {
        layout.manifest_key("shop", BACKUP): KeyKind.MANIFEST,
        layout.data_key("shop", BACKUP, "dump"): KeyKind.DATA,
        layout.sealed_key("shop", BACKUP): KeyKind.SEALED,
        layout.verification_key("shop", BACKUP, "20261203T090000000000Z", "drill"): KeyKind.VERIFICATION,
        layout.wal_prefix("shop") + "000000010000000000000003.zst.age": KeyKind.WAL,
        layout.binlog_prefix("shop") + "mysql-bin.000042.zst.age": KeyKind.BINLOG,
        layout.keys_prefix + "kek/2026-12.json": KeyKind.KEY,
    }
    for key, kind in built.items():
        parsed = layout.parse(key)
        assert parsed.kind is kind, key
        assert parsed.is_backup_object == (kind in BACKUP_OBJECT_KINDS)
        if parsed.is_backup_object:
            assert (parsed.database, parsed.backup_id) == ("shop", BACKUP)
            assert key == layout.backup_prefix("shop", BACKUP) + parsed.name


@pytest.mark.parametrize(
    "key",
    [
        "restorable/shop/crashed/data.dump.zst.age",  # not a backup id
        "restorable/shop/20261203T083903Z/data.dump.zst.age",  # id without its hash
        "restorable/Shop/20261203T083903Z-1a2b3c4d/manifest.json",  # not a database id
        "restorable/shop/notes.txt",
        "restorable/README",
        "other-tool/shop/20261203T083903Z-1a2b3c4d/manifest.json",  # outside the prefix
        "restorable/shop//manifest.json",
    ],
)
def test_keys_it_does_not_know_are_unknown_never_backup_objects(key):
    parsed = Layout("restorable").parse(key)
    assert parsed.kind is KeyKind.UNKNOWN and not parsed.is_backup_object


def test_other_files_inside_a_backup_directory_belong_to_the_backup():
    parsed = Layout("restorable").parse(f"restorable/shop/{BACKUP}/tablespace-16384.tar.zst.age")
    assert parsed.kind is KeyKind.BACKUP_OTHER and parsed.is_backup_object and parsed.backup_id == BACKUP


def test_backup_ids_the_product_makes_are_backup_ids():
    assert is_backup_id(new_backup_id(utcnow()))
    assert is_backup_id(new_backup_id(utcnow(), "backup_shop/scheduled__2026-12-03"))
    assert not is_backup_id("wal") and not is_backup_id("binlog") and not is_backup_id("latest")


@pytest.mark.parametrize(
    ("wal_file", "timeline"),
    [
        ("000000010000000A000000FE", 1),
        ("000000020000000000000003.partial", 2),
        ("000000010000000000000002.00000028.backup", 1),
        ("0000000A.history", 10),
    ],
)
def test_wal_files_are_filed_under_their_timeline_and_parse_back(wal_file, timeline):
    layout = Layout("prod")
    key = layout.wal_key("shop", wal_file)
    assert key == f"prod/shop/wal/{timeline:08X}/{wal_file}.zst.age"
    parsed = layout.parse(key)
    assert parsed.kind is KeyKind.WAL and parsed.database == "shop" and not parsed.is_backup_object
    assert wal_file_of(parsed.name) == wal_file


@pytest.mark.parametrize("bad", ["", "00000001", "000000010000000A000000fe", "../00000001.history", "x.history"])
def test_a_name_postgresql_would_not_archive_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="not a WAL file name"):
        Layout("").wal_key("shop", bad)


def test_an_archive_object_filed_under_another_timeline_is_not_a_wal_file():
    assert wal_file_of("00000002/000000010000000000000003.zst.age") is None
    assert wal_file_of("00000001/000000010000000000000003") is None


def test_wrapped_keys_are_objects_of_their_backup():
    from restorable.repository.layout import KeyKind, Layout

    layout = Layout("p")
    own = layout.wrapped_key("shop", "20261203T083903Z-1a2b3c4d")
    rotated = layout.rewrapped_key("shop", "20261203T083903Z-1a2b3c4d", "20271203T000000000000Z", 2)
    assert rotated == "p/shop/20261203T083903Z-1a2b3c4d/keys/20271203T000000000000Z-v2.json"
    for key in (own, rotated):
        parsed = layout.parse(key)
        assert parsed.kind is KeyKind.WRAPPED_KEY and parsed.is_backup_object
        assert parsed.backup_id == "20261203T083903Z-1a2b3c4d"


@pytest.mark.parametrize("binlog_file", ["mariadb-bin.000042", "host.example-bin.001234", "mariadb-bin.000042.partial"])
def test_binlog_files_are_filed_under_binlog_and_parse_back_never_as_backup_objects(binlog_file):
    from restorable.repository.layout import binlog_file_of

    layout = Layout("restorable")
    key = layout.binlog_key("shop", binlog_file)
    assert key == f"restorable/shop/binlog/{binlog_file}.zst.age"
    parsed = layout.parse(key)
    assert parsed.kind is KeyKind.BINLOG and parsed.database == "shop" and not parsed.is_backup_object
    assert binlog_file_of(parsed.name) == binlog_file


@pytest.mark.parametrize("name", ["mariadb-bin", "mariadb-bin.42", "../x.000001", "a/b.000001"])
def test_a_name_the_server_would_not_give_a_binlog_is_refused(name):
    with pytest.raises(ValueError, match="not a binlog file name"):
        Layout("restorable").binlog_key("shop", name)
