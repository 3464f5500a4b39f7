"""PostgresEngine against real PostgreSQL 15 servers (pg_server -> pg_target_server)."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from restorable.connections import ConnectionInfo
from restorable.engines.base import iter_chunks
from restorable.engines.compare import compare_descriptions, digest_setting
from restorable.engines.postgres import tools as pg_tools
from restorable.engines.postgres.engine import PostgresEngine
from restorable.exceptions import (
    AuthenticationFailed,
    IntegrityError,
    RestoreRefused,
    SourceUnreachable,
    ToolError,
)
from restorable.metadata import split_key

pytestmark = pytest.mark.integration

ENGINE = PostgresEngine()


# ------------------------------------------------------------------------------------ helpers
def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _run(conn: ConnectionInfo, *statements: str | sql.Composable, params=None) -> None:
    with pg_tools.connect(conn, conn.schema or "postgres") as pg:
        for statement in statements:
            pg.execute(statement, params)


def _query(conn: ConnectionInfo, statement: str | sql.Composable, params=None) -> list[tuple]:
    with pg_tools.connect(conn, conn.schema or "postgres") as pg:
        return pg.execute(statement, params).fetchall()


def table_md5s(conn: ConnectionInfo, tables: list[str]) -> dict[str, str | None]:
    """md5 of each table's content, rows in text order."""
    out = {}
    with pg_tools.connect(conn, conn.schema or "postgres") as pg:
        for key in tables:
            schema, table = split_key(key)
            query = sql.SQL("select md5(string_agg(t::text, ',' order by t::text)) from ONLY {} t").format(
                sql.Identifier(schema, table)
            )
            out[key] = pg.execute(query).fetchone()[0]
    return out


def scan_cmdlines(secret: str) -> list[str]:
    """Every process command line holding ``secret`` (there must be none)."""
    hits = []
    needle = secret.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            shown = cmdline.replace(b"\0", b" ")[:200]
            hits.append(f"{entry.name}: {shown!r}")
    return hits


