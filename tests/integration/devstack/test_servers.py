"""The local stack: throwaway servers really run, require passwords, and go away when stopped.

The SeaweedFS tests double as the record of which S3 features the local store supports
(versioning, Object Lock, legal hold, SHA-256 multipart checksums, conditional puts, multipart
listing/abort) so the storage code can rely on them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import time
import urllib.request

import botocore.exceptions
import psycopg
import pymysql
import pytest

from devstack.mariadb import MariaDBServer
from devstack.postgres import PostgresServer
from devstack.seaweedfs import SeaweedS3

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return exc.response["Error"]["Code"]


# -- PostgreSQL ------------------------------------------------------------------------------
def test_pg_server_accepts_its_password_only(pg_server):
    conn = pg_server.connection()
    assert (conn.conn_type, conn.host, conn.login, conn.schema) == ("postgres", "127.0.0.1", "postgres", "postgres")
    with psycopg.connect(
        host=conn.host, port=conn.port, user=conn.login, password=conn.password, dbname=conn.schema
    ) as c:
        assert c.execute("SHOW server_version_num").fetchone()[0].startswith("15")
        assert c.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert c.execute("SHOW password_encryption").fetchone()[0] == "scram-sha-256"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=conn.host, port=conn.port, user="postgres", password="wrong", dbname="postgres")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=conn.host, port=conn.port, user="postgres", dbname="postgres")


def test_pg_source_and_target_are_separate_servers(pg_server, pg_target_server):
    assert pg_server.port != pg_target_server.port
    assert pg_server.password != pg_target_server.password
    pg_server.create_database("only_on_source")
    try:
        names = {r[0] for r in pg_target_server.query("SELECT datname FROM pg_database")}
        assert "only_on_source" not in names
    finally:
        pg_server.drop_database("only_on_source")
    assert ("only_on_source",) not in pg_server.query("SELECT datname FROM pg_database")


def test_pg_server_stop_leaves_no_process_or_files(tmp_path):
    server = PostgresServer(tmp_path, name="short_lived").start()
    pid, base = server.pid, server.base_dir
    assert _alive(pid) and base.exists()
    assert server.query("SELECT 1") == [(1,)]
    server.stop()
    assert not _alive(pid)
    assert not base.exists()
    server.stop()  # idempotent


# -- MariaDB ---------------------------------------------------------------------------------
def test_mariadb_server_accepts_its_password_only(mariadb_server):
    conn = mariadb_server.connection()
    assert (conn.conn_type, conn.login, conn.schema) == ("mysql", "root", "mysql")
    c = pymysql.connect(host=conn.host, port=conn.port, user="root", password=conn.password, database="mysql")
    try:
        with c.cursor() as cur:
            cur.execute("SELECT VERSION(), @@log_bin, @@binlog_format, @@event_scheduler, @@character_set_server")
            version, log_bin, fmt, scheduler, charset = cur.fetchone()
    finally:
        c.close()
    assert version.startswith("10.11") and log_bin == 1 and fmt == "ROW"
    assert (scheduler, charset) == ("ON", "utf8mb4")
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(host=conn.host, port=conn.port, user="root", password="wrong")
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(host=conn.host, port=conn.port, user="root", password="")


def test_mariadb_create_and_drop_database(mariadb_server, mariadb_target_server):
    assert mariadb_server.port != mariadb_target_server.port
    mariadb_server.create_database("made_here")
    try:
        assert ("made_here",) in mariadb_server.query("SHOW DATABASES")
        assert ("made_here",) not in mariadb_target_server.query("SHOW DATABASES")
    finally:
        mariadb_server.drop_database("made_here")
    assert ("made_here",) not in mariadb_server.query("SHOW DATABASES")


def test_mariadb_server_stop_leaves_no_process_or_files(tmp_path):
    server = MariaDBServer(tmp_path, name="short_lived", binlog=False).start()
    pid = server.pid
    assert server.query("SELECT @@log_bin") == [(0,)]
    server.stop()
    assert not _alive(pid)
    assert not server.base_dir.exists()
    server.stop()


# -- SeaweedFS: what the local S3 supports ----------------------------------------------------
def test_bucket_has_versioning_and_object_lock(seaweed, bucket):
    s3 = seaweed.client()
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    conf = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert conf["ObjectLockEnabled"] == "Enabled"
    s3.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    rule = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]["Rule"]
    assert rule == {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}


def test_object_lock_on_an_existing_bucket_needs_versioning(seaweed):
    # As on AWS today: refused on an unversioned bucket, allowed once versioning is on.
    name = f"plain-{os.getpid()}-{int(time.time() * 1000) % 100000}"
    seaweed.create_bucket(name, object_lock=False, versioning=False)
    try:
        s3 = seaweed.client()
        assert "Status" not in s3.get_bucket_versioning(Bucket=name)
        with pytest.raises(botocore.exceptions.ClientError) as err:
            s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
        assert _error_code(err.value) == "InvalidBucketState"
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
        conf = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
        assert conf["ObjectLockEnabled"] == "Enabled"
    finally:
        seaweed.delete_bucket(name)


def test_compliance_retention_blocks_version_delete(seaweed, bucket):
    s3 = seaweed.client()
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    put = s3.put_object(
        Bucket=bucket, Key="locked", Body=b"data", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until
    )
    retention = s3.get_object_retention(Bucket=bucket, Key="locked")["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    assert abs((retention["RetainUntilDate"] - until).total_seconds()) < 2
    head = s3.head_object(Bucket=bucket, Key="locked")
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockLegalHoldStatus"] == "OFF"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="locked", VersionId=put["VersionId"])
    assert _error_code(err.value) == "AccessDenied"
    with pytest.raises(botocore.exceptions.ClientError):
        s3.delete_object(Bucket=bucket, Key="locked", VersionId=put["VersionId"], BypassGovernanceRetention=True)
    # A plain delete only adds a delete marker; the locked version stays readable.
    s3.delete_object(Bucket=bucket, Key="locked")
    assert s3.get_object(Bucket=bucket, Key="locked", VersionId=put["VersionId"])["Body"].read() == b"data"


def test_governance_retention_can_be_bypassed_by_admin(seaweed, bucket):
    s3 = seaweed.client()
    put = s3.put_object(Bucket=bucket, Key="gov", Body=b"x")
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    s3.put_object_retention(Bucket=bucket, Key="gov", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})
    with pytest.raises(botocore.exceptions.ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="gov", VersionId=put["VersionId"])
    assert _error_code(err.value) == "AccessDenied"
    s3.delete_object(Bucket=bucket, Key="gov", VersionId=put["VersionId"], BypassGovernanceRetention=True)
    assert s3.list_object_versions(Bucket=bucket).get("Versions", []) == []


def test_legal_hold_blocks_version_delete_until_released(seaweed, bucket):
    s3 = seaweed.client()
    put = s3.put_object(Bucket=bucket, Key="held", Body=b"x")
    s3.put_object_legal_hold(Bucket=bucket, Key="held", LegalHold={"Status": "ON"})
    assert s3.get_object_legal_hold(Bucket=bucket, Key="held")["LegalHold"]["Status"] == "ON"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="held", VersionId=put["VersionId"])
    assert _error_code(err.value) == "AccessDenied"
    s3.put_object_legal_hold(Bucket=bucket, Key="held", LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=bucket, Key="held", VersionId=put["VersionId"])


def test_conditional_put_refuses_to_overwrite(seaweed, bucket):
    s3 = seaweed.client()
    s3.put_object(Bucket=bucket, Key="manifest.json", Body=b"first", IfNoneMatch="*")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        s3.put_object(Bucket=bucket, Key="manifest.json", Body=b"second", IfNoneMatch="*")
    assert _error_code(err.value) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="manifest.json")["Body"].read() == b"first"


def _b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_multipart_upload_with_sha256_checksums(seaweed, bucket):
    s3 = seaweed.client()
    parts_data = [os.urandom(5 * 1024 * 1024), b"the tail"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="data.zst", ChecksumAlgorithm="SHA256")
    assert upload.get("ChecksumAlgorithm") == "SHA256"
    parts = []
    for number, data in enumerate(parts_data, start=1):
        resp = s3.upload_part(
            Bucket=bucket,
            Key="data.zst",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data,
            ChecksumSHA256=_b64sha256(data),
        )
        assert resp["ChecksumSHA256"] == _b64sha256(data)
        parts.append({"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": resp["ChecksumSHA256"]})
    # A part whose body does not match its declared checksum is refused.
    with pytest.raises(botocore.exceptions.ClientError) as err:
        s3.upload_part(
            Bucket=bucket,
            Key="data.zst",
            UploadId=upload["UploadId"],
            PartNumber=3,
            Body=b"abc",
            ChecksumSHA256=_b64sha256(b"abd"),
        )
    assert _error_code(err.value) == "BadDigest"
    listed = s3.list_parts(Bucket=bucket, Key="data.zst", UploadId=upload["UploadId"])["Parts"]
    assert [p["PartNumber"] for p in listed] == [1, 2]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="data.zst", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    head = s3.head_object(Bucket=bucket, Key="data.zst", ChecksumMode="ENABLED")
    assert head["ContentLength"] == sum(map(len, parts_data))
    composite = base64.b64encode(
        hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in parts_data)).digest()
    ).decode()
    assert head["ChecksumSHA256"] == f"{composite}-2"
    assert head["ChecksumType"] == "COMPOSITE"
    body = s3.get_object(Bucket=bucket, Key="data.zst")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(b"".join(parts_data)).digest()


def test_single_put_sha256_checksum_is_verified(seaweed, bucket):
    s3 = seaweed.client()
    resp = s3.put_object(Bucket=bucket, Key="small", Body=b"abc", ChecksumSHA256=_b64sha256(b"abc"))
    assert resp["ChecksumSHA256"] == _b64sha256(b"abc")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        s3.put_object(Bucket=bucket, Key="small2", Body=b"abc", ChecksumSHA256=_b64sha256(b"abd"))
    assert _error_code(err.value) == "BadDigest"


def test_list_and_abort_multipart_uploads(seaweed, bucket):
    s3 = seaweed.client()
    upload = s3.create_multipart_upload(Bucket=bucket, Key="unfinished")
    s3.upload_part(Bucket=bucket, Key="unfinished", UploadId=upload["UploadId"], PartNumber=1, Body=b"zz")
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("unfinished", upload["UploadId"])]
    s3.abort_multipart_upload(Bucket=bucket, Key="unfinished", UploadId=upload["UploadId"])
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_connection_describes_the_endpoint(seaweed):
    conn = seaweed.connection("restorable_s3")
    assert conn.conn_type == "aws" and conn.conn_id == "restorable_s3"
    assert (conn.login, conn.password) == (seaweed.access_key, seaweed.secret_key)
    assert conn.extra == {"endpoint_url": seaweed.endpoint_url, "region_name": "us-east-1"}
    with pytest.raises(botocore.exceptions.ClientError) as err:
        seaweed.client(access_key=seaweed.access_key, secret_key="wrong").list_buckets()
    assert _error_code(err.value) == "SignatureDoesNotMatch"


def test_https_port_serves_s3_with_a_certificate_for_localhost_and_leaves_no_key(tmp_path):
    """What the benchmark's pgBackRest row needs: S3 over TLS, verified against the certificate."""
    import socket
    import ssl

    from restorable.storage.s3.client import s3_client_from_connection

    server = SeaweedS3(tmp_path / "tls", https=True)
    with server:
        assert oct(os.stat(server.state_dir / "tls.key").st_mode & 0o777) == "0o600"
        server.create_bucket("https-check", object_lock=False, versioning=False)
        client = s3_client_from_connection(server.connection(https=True))
        client.put_object(Bucket="https-check", Key="k", Body=b"over tls")
        assert client.get_object(Bucket="https-check", Key="k")["Body"].read() == b"over tls"
        context = ssl.create_default_context(cafile=str(server.ca_file))
        with socket.create_connection(("127.0.0.1", server.https_port)) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.version()
    assert not (server.state_dir / "tls.key").exists()


