"""MariaDB names that need quoting, a row bigger than the client's default packet, and a password
with non-ASCII characters, through the CLI (backup, verify, drill, restore)."""

from __future__ import annotations

import json
import uuid

import pytest

from devstack.chain import make_chain, write_tampered_copy

pytestmark = pytest.mark.integration


def _chain(tmp_path, source, target, seaweed, bucket):
    return make_chain(tmp_path, source=source, engine="mysql", s3=seaweed.connection(), bucket=bucket, target=target)


@pytest.fixture
def database(mariadb_server):
    name = f"odd_{uuid.uuid4().hex[:8]}"
    mariadb_server.create_database(name)
    yield name
    mariadb_server.drop_database(name)


def test_odd_names_are_counted_apart_and_a_drill_passes_then_finds_a_difference(
    tmp_path, mariadb_server, mariadb_target_server, seaweed, bucket, database
):

    for statement in (
        "CREATE TABLE `a.b` (id INT PRIMARY KEY, `c.d` INT, KEY `e` (`c.d`))",
        "CREATE TABLE `a` (id INT PRIMARY KEY, `c.d` INT, KEY `b.e` (`c.d`))",
        'CREATE TABLE `line\nbreak` (id INT PRIMARY KEY, `we"ird` TEXT)',
        "CREATE TABLE `Ünïcödé Tàble` (`ß col` VARCHAR(10), `Mixed Case` INT NOT NULL)",
        "CREATE TABLE `quo``te` (id INT)",
        "CREATE VIEW `v.iew` AS SELECT id FROM `a.b`",
        "INSERT INTO `a.b` VALUES (1, 1), (2, 2), (3, 3)",
        "INSERT INTO `a` VALUES (1, 1)",
        "INSERT INTO `line\nbreak` VALUES (1, 'x'), (2, 'y')",
        "INSERT INTO `Ünïcödé Tàble` VALUES ('é', 1)",
        "INSERT INTO `quo``te` VALUES (1), (2), (3), (4)",
    ):
        mariadb_server.execute(statement, database=database)
    chain = _chain(
        tmp_path, mariadb_server.connection(database), mariadb_target_server.connection("mysql"), seaweed, bucket
    )
    backup = chain.run_cli("--json", "backup", "shop")
    assert backup.returncode == 0, backup.stderr
    catalog = chain.services.catalog("backup")
    manifest = catalog.read_manifest("shop", json.loads(backup.stdout)["backup_id"])
    assert manifest.metadata.row_counts == {
        '"a.b"': 3,
        "a": 1,
        '"line\nbreak"': 2,
        '"Ünïcödé Tàble"': 1,
        '"quo`te"': 4,
    }
    # a.b's index e and a's index b.e used to share the key "a.b.e".
    assert {'"a.b".e', 'a."b.e"'} <= set(manifest.metadata.schema["indexes"])

    assert chain.run_cli("verify", "shop", "latest").returncode == 0
    drill = chain.run_cli("drill", "shop", "latest", "--json")
    assert drill.returncode == 0, drill.stderr + drill.stdout
    assert json.loads(drill.stdout)["ok"]

    def raise_a_count(data: dict) -> None:
        data["metadata"]["row_counts"]['"line\nbreak"'] += 1

    tampered = write_tampered_copy(catalog, manifest, raise_a_count)
    assert chain.run_cli("verify", "shop", tampered.backup_id).returncode == 0  # same object
    drill = chain.run_cli("drill", "shop", "latest")
    assert drill.returncode == 6, drill.stderr
    # The error is one line: the name's line break is shown escaped.
    assert '"line\\nbreak": expect_table_row_count_to_equal expected 3, found 2' in drill.stderr


def test_a_row_bigger_than_the_clients_default_packet_backs_up_and_restores(
    tmp_path, mariadb_server, mariadb_target_server, seaweed, bucket, database
):
    # 100 MB: four times mariadb-dump's default packet (24 MB); the servers allow 256 MB.
    mariadb_server.execute("CREATE TABLE big (id INT PRIMARY KEY, body LONGBLOB)", database=database)
    mariadb_server.execute("INSERT INTO big VALUES (1, REPEAT('0123456789', 10 * 1024 * 1024))", database=database)
    chain = _chain(
        tmp_path, mariadb_server.connection(database), mariadb_target_server.connection("mysql"), seaweed, bucket
    )
    backup = chain.run_cli("backup", "shop")
    assert backup.returncode == 0, backup.stderr
    restored = f"restored_{database}"
    try:
        restore = chain.run_cli("restore", "shop", "latest", "--target", "tgt", "--database", restored)
        assert restore.returncode == 0, restore.stderr + restore.stdout
        digest = "SELECT LENGTH(body), MD5(body) FROM big"
        assert mariadb_target_server.query(digest, database=restored) == mariadb_server.query(digest, database=database)
    finally:
        mariadb_target_server.drop_database(restored)


def test_a_password_with_non_ascii_characters_backs_up_and_restores(
    tmp_path, mariadb_server, mariadb_target_server, seaweed, bucket, database
):
    user = f"ü_{uuid.uuid4().hex[:6]}"
    password = "pässwörd-€-日本-" + uuid.uuid4().hex[:6]
    servers = (mariadb_server, mariadb_target_server)
    for server in servers:
        server.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", [user, password])
        server.execute("GRANT ALL ON *.* TO %s@'%%'", [user])
    mariadb_server.execute("CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)", database=database)
    mariadb_server.execute("INSERT INTO notes VALUES (1, 'ä'), (2, 'ö')", database=database)
    chain = _chain(
        tmp_path,
        mariadb_server.connection(database, login=user, password=password),
        mariadb_target_server.connection("mysql", login=user, password=password),
        seaweed,
        bucket,
    )
    restored = f"restored_{database}"
    try:
        backup = chain.run_cli("backup", "shop")
        assert backup.returncode == 0, backup.stderr
        restore = chain.run_cli("restore", "shop", "latest", "--target", "tgt", "--database", restored)
        assert restore.returncode == 0, restore.stderr + restore.stdout
        assert mariadb_target_server.query("SELECT body FROM notes ORDER BY id", database=restored) == [("ä",), ("ö",)]
        assert chain.run_cli("verify", "shop", "latest").returncode == 0
        drill = chain.run_cli("drill", "shop", "latest")  # Great Expectations logs in with it too
        assert drill.returncode == 0, drill.stderr + drill.stdout
        assert password not in backup.stderr + restore.stderr + restore.stdout + drill.stderr + drill.stdout
    finally:
        mariadb_target_server.drop_database(restored)
        for server in servers:
            server.execute("DROP USER IF EXISTS %s@'%%'", [user])