def build_rich_database(server, database: str, suffix: str, *, rows: int = 3000) -> dict[str, str]:
    """A small database with most things a restore can lose: roles, owners, grants, default
    privileges, enums, domains, identity and serial columns, partitions, views, a materialized
    view, a trigger function, a standalone sequence, large objects, a dropped column, row-level
    security, an event trigger, and the database's own owner, comment, privileges and settings."""
    roles = {
        "owner": f"app_owner_{suffix}",
        "reader": f"app_reader_{suffix}",
        "writer": f"app_writer_{suffix}",
        "reader_password": f"reader-Secret-{suffix}",
    }
    server.create_database(database)
    admin = server.connection("postgres")
    _run(
        admin,
        f"create role {roles['owner']} nologin createdb",
        f"create role {roles['reader']} login password '{roles['reader_password']}'",
        f"create role {roles['writer']} nologin noinherit in role {roles['reader']}",
    )
    conn = server.connection(database)
    o, r, w = roles["owner"], roles["reader"], roles["writer"]
    _run(
        conn,
        f"create schema sales authorization {o}",
        "create type sales.status as enum ('new', 'paid', 'shipped')",
        "create domain sales.money2 as numeric(12,2) check (value >= 0)",
        """create table sales.customers (
               id bigserial primary key, email text not null unique,
               created_at timestamptz not null default '2024-01-01')""",
        """create table sales.orders (
               id bigint generated always as identity primary key,
               customer_id bigint not null references sales.customers(id),
               legacy int,
               status sales.status not null default 'new',
               total sales.money2, price numeric(12,2) check (price >= 0),
               note text, tags text[], payload jsonb)""",
        "alter table sales.orders drop column legacy",
        "create index orders_customer_idx on sales.orders (customer_id, status)",
        """create table sales.events (id bigserial, happened date not null, kind text,
               primary key (id, happened)) partition by range (happened)""",
        "create table sales.events_2024 partition of sales.events for values from ('2024-01-01') to ('2025-01-01')",
        "create table sales.events_2025 partition of sales.events for values from ('2025-01-01') to ('2026-01-01')",
        """create view sales.order_totals as
               select customer_id, sum(price) as total from sales.orders group by customer_id""",
        "create materialized view sales.status_counts as select status, count(*) as n from sales.orders group by 1",
        """create function sales.touch() returns trigger language plpgsql as
               $$ begin new.note := coalesce(new.note, 'touched'); return new; end $$""",
        "create trigger orders_touch before insert on sales.orders for each row execute function sales.touch()",
        "create sequence sales.invoice_no start 1000",
        "select nextval('sales.invoice_no') from generate_series(1, 3)",
        "create table public.documents (id serial primary key, title text not null, body oid)",
        f"""insert into sales.customers (email)
                select 'c' || g || '@example.com' from generate_series(1, {rows // 3}) g""",
        f"""insert into sales.orders (customer_id, status, total, price, tags, payload)
                select 1 + g % {rows // 3}, (array['new','paid','shipped'])[1 + g % 3]::sales.status,
                       (g % 500)::numeric / 7, (g % 300)::numeric / 3, array['t' || g % 5],
                       jsonb_build_object('g', g, 'pad', repeat('x', 200))
                from generate_series(1, {rows}) g""",
        f"""insert into sales.events (happened, kind)
                select date '2024-06-01' + (g % 400), 'k' || g % 7 from generate_series(1, {rows}) g""",
        "refresh materialized view sales.status_counts",
        """insert into public.documents (title, body)
               select 'doc ' || g, lo_from_bytea(0, convert_to(repeat(md5(g::text), 50 * g), 'UTF8'))
               from generate_series(1, 3) g""",
        # Owners and grants that must come back.
        f"alter table sales.customers owner to {o}",
        f"alter table sales.orders owner to {o}",
        f"alter table sales.events owner to {o}",
        f"alter view sales.order_totals owner to {o}",
        f"alter function sales.touch() owner to {o}",
        f"alter type sales.status owner to {o}",
        f"grant usage on schema sales to {r}",
        f"grant select on all tables in schema sales to {r}",
        f"grant insert, update on sales.orders to {w}",
        f"grant select (id, email) on sales.customers to {w}",
        "revoke execute on function sales.touch() from public",
        f"alter default privileges for role {o} in schema sales grant select on tables to {r}",
    )
    lo_oid = _query(conn, "select min(body) from public.documents")[0][0]
    _run(conn, f"alter large object {lo_oid} owner to {o}", f"grant select on large object {lo_oid} to {r}")
    # Row-level security and an event trigger: pg_dump keeps them, the description must see them.
    _run(
        conn,
        "alter table sales.orders enable row level security",
        "alter table sales.customers force row level security",
        f"create policy orders_paid on sales.orders for select to {r} using (status <> 'new')",
        f"create policy orders_write on sales.orders as restrictive for insert to {w} with check (price < 1000)",
        """create function public.ddl_noop() returns event_trigger language plpgsql as
               $$ begin null; end $$""",
        "create event trigger ddl_noop on ddl_command_end when tag in ('CREATE TABLE') "
        "execute function public.ddl_noop()",
    )
    # What pg_dump leaves out without --create: the database's own properties.
    db = sql.Identifier(database)
    _run(
        admin,
        sql.SQL("alter database {} owner to {}").format(db, sql.Identifier(o)),
        sql.SQL("comment on database {} is 'the shop''s orders'").format(db),
        sql.SQL("alter database {} connection limit 40").format(db),
        sql.SQL("alter database {} set work_mem to '7MB'").format(db),
        sql.SQL('alter database {} set search_path to sales, "$user", public').format(db),
        sql.SQL("alter role {} in database {} set statement_timeout to '5s'").format(sql.Identifier(r), db),
        sql.SQL("revoke connect, temporary on database {} from public").format(db),
        sql.SQL("grant connect on database {} to {}").format(db, sql.Identifier(r)),
        sql.SQL("grant temporary on database {} to {} with grant option").format(db, sql.Identifier(w)),
    )
    return roles


def drop_roles(server, roles: dict[str, str]) -> None:
    with server.connect() as pg:
        for key in ("writer", "reader", "owner"):
            try:
                pg.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(roles[key])))
            except psycopg.Error:
                pass  # still owns something in a database another test left behind


def start_ledger_writer(conn: ConnectionInfo) -> tuple[dict[str, int], threading.Event, threading.Thread]:
    """A thread inserting and deleting ledger rows in ``conn``'s database until the event is set;
    ``writes["n"]`` counts its committed rounds."""
    stop = threading.Event()
    writes = {"n": 0}

    def writer() -> None:
        with psycopg.connect(
            host=conn.host, port=conn.port, user=conn.login, password=conn.password, dbname=conn.schema, autocommit=True
        ) as pg:
            while not stop.is_set():
                pg.execute("insert into ledger (amount, pad) select g, 'w' from generate_series(1, 20) g")
                pg.execute("delete from ledger where id in (select id from ledger order by random() limit 7)")
                writes["n"] += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return writes, stop, thread