def test_least_privilege_identities_and_faults(tmp_path):
    """Extra identities get only their actions; pause/resume and kill/restart behave as documented."""
    with SeaweedS3(
        tmp_path / "sw",
        identities={
            "writer": {"actions": ["Write:backups", "List:backups"]},
            "reader": {"actions": ["Read:backups", "List:backups"]},
        },
    ) as sw:
        sw.create_bucket("backups")
        writer = sw.identity_client("writer")
        reader = sw.identity_client("reader")
        writer.put_object(Bucket="backups", Key="k", Body=b"v1")
        assert reader.get_object(Bucket="backups", Key="k")["Body"].read() == b"v1"
        for call in (
            lambda: writer.get_object(Bucket="backups", Key="k"),
            lambda: reader.put_object(Bucket="backups", Key="k2", Body=b"x"),
            lambda: writer.create_bucket(Bucket="other"),
        ):
            with pytest.raises(botocore.exceptions.ClientError) as err:
                call()
            assert _error_code(err.value) == "AccessDenied"
        assert sw.identity_connection("reader").login == sw.identities["reader"]["access_key"]

        # pause: requests hang (time out) rather than being refused; resume serves them again.
        impatient = sw.client(connect_timeout=1, read_timeout=1, max_attempts=1)
        sw.pause()
        try:
            with pytest.raises(botocore.exceptions.ReadTimeoutError):
                impatient.get_object(Bucket="backups", Key="k")
        finally:
            sw.resume()
        assert impatient.get_object(Bucket="backups", Key="k")["Body"].read() == b"v1"

        # kill: connections are refused; restart on the same ports keeps the data.
        old_pid = sw.pid
        sw.kill()
        assert not _alive(old_pid)
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            impatient.get_object(Bucket="backups", Key="k")
        sw.restart()
        assert impatient.get_object(Bucket="backups", Key="k")["Body"].read() == b"v1"
        pid = sw.pid
    assert not _alive(pid)
    assert not (tmp_path / "sw").exists()


