"""Where a restore may write, through the CLI on the devstack chain: the source under another
spelling, reserved and over-long names, a stream whose hash fails at its end, a password in argv."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from restorable.engines.mysql.engine import MySQLEngine
from restorable.engines.postgres.engine import PostgresEngine

pytestmark = pytest.mark.integration


def databases(server, pattern: str = "%") -> list[str]:
    return [r[0] for r in server.query("SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,))]


def backed_up(chain) -> dict:
    backup = chain.run_cli("--json", "backup", "shop")
    assert backup.returncode == 0, backup.stderr
    return json.loads(backup.stdout)


def as_env(chain, conn_id: str, conn) -> dict[str, str]:
    from devstack.chain import connection_uri

    return {f"AIRFLOW_CONN_{conn_id.upper()}": connection_uri(conn)}


# --- server identity --------------------------------------------------------------------------


def test_a_postgres_server_is_one_identity_whatever_reaches_it(pg_server, pg_target_server):
    engine = PostgresEngine()
    by_address = engine.server_identity(pg_server.connection())
    assert by_address == engine.server_identity(replace(pg_server.connection(), host="localhost"))
    assert by_address == engine.server_identity(replace(pg_server.connection(), host=str(pg_server.socket_dir)))
    assert by_address != engine.server_identity(pg_target_server.connection())


def test_a_mariadb_server_is_one_identity_whatever_reaches_it(mariadb_server):
    engine = MySQLEngine()
    by_address = engine.server_identity(mariadb_server.connection())
    assert by_address == engine.server_identity(replace(mariadb_server.connection(), host="localhost"))
    by_socket = replace(mariadb_server.connection(), host=None, extra={"unix_socket": str(mariadb_server.socket_path)})
    assert by_address == engine.server_identity(by_socket)
    assert str(mariadb_server.port) in by_address


@pytest.mark.parametrize("spelling", ["localhost", "socket"])
def test_a_drill_into_the_source_server_under_another_spelling_is_refused_before_anything_is_created(
    pg_cli_chain, pg_server, pg_target_server, spelling
):
    chain = pg_cli_chain
    summary = backed_up(chain)
    # The source is reached as 127.0.0.1; the same server as localhost (or its socket), another database.
    host = "localhost" if spelling == "localhost" else str(pg_server.socket_dir)
    alias = replace(pg_server.connection("postgres"), host=host)
    drill = chain.run_cli("drill", "shop", "latest", "--target", "alias", env_extra=as_env(chain, "alias", alias))
    assert drill.returncode == 7, drill.stderr
    assert "is the source database's server" in drill.stderr and "Traceback" not in drill.stderr
    assert databases(pg_server, "drill_%") == databases(pg_target_server, "drill_%") == []
    catalog = chain.services.catalog("restore")
    assert [r for r in catalog.verifications("shop", summary["backup_id"]) if r["kind"] == "drill"] == []


def test_while_the_source_is_down_a_drill_into_its_server_is_refused_by_the_identity_its_backup_recorded(
    pg_cli_chain, pg_server, pg_target_server
):
    from devstack.ports import free_port

    chain = pg_cli_chain
    summary = backed_up(chain)
    manifest = chain.services.catalog("restore").read_manifest("shop", summary["backup_id"])
    assert manifest.source["server_identity"] == PostgresEngine().server_identity(pg_server.connection())
    # The source's connection now reaches nothing (an incident); the drill target is its server.
    down = replace(pg_server.connection(chain.services.resolve("src").schema), port=free_port())
    alias = replace(pg_server.connection("postgres"), host="localhost")
    env = {**as_env(chain, "src", down), **as_env(chain, "alias", alias)}
    drill = chain.run_cli("drill", "shop", "latest", "--target", "alias", env_extra=env)
    assert drill.returncode == 7, drill.stderr
    assert "is the source database's server" in drill.stderr and "Traceback" not in drill.stderr
    assert "the identity its backup recorded" in drill.stderr  # decided by the record, not a live look
    assert databases(pg_server, "drill_%") == databases(pg_target_server, "drill_%") == []


# --- names the server keeps, names it would cut ------------------------------------------------


@pytest.mark.parametrize("name", ["template1", "postgres"])
def test_a_restore_into_a_template_or_the_maintenance_database_is_refused(pg_cli_chain, pg_target_server, name):
    chain = pg_cli_chain
    backed_up(chain)
    before = pg_target_server.query("SELECT count(*) FROM pg_class", database=name)
    restore = chain.run_cli("restore", "shop", "--target", "tgt", "--database", name, "--overwrite")
    assert restore.returncode == 7, restore.stderr
    assert "belongs to the server" in restore.stderr and "Traceback" not in restore.stderr
    assert pg_target_server.query("SELECT count(*) FROM pg_class", database=name) == before


def test_overwrite_of_a_long_name_never_replaces_the_database_it_would_be_cut_to(pg_cli_chain, pg_target_server):
    chain = pg_cli_chain
    backed_up(chain)
    kept = "k" * 63
    pg_target_server.drop_database(kept)
    pg_target_server.create_database(kept)
    try:
        with pg_target_server.connect(kept) as pg:
            pg.execute("CREATE TABLE precious (v text)")
            pg.execute("INSERT INTO precious VALUES ('mine')")
        restore = chain.run_cli("restore", "shop", "--target", "tgt", "--database", kept + "-other", "--overwrite")
        assert restore.returncode == 7, restore.stderr
        assert "69 bytes long; the server keeps 63" in restore.stderr
        assert pg_target_server.query("SELECT v FROM precious", database=kept) == [("mine",)]
    finally:
        pg_target_server.drop_database(kept)


# --- a failure at the end of the stream ---------------------------------------------------------


def swap_data_object(chain, pg_server, seaweed, bucket) -> tuple[dict, dict]:
    """Two backups of different data; the first one's data object replaced by the second's."""
    first = backed_up(chain)
    with pg_server.connect(chain.services.resolve("src").schema) as pg:
        pg.execute("CREATE TABLE added_later (v int)")
    second = backed_up(chain)
    client = seaweed.client()
    body = client.get_object(Bucket=bucket, Key=second["key"])["Body"].read()
    swapped = client.put_object(Bucket=bucket, Key=first["key"], Body=body)["VersionId"]
    # The swap lands on the version the manifest records (a plain overwrite only adds a newer
    # version, which restores never read): as if the stored bytes had been replaced in place.
    catalog = chain.services.catalog()
    manifest_key = catalog.layout.manifest_key("shop", first["backup_id"])
    raw = catalog.store.get_json(manifest_key)
    raw["objects"][0]["version_id"] = swapped
    catalog.store.put_json(manifest_key, raw)
    return first, second


def test_a_swapped_data_object_restores_nothing_usable(pg_cli_chain, pg_server, pg_target_server, seaweed, bucket):
    chain = pg_cli_chain
    first, _second = swap_data_object(chain, pg_server, seaweed, bucket)
    restore = chain.run_cli("restore", "shop", first["backup_id"], "--target", "tgt", "--database", "swapped")
    assert restore.returncode == 6, restore.stderr
    assert "sha256" in restore.stderr and "Traceback" not in restore.stderr
    assert databases(pg_target_server, "swapped") == []


def test_a_failed_overwrite_says_the_existing_target_was_written_and_is_not_usable(
    pg_cli_chain, pg_server, pg_target_server, seaweed, bucket
):
    chain = pg_cli_chain
    first, _second = swap_data_object(chain, pg_server, seaweed, bucket)
    pg_target_server.drop_database("existing")
    pg_target_server.create_database("existing")
    try:
        with pg_target_server.connect("existing") as pg:
            pg.execute("CREATE TABLE old (v int)")
        restore = chain.run_cli(
            "restore", "shop", first["backup_id"], "--target", "tgt", "--database", "existing", "--overwrite"
        )
        assert restore.returncode == 6, restore.stderr
        assert "'existing' existed before, was written and is not usable" in restore.stderr
    finally:
        pg_target_server.drop_database("existing")


# --- --target ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["restore", "drill"])
def test_a_target_url_with_a_password_is_refused_and_says_how_to_pass_it(pg_cli_chain, pg_target_server, command):
    chain = pg_cli_chain
    backed_up(chain)  # so that, accepted, the URL would be used
    target = pg_target_server.connection("postgres")
    url = f"postgres://postgres:{target.password}@{target.host}:{target.port}/postgres"
    args = ["--database", "from_url"] if command == "restore" else []
    run = chain.run_cli(command, "shop", "--target", url, *args)
    assert run.returncode == 2, run.stderr
    assert "connection id" in run.stderr and "AIRFLOW_CONN_" in run.stderr
    assert target.password not in run.stderr + run.stdout
    assert databases(pg_target_server, "from_url") == databases(pg_target_server, "drill_%") == []
