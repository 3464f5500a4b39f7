"""The whole chain against real servers and SeaweedFS: backup → verify → restore.

The restore goes to a second server (not the source's), as it would in an incident. The fault
tests run for both engines (PostgreSQL 15 and MariaDB 10.11): the chain must not care which.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, replace

import psutil
import pytest

from devstack.chain import make_chain
from restorable.commands.backup import run_backup
from restorable.commands.restore import restore_backup
from restorable.commands.verify import verify_backup
from restorable.connections import ConnectionInfo
from restorable.engines.postgres import tools as pg_tools
from restorable.exceptions import (
    ConfigError,
    DecryptionError,
    IntegrityError,
    RestoreRefused,
    SourceUnreachable,
    StorageError,
    ToolError,
)
from restorable.stream.keys import generate_identity

pytestmark = pytest.mark.integration


@dataclass
class Case:
    engine: str
    source: object  # the source server
    target: object  # the restore server
    sample: ConnectionInfo
    dump_tool: str
    admin_database: str

    def database_exists(self, name: str) -> bool:
        if self.engine == "postgres":
            return bool(self.target.query("select 1 from pg_database where datname = %s", (name,)))
        return bool(self.target.query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)))


@pytest.fixture(params=["postgres", "mysql"])
def case(request) -> Case:
    if request.param == "postgres":
        return Case(
            "postgres",
            request.getfixturevalue("pg_server"),
            request.getfixturevalue("pg_target_server"),
            request.getfixturevalue("pg_sample"),
            "pg_dump",
            "postgres",
        )
    source = request.getfixturevalue("mariadb_server")
    sample = request.getfixturevalue("mariadb_sample")
    return Case("mysql", source, request.getfixturevalue("mariadb_target_server"), sample, "mariadb-dump", "mysql")


@pytest.fixture
def chain(tmp_path, case, seaweed, bucket):
    return make_chain(
        tmp_path,
        source=case.sample,
        engine=case.engine,
        s3=seaweed.connection(),
        bucket=bucket,
        target=case.target.connection(case.admin_database),
        object_lock=True,
    )


@pytest.fixture
def pg_chain(tmp_path, pg_sample, pg_target_server, seaweed, bucket):
    return make_chain(
        tmp_path,
        source=pg_sample,
        engine="postgres",
        s3=seaweed.connection(),
        bucket=bucket,
        target=pg_target_server.connection("postgres"),
        object_lock=True,
    )


def table_checksums(server, database: str) -> dict[str, str]:
    tables = server.query(
        "select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') order by 1",
        database=database,
    )
    out = {}
    for (name,) in tables:
        ((digest,),) = server.query(
            f"select md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from {name} t",
            database=database,
        )
        out[name] = digest
    return out


def mysql_table_checksums(server, database: str) -> dict[str, str]:
    tables = server.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
        "AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
        (database,),
    )
    out = {}
    for (table,) in tables:
        rows = server.query(f"SELECT * FROM `{table}`", database=database)
        out[table] = hashlib.md5("\n".join(sorted(repr(r) for r in rows)).encode()).hexdigest()
    return out


def test_round_trip_into_another_server(pg_chain, pg_server, pg_target_server, pg_sample):
    chain = pg_chain
    manifest = run_backup(chain.services, "shop")
    assert manifest.dump.stored_bytes > 0 and manifest.metadata.row_counts
    assert verify_backup(chain.services, "shop", manifest.backup_id)["ok"]
    deep = verify_backup(chain.services, "shop", "latest", deep=True)
    assert deep["found_plain_sha256"] == manifest.dump.plain_sha256

    report = restore_backup(chain.services, "shop", manifest.backup_id, target=chain.target, database="restored_shop")
    assert report.differences == []
    assert report.found_rows == sum(manifest.metadata.row_counts.values())
    assert table_checksums(pg_target_server, "restored_shop") == table_checksums(pg_server, pg_sample.schema)

    def same(sql: str) -> bool:
        return pg_target_server.query(sql, database="restored_shop") == pg_server.query(sql, database=pg_sample.schema)

    # Large objects, sequence values, owners and grants come back as they were.
    lo_sql = "select md5(string_agg(md5(lo_get(oid)), ',' order by oid)) from pg_largeobject_metadata"
    assert pg_target_server.query(lo_sql, database="restored_shop") == pg_server.query(
        lo_sql, database=pg_sample.schema
    )
    own_sql = (
        "select c.relname, pg_get_userbyid(c.relowner), coalesce(c.relacl::text, '') from pg_class c "
        "join pg_namespace n on n.oid = c.relnamespace where n.nspname not in ('pg_catalog', "
        "'information_schema', 'pg_toast') order by 1"
    )
    assert pg_target_server.query(own_sql, database="restored_shop") == pg_server.query(
        own_sql, database=pg_sample.schema
    )
    seq_sql = "select schemaname, sequencename, last_value from pg_sequences order by 1, 2"
    assert pg_target_server.query(seq_sql, database="restored_shop") == pg_server.query(
        seq_sql, database=pg_sample.schema
    )

    # The catalog shows it, verified, with its records.
    entry = chain.services.catalog().pick("shop", verified_only=True)
    assert entry.backup_id == manifest.backup_id
    assert [v["kind"] for v in entry.verifications] == ["checksum", "deep"]
    assert manifest.object_lock and manifest.object_lock["mode"] == "GOVERNANCE"


def test_mariadb_round_trip_into_another_server(
    tmp_path, mariadb_server, mariadb_target_server, mariadb_sample, seaweed, bucket
):
    chain = make_chain(
        tmp_path,
        source=mariadb_sample,
        engine="mysql",
        s3=seaweed.connection(),
        bucket=bucket,
        target=mariadb_target_server.connection("mysql"),
    )
    manifest = run_backup(chain.services, "shop")
    assert manifest.engine == "mysql" and manifest.metadata.row_counts
    if manifest.metadata.position:
        assert manifest.metadata.position.get("binlog_file") or manifest.metadata.position.get("gtid")
    assert verify_backup(chain.services, "shop", deep=True)["ok"]
    report = restore_backup(chain.services, "shop", manifest.backup_id, target=chain.target, database="restored_shopdb")
    assert report.differences == []
    assert report.found_rows == sum(manifest.metadata.row_counts.values()) > 0
    assert mysql_table_checksums(mariadb_target_server, "restored_shopdb") == mysql_table_checksums(
        mariadb_server, mariadb_sample.schema
    )
    mariadb_target_server.drop_database("restored_shopdb")


def test_database_settings_are_sealed_not_in_the_manifest(pg_chain, pg_server, pg_sample, seaweed, bucket):
    """ALTER DATABASE ... SET can hold a secret (PostgREST's app.jwt_secret): the manifest keeps its
    sha256, the value travels age-encrypted beside it, and a restore puts it back."""
    from psycopg import sql

    secret = "jwt-" + uuid.uuid4().hex
    db = sql.Identifier(pg_sample.schema)
    with pg_server.connect() as pg:
        pg.execute(sql.SQL("alter database {} set app.jwt_secret to {}").format(db, sql.Literal(secret)))
        pg.execute(sql.SQL("alter database {} set work_mem to '6MB'").format(db))
    chain = pg_chain
    manifest = run_backup(chain.services, "shop")
    store = chain.services.store()
    stored_manifest = store.get_bytes(chain.services.catalog().layout.manifest_key("shop", manifest.backup_id))
    assert secret.encode() not in stored_manifest
    assert manifest.sealed and manifest.sealed["key"].endswith("/sealed.json.age")
    sealed = store.get_bytes(manifest.sealed["key"])
    assert secret.encode() not in sealed and sealed.startswith(b"age-encryption.org/v1")

    copy = f"sealed_{uuid.uuid4().hex[:8]}"
    report = restore_backup(chain.services, "shop", manifest.backup_id, target=chain.target, database=copy)
    assert report.differences == []
    with pg_tools.connect(chain.target, copy) as pg:  # the restored database has the values back
        assert pg.execute("show app.jwt_secret").fetchone()[0] == secret
        assert pg.execute("show work_mem").fetchone()[0] == "6MB"

    # With another identity the sealed values fail first, before the target is touched.
    other_identity, _recipient = generate_identity()
    with pytest.raises(DecryptionError, match="sealed.json.age"):
        restore_backup(
            chain.services, "shop", manifest.backup_id, target=chain.target, database="never", identity=other_identity
        )
    with pg_tools.connect(chain.target, "postgres") as pg:
        assert pg.execute("select count(*) from pg_database where datname = 'never'").fetchone()[0] == 0

    # Verification re-reads (and, deep, decrypts) the sealed object too; tampering is caught.
    assert verify_backup(chain.services, "shop", manifest.backup_id)["ok"]
    assert verify_backup(chain.services, "shop", manifest.backup_id, deep=True)["ok"]
    # A newer version over the recorded one is tampering to verify, and restores keep reading
    # the version the manifest recorded.
    assert manifest.sealed.get("version_id")
    newer = store.put_bytes(manifest.sealed["key"], sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(IntegrityError, match="sealed.json.age has a newer version"):
        verify_backup(chain.services, "shop", manifest.backup_id)
    again = f"sealed_{uuid.uuid4().hex[:8]}"
    assert restore_backup(chain.services, "shop", manifest.backup_id, target=chain.target, database=again).ok
    with pg_tools.connect(chain.target, again) as pg:
        assert pg.execute("show app.jwt_secret").fetchone()[0] == secret
    # Bytes changed in the recorded version itself (the manifest pointed at the altered one).
    manifest_key = chain.services.catalog().layout.manifest_key("shop", manifest.backup_id)
    raw = store.get_json(manifest_key)
    raw["sealed"]["version_id"] = newer.version_id
    store.put_json(manifest_key, raw)
    with pytest.raises(IntegrityError, match="sealed.json.age differs"):
        verify_backup(chain.services, "shop", manifest.backup_id)
    with pytest.raises(IntegrityError, match="sealed.json.age has sha256"):
        restore_backup(chain.services, "shop", manifest.backup_id, target=chain.target, database="never")


def test_retried_run_with_same_id_does_not_duplicate(pg_chain):
    chain = pg_chain
    first = run_backup(chain.services, "shop", backup_id="20261125T020000Z-deadbeef")
    again = run_backup(chain.services, "shop", backup_id="20261125T020000Z-deadbeef")
    assert again.dump.stored_sha256 == first.dump.stored_sha256
    assert chain.services.catalog().backup_ids("shop") == ["20261125T020000Z-deadbeef"]


def _slow_metadata(monkeypatch, engine: str, seconds: float) -> list[float]:
    """Make the capture's metadata reading take ``seconds`` longer; return when it ended."""
    module = importlib.import_module(f"restorable.engines.{engine}.logical")
    name = "read_roles" if engine == "postgres" else "count_rows"
    original = getattr(module, name)
    ended: list[float] = []

    def slow(*args, **kwargs):
        time.sleep(seconds)
        result = original(*args, **kwargs)
        ended.append(time.monotonic())
        return result

    monkeypatch.setattr(module, name, slow)
    return ended


def test_metadata_is_read_beside_the_stream(chain, case, monkeypatch):
    """A slow count does not hold the dump back: the stream's first bytes flow while counting runs."""
    metadata_ended = _slow_metadata(monkeypatch, case.engine, 3)
    first_bytes: list[float] = []

    def progress(done: int) -> None:
        if not first_bytes:
            first_bytes.append(time.monotonic())

    manifest = run_backup(chain.services, "shop", on_progress=progress)
    assert first_bytes[0] < metadata_ended[0] - 2
    assert manifest.timings["metadata_seconds"] >= 3
    assert sum(manifest.metadata.row_counts.values()) > 1000
    copy = f"copy_{uuid.uuid4().hex[:8]}"
    report = restore_backup(chain.services, "shop", manifest.backup_id, target=chain.target, database=copy)
    assert report.differences == []  # the counts read beside the stream are those of the dump


def test_metadata_failure_aborts_the_backup(chain, case, monkeypatch):
    module = importlib.import_module(f"restorable.engines.{case.engine}.logical")
    if case.engine == "postgres":
        import psycopg

        def refuse(*_args, **_kwargs):
            raise psycopg.errors.InsufficientPrivilege("permission denied for table secrets")

        monkeypatch.setattr(module, "read_roles", refuse)
        expected = ConfigError
    else:
        import pymysql

        def refuse(*_args, **_kwargs):
            raise pymysql.err.OperationalError(2013, "Lost connection to server during query")

        monkeypatch.setattr(module, "count_rows", refuse)
        expected = SourceUnreachable
    with pytest.raises(expected) as info:
        run_backup(chain.services, "shop")
    if case.engine == "postgres":
        assert "permission denied for table secrets" in str(info.value) and "pg_read_all_data" in info.value.hint
    else:
        assert "Lost connection" in str(info.value)
    assert info.value.backup_id
    store = chain.services.store()
    assert chain.services.catalog().backup_ids("shop") == []
    assert store.list_multipart_uploads("restorable/") == []


def test_mariadb_slow_count_does_not_starve_the_dump(
    tmp_path, mariadb_server, mariadb_target_server, seaweed, bucket, monkeypatch
):
    """MariaDB drops a client it cannot write to for net_write_timeout seconds. Counting before the
    stream was read left the dump blocked on its pipe that long on a big database; beside the stream
    it does not."""
    database = f"wide_{uuid.uuid4().hex[:8]}"
    mariadb_server.execute(f"CREATE DATABASE {database}")
    # About 40 MB of dump: far more than the pipe and socket buffers between server and dump tool.
    mariadb_server.execute(f"CREATE TABLE {database}.notes (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB")
    mariadb_server.execute(
        f"INSERT INTO {database}.notes SELECT seq, REPEAT(MD5(seq), 32) FROM {database}.seq_1_to_40000"
    )
    ((previous,),) = mariadb_server.query("SELECT @@GLOBAL.net_write_timeout")
    mariadb_server.execute("SET GLOBAL net_write_timeout = 1")
    try:
        _slow_metadata(monkeypatch, "mysql", 4)
        chain = make_chain(
            tmp_path,
            source=mariadb_server.connection(database),
            engine="mysql",
            s3=seaweed.connection(),
            bucket=bucket,
            target=mariadb_target_server.connection("mysql"),
        )
        manifest = run_backup(chain.services, "shop")
    finally:
        mariadb_server.execute(f"SET GLOBAL net_write_timeout = {int(previous)}")
        mariadb_server.execute(f"DROP DATABASE {database}")
    assert manifest.metadata.row_counts == {"notes": 40000}
    assert manifest.dump.plain_bytes > 40_000_000


def _kill_children_named(name: str) -> bool:
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == name:
                child.send_signal(signal.SIGKILL)
                return True
        except psutil.NoSuchProcess:
            pass
    return False


#: About 40 MB of rows, added for the kill test: the 3 MB sample can be read to its end before the
#: first progress report under load, and a dump that has exited cannot be killed mid-stream.
_BULK_SQL = {
    "postgres": "CREATE TABLE bulk AS SELECT g AS id, repeat(md5(g::text), 64) AS pad FROM generate_series(1, 20000) g",
    "mysql": "CREATE TABLE bulk ENGINE=InnoDB AS SELECT seq AS id, REPEAT(MD5(seq), 64) AS pad FROM seq_1_to_20000",
}


def test_dump_killed_mid_stream_commits_nothing(chain, case):
    case.source.execute(_BULK_SQL[case.engine], database=case.sample.schema)
    killed = []

    def kill_dump(done: int) -> None:
        if not killed and done > 0:
            killed.append(_kill_children_named(case.dump_tool))

    with pytest.raises(ToolError) as info:
        run_backup(chain.services, "shop", on_progress=kill_dump)
    assert killed == [True]
    assert case.dump_tool.split("-")[-1] in str(info.value) and info.value.backup_id
    store = chain.services.store()
    assert chain.services.catalog().backup_ids("shop") == []
    assert store.list_multipart_uploads("restorable/") == []
    assert not any(o.key.endswith("manifest.json") for o in store.list_objects("restorable/"))


def test_s3_stopped_mid_upload_retries_then_fails_cleanly(tmp_path, case, caplog):
    from devstack.seaweedfs import SeaweedS3

    s3 = SeaweedS3(tmp_path / "own-seaweed").start()
    try:
        s3.create_bucket("faulty", object_lock=False, versioning=True)
        # Short timeouts (a connection extra, as a user would set them) keep the test quick.
        base = s3.connection()
        conn = replace(base, extra={**base.extra, "config_kwargs": {"read_timeout": 2, "connect_timeout": 1}})
        chain = make_chain(
            tmp_path,
            source=case.sample,
            engine=case.engine,
            s3=conn,
            bucket="faulty",
            target=case.target.connection(case.admin_database),
            max_attempts=2,  # one retry is what the test looks for; each costs a timeout
        )
        stopped = []

        def stop_s3(done: int) -> None:
            if not stopped:
                s3.pause()  # the endpoint stops answering: parts time out and are retried
                stopped.append(time.monotonic())

        started = time.monotonic()
        with pytest.raises(StorageError) as info:
            run_backup(chain.services, "shop", on_progress=stop_s3)
        assert stopped
        assert "faulty" in str(info.value) or "restorable/shop" in str(info.value)
        assert time.monotonic() - started < 90
        retries = [r for r in caplog.records if "s3 retry" in r.getMessage() and "UploadPart" in r.getMessage()]
        assert retries, "the part was not retried"
        s3.resume()
        # Nothing committed; the aborted upload is not left behind once the store answers again.
        assert chain.services.catalog().backup_ids("shop") == []
    finally:
        s3.stop()


def damage_recorded_version(chain, client, bucket: str, manifest, body: bytes) -> None:
    """Bytes of the version the manifest recorded changed, as bit rot looks (reads use that version).

    S3 cannot rewrite a version in place: store the damaged bytes as a new version and point the
    manifest at it. (A new version *beside* the recorded one is tampering: tests/integration/repository.)
    """
    version = client.put_object(Bucket=bucket, Key=manifest.dump.key, Body=body)["VersionId"]
    store = chain.services.store()
    key = chain.services.catalog().layout.manifest_key("shop", manifest.backup_id)
    data = store.get_json(key)
    data["objects"][0]["version_id"] = version
    store.put_json(key, data)


def test_flipped_byte_fails_verify_naming_backup_and_hashes(chain, seaweed, bucket):
    manifest = run_backup(chain.services, "shop")
    client = seaweed.client()
    body = bytearray(client.get_object(Bucket=bucket, Key=manifest.dump.key)["Body"].read())
    body[len(body) // 2] ^= 0x01
    damage_recorded_version(chain, client, bucket, manifest, bytes(body))

    with pytest.raises(IntegrityError) as info:
        verify_backup(chain.services, "shop", manifest.backup_id)
    message = str(info.value)
    assert manifest.backup_id in message and manifest.dump.stored_sha256 in message
    found = [v for v in chain.services.catalog().verifications("shop", manifest.backup_id)][-1]
    assert found["ok"] is False and found["found_stored_sha256"] in message
    assert not chain.services.catalog().entries("shop")[-1].verified


def test_wrong_identity_restores_nothing(chain, case):
    manifest = run_backup(chain.services, "shop")
    wrong, _ = generate_identity()
    with pytest.raises(DecryptionError) as info:
        restore_backup(
            chain.services, "shop", manifest.backup_id, target=chain.target, database="never_made", identity=wrong
        )
    assert "identity" in str(info.value)
    assert not case.database_exists("never_made")


def test_non_empty_target_is_refused_and_untouched(chain, case):
    manifest = run_backup(chain.services, "shop")
    target = case.target
    target.drop_database("precious")
    target.execute("create database precious")
    target.execute("create table keep_me (v text)", database="precious")
    target.execute("insert into keep_me values ('mine')", database="precious")
    with pytest.raises(RestoreRefused) as info:
        restore_backup(chain.services, "shop", manifest.backup_id, target=chain.target, database="precious")
    assert "precious" in str(info.value) and "overwrite" in str(info.value)
    assert target.query("select v from keep_me", database="precious") == [("mine",)]

    report = restore_backup(
        chain.services, "shop", manifest.backup_id, target=chain.target, database="precious", overwrite=True
    )
    assert report.ok
    assert (
        len(target.query("select 1 from information_schema.tables where table_name = 'keep_me'", database="precious"))
        == 0
    )
    target.drop_database("precious")


def test_password_never_in_argv_or_logs(chain, case, caplog):
    password = case.sample.password
    assert password
    seen_argv: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for proc in psutil.process_iter(["cmdline", "environ"]):
                try:
                    cmd = " ".join(proc.info["cmdline"] or [])
                    env = proc.info["environ"] or {}
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                if case.dump_tool in cmd:
                    seen_argv.append(cmd)
                    assert "PGPASSWORD" not in env and "MYSQL_PWD" not in env
                if password in cmd:
                    seen_argv.append("LEAK:" + cmd)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    caplog.set_level(logging.DEBUG)
    watcher.start()
    try:
        # A slow consumer keeps pg_dump alive long enough to be seen.
        manifest = run_backup(chain.services, "shop", on_progress=lambda n: time.sleep(0.05))
    finally:
        stop.set()
        watcher.join()
    assert any(case.dump_tool in c for c in seen_argv), f"the watcher never saw {case.dump_tool} running"
    assert not [c for c in seen_argv if c.startswith("LEAK:")]
    assert password not in caplog.text
    assert password not in str(manifest.to_dict())
    assert os.environ.get("PGPASSWORD") is None


def test_restore_failing_mid_stream_leaves_no_half_database(chain, case, seaweed, bucket):
    manifest = run_backup(chain.services, "shop")
    client = seaweed.client()
    body = client.get_object(Bucket=bucket, Key=manifest.dump.key)["Body"].read()
    # Truncated: decryption produces the first chunks, then fails on the missing tail.
    damage_recorded_version(chain, client, bucket, manifest, body[: len(body) * 2 // 3])
    with pytest.raises(IntegrityError):
        restore_backup(chain.services, "shop", manifest.backup_id, target=chain.target, database="half_done")
    assert not case.database_exists("half_done")