# -- sample databases ------------------------------------------------------------------------
def test_pg_sample_has_the_promised_features(pg_server, pg_sample):
    db = pg_sample.schema

    def one(sql):
        return pg_server.query(sql, database=db)[0][0]

    assert one("SELECT count(*) FROM pg_namespace WHERE nspname IN ('sales', 'inventory', 'audit')") == 3
    assert one("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'inventory'") == "shop_owner"
    assert (
        one("SELECT tableowner FROM pg_tables WHERE schemaname = 'inventory' AND tablename = 'stock'") == "shop_owner"
    )
    assert one("SELECT has_table_privilege('shop_reader', 'sales.orders', 'SELECT')") is True
    assert one("SELECT has_table_privilege('shop_reader', 'audit.events', 'SELECT')") is False
    assert (
        one(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace::regnamespace::text "
            "IN ('sales', 'inventory')"
        )
        >= 6
    )
    indexes = {
        r[0]
        for r in pg_server.query(
            "SELECT indexdef FROM pg_indexes WHERE schemaname IN ('sales', 'inventory', 'audit')", database=db
        )
    }
    assert any("USING gin" in d for d in indexes)
    assert any("WHERE" in d for d in indexes)  # partial
    assert any("lower(" in d for d in indexes)  # expression
    assert any("UNIQUE" in d for d in indexes)
    assert one("SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit.events'::regclass") == 4
    assert one("SELECT count(*) FROM pg_type WHERE typname = 'order_status' AND typtype = 'e'") == 1
    assert one("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == 2
    assert one("SELECT count(*) FROM pg_views WHERE schemaname = 'sales'") == 1
    assert one("SELECT count(*) FROM pg_matviews WHERE schemaname = 'sales'") == 1
    assert one("SELECT count(*) FROM pg_largeobject_metadata") == 3
    assert one('SELECT count(*) FROM sales."Order Notes" WHERE "NoteText" <> \'\'') > 0
    assert one("SELECT count(*) FROM sales.customers WHERE full_name LIKE '%山田%'") > 0
    assert one("SELECT count(*) FROM sales.customers WHERE full_name LIKE '%🙂%'") > 0
    # Sequences were advanced by the inserts (identity, serial and a free-standing one).
    assert one("SELECT last_value FROM sales.order_items_id_seq") == one("SELECT count(*) FROM sales.order_items")
    assert (
        one("SELECT last_value FROM sales.invoice_number_seq") >= 100000 + one("SELECT count(*) FROM sales.orders") - 1
    )
    assert one("SELECT pg_get_serial_sequence('sales.orders', 'id')") is not None
    # The trigger fired for the status updates made at the end of generation.
    assert one("SELECT count(*) FROM audit.events WHERE action = 'status_change'") > 0


def test_pg_sample_size_follows_scale_and_seed_is_reproducible(pg_server):
    from devstack.sample_postgres import create_sample_database

    small = create_sample_database(pg_server.connection("scale_small"), scale_mb=2, seed=7)
    bigger = create_sample_database(pg_server.connection("scale_bigger"), scale_mb=12, seed=7)
    try:
        assert 1.2 <= small["data_mb"] <= 3.5, small
        assert 9 <= bigger["data_mb"] <= 16, bigger
        assert bigger["rows"] > 3 * small["rows"]
        assert set(small["tables"]) == set(bigger["tables"])
        assert (
            small["tables"]["sales.orders"]
            == pg_server.query("SELECT count(*) FROM sales.orders", database="scale_small")[0][0]
        )
        checksum = "SELECT md5(string_agg(md5(t::text), '' ORDER BY t.id)) FROM sales.orders t"
        again = create_sample_database(pg_server.connection("scale_again"), scale_mb=2, seed=7)
        assert again["tables"] == small["tables"]
        assert pg_server.query(checksum, database="scale_again") == pg_server.query(checksum, database="scale_small")
    finally:
        for name in ("scale_small", "scale_bigger", "scale_again"):
            pg_server.drop_database(name)


def test_pg_sample_fixture_gives_each_test_its_own_copy(pg_server, pg_sample):
    pg_server.execute('DELETE FROM sales."Order Notes"', database=pg_sample.schema)
    assert pg_server.query('SELECT count(*) FROM sales."Order Notes"', database="sample_template")[0][0] > 0


def test_mariadb_sample_has_the_promised_features(mariadb_server, mariadb_sample):
    db = mariadb_sample.schema

    def one(sql, *params):
        return mariadb_server.query(sql, params or None)[0][0]

    assert mariadb_sample.conn_type == "mysql"
    assert (
        one(
            "SELECT count(*) FROM information_schema.partitions WHERE table_schema = %s "
            "AND table_name = 'events' AND partition_name IS NOT NULL",
            db,
        )
        == 4
    )
    assert one("SELECT count(*) FROM information_schema.referential_constraints WHERE constraint_schema = %s", db) >= 5
    assert (
        one(
            "SELECT count(*) FROM information_schema.statistics WHERE table_schema = %s AND index_type = 'FULLTEXT'", db
        )
        >= 1
    )
    assert (
        one(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s "
            "AND generation_expression IS NOT NULL",
            db,
        )
        == 2
    )
    assert one("SELECT count(*) FROM information_schema.views WHERE table_schema = %s", db) == 1
    assert one("SELECT count(*) FROM information_schema.routines WHERE routine_schema = %s", db) == 1
    assert one("SELECT count(*) FROM information_schema.triggers WHERE trigger_schema = %s", db) == 2
    assert one("SELECT count(*) FROM information_schema.events WHERE event_schema = %s", db) == 1
    assert one(f"SELECT count(*) FROM `{db}`.customers WHERE full_name LIKE '%%🙂%%'") > 0
    assert one(f"SELECT count(*) FROM `{db}`.events WHERE action = 'status_change'") > 0
    assert one(f"SELECT count(*) FROM `{db}`.products WHERE thumbnail IS NOT NULL") > 0
    assert one(f"SELECT count(*) FROM `{db}`.events WHERE JSON_VALID(payload)") == one(
        f"SELECT count(*) FROM `{db}`.events"
    )
    assert one("SELECT @@log_bin") == 1


# -- the demo stack --------------------------------------------------------------------------
def test_stack_start_status_stop(tmp_path):
    import subprocess
    import sys

    from restorable.connections import parse_connection_json, parse_connection_uri

    state_dir = tmp_path / "stack"
    cli = [sys.executable, "-m", "devstack"]
    started = subprocess.run(
        [*cli, "start", "--state-dir", str(state_dir), "--scale-mb", "3", "--monitoring", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        report = json.loads(started.stdout)
        assert report["running"] is True
        assert set(report["services"]) == {"shop_pg", "drill_pg", "shopdb_mysql", "drill_mysql", "s3"}
        # The servers outlived the command that started them.
        status = subprocess.run([*cli, "status", "--state-dir", str(state_dir)], capture_output=True, text=True)
        assert status.returncode == 0 and "NO" not in status.stdout
        env_file = state_dir / "stack.env"
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"
        assert oct((state_dir / "stack.json").stat().st_mode & 0o777) == "0o600"
        env = {}
        for line in env_file.read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
        shop = parse_connection_uri("shop_pg", env["AIRFLOW_CONN_SHOP_PG"])
        with psycopg.connect(
            host=shop.host, port=shop.port, user=shop.login, password=shop.password, dbname=shop.schema
        ) as c:
            assert c.execute("SELECT count(*) FROM sales.orders").fetchone()[0] > 0
        drill = parse_connection_uri("drill_pg", env["AIRFLOW_CONN_DRILL_PG"])
        assert drill.port != shop.port
        for key, table in (("AIRFLOW_CONN_SHOPDB_MYSQL", "orders"), ("AIRFLOW_CONN_DRILL_MYSQL", "user")):
            my = parse_connection_uri("m", env[key])
            c = pymysql.connect(host=my.host, port=my.port, user=my.login, password=my.password, database=my.schema)
            with c.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM `{table}`")
                assert cur.fetchone()[0] > 0
            c.close()
        s3conn = parse_connection_json("restorable_s3", env["AIRFLOW_CONN_RESTORABLE_S3"])
        assert s3conn.conn_type == "aws"
        s3 = SeaweedS3(tmp_path / "unused")
        s3.ports = {"s3.port": int(s3conn.extra["endpoint_url"].rsplit(":", 1)[1])}
        client = s3.client(s3conn.login, s3conn.password)
        assert client.get_bucket_versioning(Bucket="restorable-backups")["Status"] == "Enabled"
        pids = [svc["pid"] for svc in report["services"].values()]
        # Prometheus, Pushgateway and Alertmanager answer, and the runs will push to this Pushgateway.
        monitoring = report["monitoring"]
        assert monitoring["up"] is True
        for url in monitoring["urls"].values():
            with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as ready:
                assert ready.status == 200
        assert env["RESTORABLE_PUSHGATEWAY_URL"] == monitoring["urls"]["pushgateway"]
        pids += json.loads((state_dir / "stack.json").read_text())["monitoring"]["pids"].values()
        assert all(_alive(pid) for pid in pids)
    finally:
        stopped = subprocess.run(
            [*cli, "stop", "--state-dir", str(state_dir)], capture_output=True, text=True, timeout=300
        )
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert not any(_alive(pid) for pid in pids)
    assert sorted(p.name for p in state_dir.iterdir()) == []
    again = subprocess.run([*cli, "stop", "--state-dir", str(state_dir)], capture_output=True, text=True)
    assert again.returncode == 0 and "nothing was running" in again.stdout
    status = subprocess.run([*cli, "status", "--state-dir", str(state_dir)], capture_output=True, text=True)
    assert status.returncode == 3 and "not running" in status.stdout


def test_servers_of_a_killed_owner_are_reaped(tmp_path):
    """A test session killed with SIGKILL cannot tear down; the reaper stops its servers."""
    import signal
    import subprocess
    import sys

    script = f"""
import signal, sys, time
from pathlib import Path
from devstack import start_reaper
from devstack.postgres import PostgresServer
from devstack.seaweedfs import SeaweedS3
pg = PostgresServer(Path({str(tmp_path)!r}), name="orphan").start()
start_reaper(__import__("os").getpid(), pg.pid, [pg.base_dir], sig=signal.SIGQUIT)
sw = SeaweedS3(Path({str(tmp_path)!r}) / "sw").start()
start_reaper(__import__("os").getpid(), sw.pid, [sw.state_dir])
print(pg.pid, sw.pid, pg.base_dir, flush=True)
time.sleep(600)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pg_pid, sw_pid, base_dir = proc.stdout.readline().split()
        pg_pid, sw_pid = int(pg_pid), int(sw_pid)
        assert _alive(pg_pid) and _alive(sw_pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        _alive(pg_pid) or _alive(sw_pid) or os.path.exists(base_dir) or (tmp_path / "sw").exists()
    ):
        time.sleep(0.2)
    assert not _alive(pg_pid) and not _alive(sw_pid)
    assert not os.path.exists(base_dir) and not (tmp_path / "sw").exists()
