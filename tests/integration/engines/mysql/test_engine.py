"""MySQLEngine against real MariaDB 10.11 servers (source with binlog, separate target)."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pymysql
import pytest

from restorable.connections import ConnectionInfo
from restorable.engines.base import iter_chunks
from restorable.engines.compare import compare_descriptions
from restorable.engines.mysql.engine import MySQLEngine
from restorable.exceptions import AuthenticationFailed, IntegrityError, RestoreRefused, SourceUnreachable, ToolError

pytestmark = pytest.mark.integration

GHOST = "ghost_definer"


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _create_rich_database(server, database: str, *, orders: int = 20000) -> ConnectionInfo:
    """A small schema with everything the description covers, and a definer missing elsewhere."""
    server.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    statements = [
        f"CREATE USER IF NOT EXISTS '{GHOST}'@'%' IDENTIFIED BY 'x'",
        f"GRANT SELECT, INSERT, EXECUTE ON *.* TO '{GHOST}'@'%'",
        """CREATE TABLE customers (
             id BIGINT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(200) NOT NULL, name VARCHAR(100),
             note TEXT, UNIQUE KEY uq_email (email), FULLTEXT KEY ft_name_note (name, note))""",
        """CREATE TABLE orders (
             id BIGINT PRIMARY KEY AUTO_INCREMENT, customer_id BIGINT NOT NULL,
             amount DECIMAL(10,2) NOT NULL CHECK (amount >= 0), payload BLOB, created DATETIME(3),
             KEY idx_cust_created (customer_id, created DESC), KEY idx_note_prefix (payload(16)),
             CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
               ON DELETE CASCADE ON UPDATE RESTRICT)""",
        "CREATE TABLE kv (k1 INT, k2 VARCHAR(10), v JSON, PRIMARY KEY (k1, k2)) ENGINE=InnoDB",
        "CREATE TABLE ledger_a (id BIGINT PRIMARY KEY AUTO_INCREMENT, v INT NOT NULL)",
        "CREATE TABLE ledger_b (id BIGINT PRIMARY KEY AUTO_INCREMENT, v INT NOT NULL)",
        "CREATE TABLE `odd name` (`we``ird` INT NOT NULL, `ü` VARCHAR(5) NULL)",
        "CREATE SEQUENCE seq_invoice START WITH 100 INCREMENT BY 5",
        "INSERT INTO customers (email, name, note) SELECT CONCAT('c', seq, '@example.com'), "
        "CONCAT('Name ', seq), IF(seq % 7 = 0, NULL, CONCAT('line1\\nline2 ', seq, ' DEFINER=`x`@`y`')) "
        "FROM seq_1_to_500",
        f"INSERT INTO orders (customer_id, amount, payload, created) SELECT 1 + seq % 500, (seq % 1000) / 3, "
        f"IF(seq % 3 = 0, UNHEX(SHA2(seq, 256)), NULL), '2024-01-01' + INTERVAL seq SECOND "
        f"FROM seq_1_to_{orders}",
        "INSERT INTO kv VALUES (1, 'a', '{\"x\": 1}'), (2, 'b', NULL), (-1, 'z', '[]')",
        "INSERT INTO ledger_a (v) SELECT seq FROM seq_1_to_300",
        "INSERT INTO ledger_b (v) SELECT seq FROM seq_1_to_300",
        "INSERT INTO `odd name` VALUES (1, 'é'), (2, NULL)",
        f"""CREATE DEFINER='{GHOST}'@'%' SQL SECURITY DEFINER VIEW v_order_emails AS
             SELECT o.id, c.email FROM orders o JOIN customers c ON c.id = o.customer_id""",
        f"CREATE DEFINER='{GHOST}'@'%' PROCEDURE p_add_order(IN c BIGINT, IN a DECIMAL(10,2)) "
        "BEGIN INSERT INTO orders (customer_id, amount) VALUES (c, a); END",
        "CREATE FUNCTION f_double(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
        """CREATE TRIGGER trg_orders_cap BEFORE INSERT ON orders FOR EACH ROW
             BEGIN
               IF NEW.amount > 100000 THEN SET NEW.amount = 100000; END IF;
             END""",
        "CREATE EVENT ev_purge ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE "
        "DO DELETE FROM kv WHERE k1 < 0",
    ]
    for sql in statements:
        server.execute(sql, database=database)
    return server.connection(database)


def _table_digests(server, database: str) -> dict[str, str]:
    """md5 of every table's rows in primary-key (or full) order."""
    out = {}
    tables = [
        r[0]
        for r in server.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'",
            (database,),
        )
    ]
    for table in tables:
        rows = server.query(f"SELECT * FROM `{table.replace('`', '``')}` ORDER BY 1, 2", database=database)
        out[table] = hashlib.md5(repr(rows).encode()).hexdigest()
    return out