def pipe(dump, out) -> int:
    n = 0
    for chunk in iter_chunks(dump.stdout):
        out.write(chunk)
        n += len(chunk)
    return n


def test_counts_read_beside_the_stream_are_the_snapshots(pg_server, pg_target_server, monkeypatch):
    """Backups read counts on a thread while pg_dump streams; counted a second after the snapshot,
    with a writer busy all along, they are still exactly what the dump holds."""
    import io

    from restorable.engines.postgres import logical as postgres_module

    database = _name("busy_beside")
    conn = pg_server.create_database(database)
    _run(
        conn,
        "create table ledger (id bigserial primary key, amount int not null, pad text)",
        "insert into ledger (amount, pad) select g, repeat('p', 300) from generate_series(1, 20000) g",
    )
    original = postgres_module.read_description

    def late(pg, **kwargs):
        time.sleep(1.0)  # the writer commits more rows before a single one is counted
        return original(pg, **kwargs)

    monkeypatch.setattr(postgres_module, "read_description", late)
    writes, stop, thread = start_ledger_writer(conn)
    try:
        time.sleep(0.3)
        with ENGINE.logical.capture_streaming(conn) as (pending, dump):
            at_snapshot = writes["n"]
            stored = io.BytesIO()
            pipe(dump, stored)
            dump.finish()
            metadata = pending.result()
            during = writes["n"] - at_snapshot
    finally:
        stop.set()
        thread.join(10)
    assert during > 5, "the writer made no progress while counting: the test proves nothing"
    assert _query(conn, "select count(*) from ledger")[0][0] != metadata.row_counts["public.ledger"]
    target = pg_target_server.connection("postgres")
    restored = _name("busy_beside_restored")
    with ENGINE.logical.restore(target, restored, metadata, overwrite=False) as out:
        out.write(stored.getvalue())
    found = ENGINE.describe(pg_target_server.connection(restored))
    assert found.row_counts == metadata.row_counts
    assert compare_descriptions(metadata, found) == []
    ENGINE.drop_database(target, restored)
    pg_server.drop_database(database)


@pytest.fixture
def rich_source(pg_server, pg_target_server):
    database = _name("rich")
    suffix = uuid.uuid4().hex[:6]
    roles = build_rich_database(pg_server, database, suffix)
    yield pg_server.connection(database), roles
    pg_server.drop_database(database)
    drop_roles(pg_server, roles)
    drop_roles(pg_target_server, roles)


