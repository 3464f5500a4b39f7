"""PostgreSQL names that need quoting and an empty database, through the CLI (backup, verify, drill, restore)."""

from __future__ import annotations

import json
import uuid

import pytest

from devstack.chain import make_chain, write_tampered_copy

pytestmark = pytest.mark.integration

#: Two tables whose names, joined with a dot, are the same text: x."y.z" and "x.y".z.
DOTTED = ['x."y.z"', '"x.y".z']
ODD_TABLES = [
    *DOTTED,
    '"Ünïcödé schéma"."Tàble ü"',
    '"x.y"."Mixed Case"',
    '"x.y"."line\nbreak"',
    '"x.y"."quo""te"',
]


def _odd_database(server) -> str:
    database = f"odd_{uuid.uuid4().hex[:8]}"
    server.create_database(database)
    statements = [
        "create schema x",
        'create schema "x.y"',
        'create schema "Ünïcödé schéma"',
        'create table x."y.z" (id int primary key, "Col.Name" text not null)',
        'create table "x.y".z (id int primary key, "naïve col" text)',
        'create table "Ünïcödé schéma"."Tàble ü" (id serial primary key, "ß col" text, "Sp ace" int)',
        'create table "x.y"."Mixed Case" ("ID" bigint primary key, "Value" varchar(20))',
        'create table "x.y"."line\nbreak" (id int, "a""b" text)',
        'create table "x.y"."quo""te" (id int)',
        'create index "idx.dot" on "x.y".z ("naïve col")',
        'create view "x.y"."v.iew" as select id from "x.y".z',
        "insert into x.\"y.z\" select g, 'r' || g from generate_series(1, 7) g",
        "insert into \"x.y\".z select g, 'n' || g from generate_series(1, 3) g",
        'insert into "Ünïcödé schéma"."Tàble ü" ("ß col", "Sp ace") select \'s\', g from generate_series(1, 5) g',
        "insert into \"x.y\".\"Mixed Case\" values (1, 'a'), (2, 'b')",
        'insert into "x.y"."line\nbreak" values (1, \'x\')',
        'insert into "x.y"."quo""te" values (1), (2), (3), (4)',
    ]
    with server.connect(database) as pg:
        for statement in statements:
            pg.execute(statement)
    return database


@pytest.fixture
def odd_chain(tmp_path, pg_server, pg_target_server, seaweed, bucket):
    database = _odd_database(pg_server)
    yield make_chain(
        tmp_path,
        source=pg_server.connection(database),
        engine="postgres",
        s3=seaweed.connection(),
        bucket=bucket,
        target=pg_target_server.connection("postgres"),
    )
    pg_server.drop_database(database)


def test_odd_names_are_counted_apart_and_a_drill_passes_then_finds_a_difference(odd_chain):

    backup = odd_chain.run_cli("--json", "backup", "shop")
    assert backup.returncode == 0, backup.stderr
    catalog = odd_chain.services.catalog("backup")
    manifest = catalog.read_manifest("shop", json.loads(backup.stdout)["backup_id"])
    counts = manifest.metadata.row_counts
    # Every table has a key of its own (x."y.z" and "x.y".z used to share "x.y.z").
    assert counts == {
        'x."y.z"': 7,
        '"x.y".z': 3,
        '"Ünïcödé schéma"."Tàble ü"': 5,
        '"x.y"."Mixed Case"': 2,
        '"x.y"."line\nbreak"': 1,
        '"x.y"."quo""te"': 4,
    }
    assert set(manifest.metadata.schema["tables"]) == set(counts)

    assert odd_chain.run_cli("verify", "shop", "latest").returncode == 0
    drill = odd_chain.run_cli("drill", "shop", "latest", "--json")
    assert drill.returncode == 0, drill.stderr + drill.stdout
    result = json.loads(drill.stdout)
    assert result["ok"] and result["differences"] == []

    # A real difference in one of the dotted tables is still found and named.
    def raise_a_count(data: dict) -> None:
        data["metadata"]["row_counts"]['"x.y".z'] += 1

    tampered = write_tampered_copy(catalog, manifest, raise_a_count)
    assert odd_chain.run_cli("verify", "shop", tampered.backup_id).returncode == 0  # same object
    drill = odd_chain.run_cli("drill", "shop", "latest")
    assert drill.returncode == 6, drill.stderr
    assert '"x.y".z: expect_table_row_count_to_equal expected 4, found 3' in drill.stderr
    assert 'x."y.z"' not in drill.stderr


def test_an_empty_database_backs_up_verifies_deeply_and_restores(
    tmp_path, pg_server, pg_target_server, seaweed, bucket
):
    database = f"empty_{uuid.uuid4().hex[:8]}"
    chain = make_chain(
        tmp_path,
        source=pg_server.create_database(database),
        engine="postgres",
        s3=seaweed.connection(),
        bucket=bucket,
        target=pg_target_server.connection("postgres"),
    )
    restored = f"restored_{database}"
    try:
        backup = chain.run_cli("backup", "shop")
        assert backup.returncode == 0, backup.stderr
        deep = chain.run_cli("verify", "--deep", "shop", "latest")
        assert deep.returncode == 0, deep.stderr + deep.stdout
        restore = chain.run_cli("restore", "shop", "latest", "--target", "tgt", "--database", restored)
        assert restore.returncode == 0, restore.stderr + restore.stdout
        assert pg_target_server.query("select 1 from pg_database where datname = %s", [restored]) == [(1,)]
        listed = chain.run_cli("--json", "list", "shop")
        assert listed.returncode == 0, listed.stderr
        assert "failed" not in listed.stdout.lower(), listed.stdout
    finally:
        pg_server.drop_database(database)
        pg_target_server.drop_database(restored)