def _read_all(dump, *, chunk: int = 1 << 20, pause: float = 0.0, on_chunk=None) -> bytes:
    parts = []
    for part in iter_chunks(dump.stdout, chunk):
        parts.append(part)
        if on_chunk:
            on_chunk()
        if pause:
            time.sleep(pause)
    return b"".join(parts)


def _password_visible(password: str) -> list[str]:
    """Processes whose command line or environment holds ``password``."""
    found = []
    needle = password.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        for what in ("cmdline", "environ"):
            try:
                if needle in (entry / what).read_bytes():
                    found.append(f"{entry.name}/{what}")
            except OSError:
                continue
    return found


@pytest.fixture
def source_db(mariadb_server):
    name = _name("src")
    conn = _create_rich_database(mariadb_server, name)
    yield conn
    mariadb_server.drop_database(name)


@pytest.fixture
def engine() -> MySQLEngine:
    return MySQLEngine()


def test_preflight_reports_server_tools_and_binlog(engine, source_db):
    facts = engine.preflight(source_db)
    assert "MariaDB" in facts["server_version"]
    assert facts["server_flavour"] == "mariadb"
    assert facts["dump_tool"] == "mariadb-dump"
    assert facts["dump_tool_version"].startswith("10.11")
    assert facts["log_bin"] == "ON"
    assert facts["binlog_file"]


def test_preflight_bad_password_and_unreachable(engine, mariadb_server, source_db):
    wrong = mariadb_server.connection(source_db.schema, password="Wrong-Pass-123")
    with pytest.raises(AuthenticationFailed) as info:
        engine.preflight(wrong)
    assert "Wrong-Pass-123" not in str(info.value)
    from devstack.ports import free_port

    nowhere = ConnectionInfo(
        "x", "mysql", host="127.0.0.1", port=free_port(), login="root", password="Secret-Pass-9", schema="db"
    )
    with pytest.raises(SourceUnreachable) as info:
        engine.preflight(nowhere)
    assert not isinstance(info.value, AuthenticationFailed)
    assert "Secret-Pass-9" not in str(info.value)