def test_round_trip_into_other_server(rich_source, pg_target_server, caplog):
    caplog.set_level(logging.DEBUG)
    source, roles = rich_source
    target = pg_target_server.connection("postgres")
    restored = _name("restored")
    passwords = [source.password, target.password, roles["reader_password"]]

    preflight = ENGINE.preflight(source)
    assert preflight["pg_dump"].startswith("15.") and preflight["server_version"].startswith("15.")

    with ENGINE.logical.capture(source) as (metadata, dump):
        first = dump.stdout.read(4096)
        assert first.startswith(b"PGDMP")
        # pg_dump is running (blocked on its pipe): no password in any command line, only a
        # 0600 password file named in its environment.
        for secret in passwords:
            assert scan_cmdlines(secret) == []
        environ = Path(f"/proc/{dump.pid}/environ").read_bytes().split(b"\0")
        assert not any(e.startswith(b"PGPASSWORD=") for e in environ)
        passfile = next(e for e in environ if e.startswith(b"PGPASSFILE=")).split(b"=", 1)[1].decode()
        assert stat.S_IMODE(os.stat(passfile).st_mode) == 0o600
        with ENGINE.logical.restore(target, restored, metadata, overwrite=False) as out:
            out.write(first)
            total = len(first) + pipe(dump, out)
            for secret in passwords:
                assert scan_cmdlines(secret) == []
        dump.finish()
    assert not os.path.exists(passfile)
    assert total > 500_000

    # The metadata: keys, sections, position, roles without passwords.
    assert metadata.row_counts["sales.orders"] == 3000
    assert metadata.row_counts["sales.events_2024"] + metadata.row_counts["sales.events_2025"] == 3000
    assert "sales.events" not in metadata.row_counts  # partitioned parent: counted in its leaves
    assert "sales.events" in metadata.schema["tables"]
    assert metadata.schema["tables"]["sales.orders"]["primary_key"] == ["id"]
    assert [c["name"] for c in metadata.schema["tables"]["sales.orders"]["columns"]][:3] == [
        "id",
        "customer_id",
        "status",
    ]
    assert metadata.schema["sequences"]["sales.invoice_no"]["last_value"] == 1002
    assert metadata.schema["large_objects"]["count"] == 3
    assert metadata.schema["owners"]["table sales.orders"] == roles["owner"]
    assert "sales.status" in metadata.schema["types"]
    assert metadata.position["snapshot_id"] and metadata.position["wal_lsn"]
    role_names = {r["name"] for r in metadata.roles}
    assert {roles["owner"], roles["reader"], roles["writer"]} <= role_names
    recorded = json.dumps(metadata.__dict__, default=str)
    for secret in passwords:
        assert secret not in recorded

    # The restored copy equals the snapshot: description, content, sequences, large objects.
    restored_conn = pg_target_server.connection(restored)
    found = ENGINE.describe(restored_conn)
    assert compare_descriptions(metadata, found) == []
    assert found.schema["sequences"] == metadata.schema["sequences"]
    assert found.schema["grants"] == metadata.schema["grants"]
    assert found.schema["owners"] == metadata.schema["owners"]
    assert found.schema["row_security"] == metadata.schema["row_security"]
    assert metadata.schema["row_security"]["table sales.customers"] == "forced"
    assert metadata.schema["row_security"]["policy sales.orders.orders_write"]["permissive"] is False
    assert found.schema["event_triggers"] == metadata.schema["event_triggers"]
    assert metadata.schema["event_triggers"]["ddl_noop"]["tags"] == ["CREATE TABLE"]
    # The database's own properties came back although the dump does not carry them.
    props = metadata.schema["database_properties"]
    assert props["owner"] == roles["owner"] and props["comment"] == "the shop's orders"
    assert props["connection_limit"] == 40
    # Setting values may be secrets: the manifest's copy holds digests, the values are sealed.
    settings = ['search_path=sales, "$user", public', "work_mem=7MB"]
    assert metadata.sealed["database_properties"]["settings"] == settings
    assert props["settings"] == [digest_setting(s) for s in settings]
    assert metadata.sealed["database_properties"]["role_settings"] == {roles["reader"]: ["statement_timeout=5s"]}
    assert found.schema["database_properties"]["settings"] == settings
    assert found.schema["database_properties"]["role_settings"] == {roles["reader"]: ["statement_timeout=5s"]}
    assert f"{roles['reader']}:CONNECT" in props["privileges"]
    assert f"{roles['writer']}:TEMPORARY:grantable" in props["privileges"]
    assert not [p for p in props["privileges"] if p.startswith("PUBLIC:")]
    assert table_md5s(restored_conn, list(metadata.row_counts)) == table_md5s(source, list(metadata.row_counts))
    lo_query = "select oid, md5(lo_get(oid)) from pg_largeobject_metadata order by oid"
    assert _query(restored_conn, lo_query) == _query(source, lo_query)

    # Roles were created on the target: NOLOGIN, memberships kept.
    rows = _query(
        target,
        "select rolname, rolcanlogin, rolsuper, rolcreatedb from pg_roles where rolname = any(%s) order by 1",
        ([roles["owner"], roles["reader"], roles["writer"]],),
    )
    assert {r[0]: r[1:] for r in rows} == {
        roles["owner"]: (False, False, True),
        roles["reader"]: (False, False, False),
        roles["writer"]: (False, False, False),
    }
    members = _query(
        target,
        "select pg_has_role(%s, %s, 'member')",
        (roles["writer"], roles["reader"]),
    )
    assert members == [(True,)]

    assert not [r for r in caplog.records for s in passwords if s in r.getMessage()]
    ENGINE.drop_database(target, restored)
    assert ENGINE.target_state(target, restored) == "absent"