def test_round_trip_into_other_server_under_another_name(
    engine, mariadb_server, mariadb_target_server, source_db, caplog
):
    caplog.set_level(logging.DEBUG)
    leaks: list[str] = []
    target = _name("restored")
    with engine.logical.capture(source_db) as (metadata, dump):
        leaks += _password_visible(mariadb_server.password)
        data = _read_all(
            dump, chunk=64 * 1024, on_chunk=lambda: leaks.extend(_password_visible(mariadb_server.password))
        )
        dump.finish()
    assert leaks == []
    assert metadata.lock_seconds is not None and 0 < metadata.lock_seconds < 5
    assert metadata.position["log_bin"] is True
    assert metadata.position["binlog_file"].startswith("mariadb-bin.")
    assert metadata.position["binlog_position"] > 0
    assert "gtid_binlog_pos" in metadata.position
    assert metadata.tools["mariadb-dump"].startswith("10.11")
    assert metadata.row_counts["orders"] == 20000 and metadata.row_counts['"odd name"'] == 2
    assert "seq_invoice" not in metadata.row_counts
    schema = metadata.schema
    assert schema["tables"]["orders"]["primary_key"] == ["id"]
    assert schema["tables"]["kv"]["primary_key"] == ["k1", "k2"]
    assert schema["indexes"]["customers.ft_name_note"] == "FULLTEXT (`name`, `note`)"
    assert schema["indexes"]["orders.idx_cust_created"] == "BTREE (`customer_id`, `created` DESC)"
    assert schema["constraints"]["orders.fk_orders_customer"] == (
        "FOREIGN KEY (`customer_id`) REFERENCES `customers` (`id`) ON UPDATE RESTRICT ON DELETE CASCADE"
    )
    assert "orders.CONSTRAINT_1" in schema["constraints"] or any(
        v.startswith("CHECK") for v in schema["constraints"].values()
    )
    assert source_db.schema not in schema["views"]["v_order_emails"]
    assert set(schema["routines"]) == {"PROCEDURE p_add_order", "FUNCTION f_double"}
    assert set(schema["triggers"]) == {"trg_orders_cap"} and set(schema["events"]) == {"ev_purge"}
    assert schema["sequences"]["seq_invoice"]["increment"] == 5
    assert {r["definer"] for r in metadata.roles} >= {f"{GHOST}@%"}
    # The dump is not tied to its database name.
    assert b"CREATE DATABASE" not in data and b"\nUSE " not in data

    with engine.logical.list_dump() as check:
        for i in range(0, len(data), 100_003):
            check.write(data[i : i + 100_003])

    target_conn = mariadb_target_server.connection(target)
    assert engine.target_state(target_conn, target) == "absent"
    with engine.logical.restore(target_conn, target, metadata, overwrite=False) as stream:
        for i in range(0, len(data), 65_537):  # odd chunk size: lines straddle writes
            stream.write(data[i : i + 65_537])
    try:
        assert stream.definers_rewritten.get(f"'{GHOST}'@'%'") == 2
        found = engine.describe(target_conn)
        assert compare_descriptions(metadata, found) == []
        assert _table_digests(mariadb_target_server, target) == _table_digests(mariadb_server, source_db.schema)
        # The objects whose DEFINER is missing on the target work there.
        assert mariadb_target_server.query("SELECT COUNT(*) FROM v_order_emails", database=target)[0][0] == 20000
        mariadb_target_server.execute("CALL p_add_order(1, 5.00)", database=target)
        assert mariadb_target_server.query("SELECT f_double(21)", database=target)[0][0] == 42
        assert engine.target_state(target_conn, target) == "non_empty"
    finally:
        engine.drop_database(target_conn, target)
    assert engine.target_state(target_conn, target) == "absent"
    assert mariadb_server.password not in caplog.text
    assert mariadb_target_server.password not in caplog.text


@pytest.mark.parametrize("beside", [False, True], ids=["counted-first", "counted-beside-the-stream"])
def test_counts_exact_under_concurrent_writes(
    engine, mariadb_server, mariadb_target_server, source_db, beside, monkeypatch
):
    """Counts equal the dump's content with a writer busy throughout; backups count beside the
    stream (capture_streaming), here a second late, while the writer keeps committing."""
    if beside:
        from restorable.engines.mysql import logical as mysql_module

        original = mysql_module.count_rows

        def late(*args, **kwargs):
            time.sleep(1.0)
            return original(*args, **kwargs)

        monkeypatch.setattr(mysql_module, "count_rows", late)
    stop = threading.Event()
    ops = {"n": 0, "during_capture": 0}
    capturing = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            db = mariadb_server.connect(source_db.schema)
            with db.cursor() as cur:
                while not stop.is_set():
                    cur.execute("BEGIN")
                    cur.execute("INSERT INTO ledger_a (v) VALUES (1)")
                    cur.execute("INSERT INTO ledger_b (v) VALUES (1)")
                    cur.execute("INSERT INTO orders (customer_id, amount) VALUES (1, 1)")
                    cur.execute("DELETE FROM orders ORDER BY id LIMIT 1")
                    cur.execute("COMMIT")
                    ops["n"] += 1
                    if capturing.is_set():
                        ops["during_capture"] += 1
            db.close()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    time.sleep(0.3)
    capturing.set()
    with engine.logical.capture_streaming(source_db) as (pending, dump):
        if not beside:
            pending.result()
        at_snapshot = ops["during_capture"]
        # A slow reader: the dump takes seconds while the writer keeps committing.
        data = _read_all(dump, chunk=32 * 1024, pause=0.02)
        dump.finish()
        metadata = pending.result()
    after = ops["during_capture"]
    stop.set()
    thread.join(10)
    assert errors == []
    assert after - at_snapshot > 20, "writes must overlap the dump"
    counts = metadata.row_counts
    assert counts["ledger_a"] == counts["ledger_b"]
    target = _name("consistent")
    target_conn = mariadb_target_server.connection(target)
    with engine.logical.restore(target_conn, target, metadata, overwrite=False) as stream:
        stream.write(data)
    try:
        found = engine.describe(target_conn)
        assert found.row_counts == counts
        assert compare_descriptions(metadata, found) == []
    finally:
        engine.drop_database(target_conn, target)


def test_dump_killed_mid_stream_raises_tool_error(engine, source_db):
    with pytest.raises(ToolError) as info:
        with engine.logical.capture(source_db) as (_metadata, dump):
            dump.stdout.read(4096)
            os.kill(dump.pid, signal.SIGKILL)
            _read_all(dump)
            dump.finish()
    assert "signal 9" in str(info.value)


def test_truncated_dump_fails_structural_check(engine, source_db):
    with engine.logical.capture(source_db) as (_metadata, dump):
        data = _read_all(dump)
        dump.finish()
    with pytest.raises(IntegrityError, match="Dump completed|inside a statement"):
        with engine.logical.list_dump() as check:
            check.write(data[: len(data) // 2])
    with pytest.raises(IntegrityError, match="header"):
        with engine.logical.list_dump() as check:
            check.write(b"\x00garbage\n" + data)


def test_non_empty_target_refused_and_untouched(engine, mariadb_target_server, source_db):
    target = _name("occupied")
    mariadb_target_server.create_database(target)
    mariadb_target_server.execute("CREATE TABLE keep_me (id INT PRIMARY KEY)", database=target)
    mariadb_target_server.execute("INSERT INTO keep_me VALUES (1), (2)", database=target)
    target_conn = mariadb_target_server.connection(target)
    try:
        with engine.logical.capture(source_db) as (metadata, dump):
            data = _read_all(dump)
            dump.finish()
        with pytest.raises(RestoreRefused) as info:
            with engine.logical.restore(target_conn, target, metadata, overwrite=False) as stream:
                stream.write(data)
        message = str(info.value)
        assert target in message and str(mariadb_target_server.port) in message and "--overwrite" in message
        assert mariadb_target_server.query("SELECT COUNT(*) FROM keep_me", database=target)[0][0] == 2
        # With overwrite the old content is gone and the backup is there.
        with engine.logical.restore(target_conn, target, metadata, overwrite=True) as stream:
            stream.write(data)
        assert compare_descriptions(metadata, engine.describe(target_conn)) == []
    finally:
        mariadb_target_server.drop_database(target)


def test_failed_restore_raises_tool_error_with_stderr(engine, mariadb_target_server):
    target = _name("broken")
    target_conn = mariadb_target_server.connection(target)
    try:
        with pytest.raises(ToolError, match="ERROR"):
            with engine.logical.restore(target_conn, target, None, overwrite=False) as stream:
                stream.write(b"CREATE TABLE t (id INT);\nINSERT INTO nope VALUES (1);\n")
    finally:
        engine.drop_database(target_conn, target)


def test_capture_without_reload_privilege_is_a_clear_error(engine, mariadb_server, source_db):
    user = _name("nolock")
    mariadb_server.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'Pw-{user}'")
    mariadb_server.execute(f"GRANT SELECT, SHOW VIEW ON `{source_db.schema}`.* TO '{user}'@'127.0.0.1'")
    try:
        conn = mariadb_server.connection(source_db.schema, login=user, password=f"Pw-{user}")
        with pytest.raises(Exception) as info:
            with engine.logical.capture(conn):
                pass
        assert "RELOAD" in str(info.value) or "BINLOG" in str(info.value).upper()
        assert f"Pw-{user}" not in str(info.value)
    finally:
        mariadb_server.execute(f"DROP USER '{user}'@'127.0.0.1'")
    with (
        pymysql.connect(
            host="127.0.0.1", port=mariadb_server.port, user="root", password=mariadb_server.password
        ) as db,
        db.cursor() as cur,
    ):
        # The failed capture left no global read lock behind.
        cur.execute("SET SESSION lock_wait_timeout = 2")
        cur.execute(f"INSERT INTO `{source_db.schema}`.kv VALUES (99, 'free', NULL)")
        db.commit()