def test_consistency_under_concurrent_writes(pg_server, pg_target_server):
    database = _name("busy")
    conn = pg_server.create_database(database)
    _run(
        conn,
        "create table ledger (id bigserial primary key, amount int not null, pad text)",
        "insert into ledger (amount, pad) select g, repeat('p', 300) from generate_series(1, 20000) g",
    )
    writes, stop, thread = start_ledger_writer(conn)
    target = pg_target_server.connection("postgres")
    restored = _name("busy_restored")
    try:
        time.sleep(0.3)
        with ENGINE.logical.capture(conn) as (metadata, dump):
            at_snapshot = writes["n"]
            time.sleep(1.0)  # writes keep landing after the snapshot, before pg_dump reads the table
            with ENGINE.logical.restore(target, restored, metadata, overwrite=False) as out:
                pipe(dump, out)
            dump.finish()
            during = writes["n"] - at_snapshot
    finally:
        stop.set()
        thread.join(10)
    assert during > 5, "the writer made no progress during the capture: the test proves nothing"
    live = _query(conn, "select count(*) from ledger")[0][0]
    assert live != metadata.row_counts["public.ledger"]
    found = ENGINE.describe(pg_target_server.connection(restored))
    assert found.row_counts == metadata.row_counts
    assert compare_descriptions(metadata, found) == []
    ENGINE.drop_database(target, restored)
    pg_server.drop_database(database)


@pytest.fixture
def small_source(pg_server):
    database = _name("small")
    conn = pg_server.create_database(database)
    _run(
        conn,
        "create table items (id serial primary key, name text not null, blob bytea)",
        "insert into items (name, blob) select 'item ' || g, decode(md5(g::text) || md5((g*7)::text), 'hex') "
        "from generate_series(1, 60000) g",
    )
    yield conn
    pg_server.drop_database(database)


def test_pg_dump_killed_mid_stream(small_source):
    with ENGINE.logical.capture(small_source) as (_metadata, dump):
        assert dump.stdout.read(65536)
        os.kill(dump.pid, signal.SIGKILL)
        for _ in iter_chunks(dump.stdout):
            pass
        with pytest.raises(ToolError, match="pg_dump was killed by signal 9"):
            dump.finish()


def test_leaving_capture_on_error_kills_pg_dump(small_source):
    with pytest.raises(RuntimeError):
        with ENGINE.logical.capture(small_source) as (_metadata, dump):
            dump.stdout.read(1024)
            raise RuntimeError("upload failed")
    assert dump.proc.returncode is not None and dump.proc.returncode != 0


def test_non_empty_target_refused_then_overwritten(small_source, pg_target_server):
    target = pg_target_server.connection("postgres")
    name = _name("occupied")
    occupied = pg_target_server.create_database(name)
    _run(occupied, "create table precious (x int)", "insert into precious values (1), (2)")
    assert ENGINE.target_state(target, name) == "non_empty"

    with ENGINE.logical.capture(small_source) as (metadata, dump):
        with pytest.raises(RestoreRefused) as refused:
            with ENGINE.logical.restore(target, name, metadata, overwrite=False):
                pytest.fail("restore started on a non-empty database")
        message = str(refused.value)
        assert name in message and f"{target.host}:{target.port}" in message and "--overwrite" in message
        assert _query(occupied, "select count(*) from precious") == [(2,)]

        with ENGINE.logical.restore(target, name, metadata, overwrite=True) as out:
            pipe(dump, out)
        dump.finish()
    found = ENGINE.describe(occupied)
    assert compare_descriptions(metadata, found) == []
    assert "public.precious" not in found.row_counts
    ENGINE.drop_database(target, name)


def test_parallel_restore_from_spool_and_target_states(small_source, pg_target_server, tmp_path, monkeypatch):
    monkeypatch.setenv("RESTORABLE_SPOOL_DIR", str(tmp_path))
    target = pg_target_server.connection("postgres")
    name = _name("parallel")
    assert ENGINE.target_state(target, name) == "absent"
    pg_target_server.create_database(name)
    assert ENGINE.target_state(target, name) == "empty"
    with ENGINE.logical.capture(small_source) as (metadata, dump):
        with ENGINE.logical.restore(target, name, metadata, overwrite=False, jobs=2) as out:
            pipe(dump, out)
            assert list(tmp_path.iterdir())  # spooled next to the process
        dump.finish()
    assert list(tmp_path.iterdir()) == []
    assert compare_descriptions(metadata, ENGINE.describe(pg_target_server.connection(name))) == []
    assert ENGINE.target_state(target, name) == "non_empty"
    # A connection left open does not stop a drill from dropping its scratch database.
    with pg_target_server.connect(name):
        ENGINE.drop_database(target, name)
    assert ENGINE.target_state(target, name) == "absent"


def test_restore_failure_reports_stderr(small_source, pg_target_server):
    target = pg_target_server.connection("postgres")
    name = _name("broken")
    with ENGINE.logical.capture(small_source) as (metadata, dump):
        data = b"".join(iter_chunks(dump.stdout))
        dump.finish()
    with pytest.raises(ToolError, match="pg_restore exited with code 1; stderr tail"):
        with ENGINE.logical.restore(target, name, metadata, overwrite=False) as out:
            out.write(data[: len(data) // 2])
    ENGINE.drop_database(target, name)


def test_property_that_cannot_be_applied_keeps_the_data_and_is_reported(small_source, pg_target_server, caplog):
    """A recorded database property the target cannot take (here a grantee it does not have) is
    logged and shows in the comparison by name; the restored data stays."""
    target = pg_target_server.connection("postgres")
    name = _name("partial_props")
    with ENGINE.logical.capture(small_source) as (metadata, dump):
        data = b"".join(iter_chunks(dump.stdout))
        dump.finish()
    props = metadata.schema["database_properties"]
    props["privileges"] = sorted([*props["privileges"], "ghost_role_xyz:CONNECT"])
    props["settings"] = [*props["settings"], digest_setting("work_mem=3MB")]
    metadata.sealed = {"database_properties": {"settings": ["work_mem=3MB"], "role_settings": {}}}
    with ENGINE.logical.restore(target, name, metadata, overwrite=False) as out:
        out.write(data)
    try:
        assert "no such role on the target server" in caplog.text
        found = ENGINE.describe(pg_target_server.connection(name))
        assert found.row_counts == metadata.row_counts  # the data is there
        assert found.schema["database_properties"]["settings"] == ["work_mem=3MB"]  # the rest applied
        differences = compare_descriptions(metadata, found)
        assert len(differences) == 1 and "database_properties.privileges" in differences[0]
        assert "ghost_role_xyz:CONNECT" in differences[0]
    finally:
        ENGINE.drop_database(target, name)


def test_list_dump(small_source):
    with ENGINE.logical.capture(small_source) as (_metadata, dump):
        data = b"".join(iter_chunks(dump.stdout))
        dump.finish()
    with ENGINE.logical.list_dump() as listing:
        for start in range(0, len(data), 1 << 20):
            listing.write(data[start : start + (1 << 20)])
    assert listing.entries and listing.entries >= 3  # table, its data, its primary key
    with pytest.raises(IntegrityError, match="end of file"):
        with ENGINE.logical.list_dump() as listing:
            listing.write(data[: len(data) - 5000])
    with pytest.raises(IntegrityError):
        with ENGINE.logical.list_dump() as listing:
            listing.write(b"this is not a dump" * 100)


def test_bad_password_and_unreachable(pg_server, caplog):
    wrong = "Wrong-Password-" + uuid.uuid4().hex
    bad = pg_server.connection("postgres", password=wrong)
    with pytest.raises(AuthenticationFailed) as refused:
        ENGINE.preflight(bad)
    assert wrong not in str(refused.value)
    with pytest.raises(AuthenticationFailed):
        with ENGINE.logical.capture(bad):
            pass
    from devstack.ports import free_port

    port = free_port()
    nowhere = ConnectionInfo("x", "postgres", "127.0.0.1", port, "postgres", wrong, "postgres")
    with pytest.raises(SourceUnreachable) as unreachable:
        ENGINE.describe(nowhere)
    assert f"127.0.0.1:{port}" in str(unreachable.value) and wrong not in str(unreachable.value)
    assert not isinstance(unreachable.value, AuthenticationFailed)
    assert not [r for r in caplog.records if wrong in r.getMessage()]


def test_sample_database_round_trip(pg_sample, pg_target_server):
    """The shared sample "shop" database (quoted identifiers, unicode, GIN/partial/expression
    indexes, partitions, large objects, another owner) comes back identical."""
    target = pg_target_server.connection("postgres")
    name = _name("shop_restored")
    with ENGINE.logical.capture(pg_sample) as (metadata, dump):
        with ENGINE.logical.restore(target, name, metadata, overwrite=False) as out:
            pipe(dump, out)
        dump.finish()
    restored = pg_target_server.connection(name)
    assert compare_descriptions(metadata, ENGINE.describe(restored)) == []
    assert len(metadata.row_counts) >= 5 and sum(metadata.row_counts.values()) > 1000
    assert table_md5s(restored, list(metadata.row_counts)) == table_md5s(pg_sample, list(metadata.row_counts))
    ENGINE.drop_database(target, name)
