"""A realistic "shop" database for PostgreSQL, generated server-side at a chosen size.

Three schemas (sales, inventory, audit) with what real databases hold and dumps must carry:
foreign keys; btree, unique, partial, expression and GIN indexes; jsonb, bytea, arrays,
numeric, timestamptz, inet; an enum; a range-partitioned table; a view and a materialized view;
a plpgsql function and triggers; identity columns, serials and a free-standing sequence, all
advanced by the inserts; large objects; unicode text (accents, CJK, emoji); quoted mixed-case
identifiers; a schema and a table owned by another role, and grants to a read-only role.

Rows come from ``INSERT ... SELECT generate_series`` with ``setseed`` so that generation runs at
server speed and is reproducible for a given seed; ``scale_mb`` sets roughly the database size
(two tables, ``sales.order_items`` and the partitioned ``audit.events``, carry the volume).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from restorable.connections import ConnectionInfo
from restorable.exceptions import SourceUnreachable

log = logging.getLogger(__name__)

#: Roles the sample uses. Roles are global to a server: a restore target needs them too
#: (``create_sample_roles``) unless the restore skips ownership and grants.
SAMPLE_ROLES = ("shop_owner", "shop_reader")

# Rough on-disk bytes per row (heap + indexes), measured; they turn scale_mb into row counts.
_BYTES_PER_ROW = {"customers": 290, "orders": 185, "order_items": 120, "events": 1340}
# Share of the size budget each volume table gets.
_SHARE = {"customers": 0.04, "orders": 0.08, "order_items": 0.13, "events": 0.75}
_PRODUCT_BYTES = 1100  # a product with its 3 stock rows and indexes
_EVENT_YEARS = (2023, 2024, 2025)


def _connect(conn: ConnectionInfo, database: str | None = None):
    import psycopg

    try:
        return psycopg.connect(
            host=conn.host,
            port=conn.port,
            user=conn.login,
            password=conn.password,
            dbname=database or conn.schema or "postgres",
            autocommit=True,
            connect_timeout=10,
        )
    except psycopg.OperationalError as exc:
        raise SourceUnreachable(
            f"cannot connect to {conn.describe()} to create the sample database: {exc}",
            database=database or conn.schema,
        ) from None


def create_sample_roles(conn: ConnectionInfo) -> None:
    """Create the sample's roles (NOLOGIN) on the server of ``conn`` if they are missing."""
    with _connect(conn, "postgres") as c:
        for role in SAMPLE_ROLES:
            # Concurrent creators (parallel test workers) race; the loser's error is harmless.
            c.execute(
                f"""DO $$ BEGIN
                      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                        CREATE ROLE {role} NOLOGIN;
                      END IF;
                    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                    END $$"""
            )


def _row_counts(scale_mb: float) -> dict[str, int]:
    budget = max(scale_mb, 0.5) * 1024 * 1024
    counts = {"products": int(min(2000, max(200, budget * 0.1 / _PRODUCT_BYTES)))}
    budget -= counts["products"] * _PRODUCT_BYTES + 300_000  # large objects, small tables
    budget = max(budget, 200_000)
    for name, share in _SHARE.items():
        counts[name] = max(50, int(budget * share / _BYTES_PER_ROW[name]))
    return counts


_DDL = r"""
CREATE SCHEMA sales;
CREATE SCHEMA inventory AUTHORIZATION shop_owner;
CREATE SCHEMA audit;

CREATE TYPE sales.order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded');

CREATE TABLE inventory.categories (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    parent_id   integer REFERENCES inventory.categories (id)
);

CREATE TABLE inventory.products (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku           text NOT NULL,
    name          text NOT NULL,
    description   text,
    category_id   integer NOT NULL REFERENCES inventory.categories (id),
    price         numeric(12, 2) NOT NULL CHECK (price >= 0),
    tags          text[] NOT NULL DEFAULT '{}',
    attributes    jsonb NOT NULL DEFAULT '{}',
    thumbnail     bytea,
    discontinued  boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT products_sku_key UNIQUE (sku)
);
CREATE INDEX products_attributes_gin ON inventory.products USING gin (attributes);
CREATE INDEX products_lower_name_idx ON inventory.products (lower(name));
CREATE INDEX products_active_price_idx ON inventory.products (price) WHERE NOT discontinued;
CREATE INDEX products_tags_gin ON inventory.products USING gin (tags);

CREATE TABLE inventory.stock (
    product_id  bigint NOT NULL REFERENCES inventory.products (id),
    warehouse   text NOT NULL,
    quantity    integer NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product_id, warehouse)
);
ALTER TABLE inventory.stock OWNER TO shop_owner;

CREATE TABLE inventory.product_manuals (
    product_id  bigint PRIMARY KEY REFERENCES inventory.products (id),
    title       text NOT NULL,
    manual      oid NOT NULL
);

CREATE TABLE sales.customers (
    id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    email        text NOT NULL,
    full_name    text NOT NULL,
    country      char(2) NOT NULL,
    preferences  jsonb,
    last_ip      inet,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz
);

CREATE SEQUENCE sales.invoice_number_seq START 100000;

CREATE TABLE sales.orders (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    customer_id  bigint NOT NULL,
    status       sales.order_status NOT NULL DEFAULT 'pending',
    ordered_at   timestamptz NOT NULL,
    invoice_no   bigint NOT NULL DEFAULT nextval('sales.invoice_number_seq'),
    total        numeric(14, 2) NOT NULL DEFAULT 0,
    currency     char(3) NOT NULL DEFAULT 'EUR',
    shipping     jsonb
);
ALTER SEQUENCE sales.invoice_number_seq OWNED BY sales.orders.invoice_no;

CREATE TABLE sales.order_items (
    id           bigserial,
    order_id     bigint NOT NULL,
    product_id   bigint NOT NULL,
    quantity     integer NOT NULL CHECK (quantity > 0),
    unit_price   numeric(12, 2) NOT NULL,
    discount     numeric(5, 2) NOT NULL DEFAULT 0,
    note         text
);

CREATE TABLE sales."Order Notes" (
    "NoteId"     serial PRIMARY KEY,
    "OrderId"    bigint NOT NULL,
    "NoteText"   text NOT NULL,
    "createdAt"  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit.events (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    occurred_at  timestamptz NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    entity       text NOT NULL,
    entity_id    bigint,
    payload      jsonb NOT NULL,
    raw_request  bytea,
    client_ip    inet
) PARTITION BY RANGE (occurred_at);
"""

_PARTITIONS = (
    "\n".join(
        f"CREATE TABLE audit.events_{y} PARTITION OF audit.events FOR VALUES FROM ('{y}-01-01') TO ('{y + 1}-01-01');"
        for y in _EVENT_YEARS
    )
    + "\nCREATE TABLE audit.events_default PARTITION OF audit.events DEFAULT;\n"
)

_FUNCTIONS = r"""
CREATE FUNCTION sales.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER customers_touch BEFORE UPDATE ON sales.customers
    FOR EACH ROW EXECUTE FUNCTION sales.touch_updated_at();

CREATE FUNCTION audit.log_order_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO audit.events (occurred_at, actor, action, entity, entity_id, payload)
        VALUES (now(), current_user, 'status_change', 'order', NEW.id,
                jsonb_build_object('from', OLD.status, 'to', NEW.status));
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER orders_status_audit AFTER UPDATE OF status ON sales.orders
    FOR EACH ROW EXECUTE FUNCTION audit.log_order_status();

CREATE VIEW sales.order_totals AS
    SELECT o.id AS order_id, o.customer_id, o.status, o.ordered_at,
           count(i.id) AS items, coalesce(sum(i.quantity * i.unit_price * (1 - i.discount / 100)), 0) AS amount
    FROM sales.orders o LEFT JOIN sales.order_items i ON i.order_id = o.id
    GROUP BY o.id, o.customer_id, o.status, o.ordered_at;

CREATE MATERIALIZED VIEW sales.monthly_revenue AS
    SELECT date_trunc('month', ordered_at) AS month, status, count(*) AS orders, sum(total) AS revenue
    FROM sales.orders GROUP BY 1, 2;
"""

_NAMES = (
    "ARRAY['José Müller', 'Zoë Ångström', '山田 太郎', '李小龍', 'Nguyễn Văn An', 'Ørjan Ødegård', "
    "'Jiří Dvořák', 'Σωκράτης Παππάς', 'Владимир Иванов', 'Chloé Lefèvre 🙂', 'فاطمة الزهراء', "
    "'김민준', 'Ana María Peña', 'Søren Kierkegård', 'O''Brien 🍀', 'plain ascii']"
)
_COUNTRIES = "ARRAY['DE','FR','JP','CN','VN','NO','CZ','GR','UA','BR','EG','KR','ES','DK','IE','US']"
_WORDS = (
    "ARRAY['fragile', 'gift wrap', 'leave at door', 'express', 'Bitte nicht knicken', 'très urgent', "
    "'速達', '🎁 birthday', 'call first', '']"
)


def _fill_small(c, counts: dict[str, int]) -> None:
    c.execute(
        """INSERT INTO inventory.categories (name, parent_id) VALUES
           ('Electronics', NULL), ('Books', NULL), ('Garden', NULL), ('Küche & Haushalt', NULL),
           ('Phones', 1), ('Laptops', 1), ('Novels', 2), ('漫画', 2), ('Tools', 3), ('☕ Coffee', 4)"""
    )
    c.execute(
        f"""INSERT INTO inventory.products (sku, name, description, category_id, price, tags, attributes,
                                             thumbnail, discontinued, created_at)
            SELECT 'SKU-' || lpad(g::text, 6, '0'),
                   initcap(md5(g::text || 'p')) || CASE WHEN g % 7 = 0 THEN ' – Édition spéciale ☕' ELSE '' END,
                   repeat(md5(g::text), 1 + g % 4),
                   1 + g % 10,
                   round((random() * 500 + 1)::numeric, 2),
                   ARRAY['tag' || g % 13, 'tag' || g % 7],
                   jsonb_build_object('color', (ARRAY['red','green','blue','schwarz','白'])[1 + g % 5],
                                      'weight_g', g % 1000, 'dims', jsonb_build_array(g % 30, g % 20, g % 10)),
                   CASE WHEN g % 3 = 0 THEN decode(md5(g::text) || md5((g + 1)::text), 'hex') END,
                   g % 17 = 0,
                   timestamptz '2022-01-01' + g * interval '1 hour'
            FROM generate_series(1, {counts["products"]}) g"""
    )
    c.execute(
        """INSERT INTO inventory.stock (product_id, warehouse, quantity, updated_at)
           SELECT p.id, w, (p.id * 7 + length(w)) % 500, timestamptz '2025-01-01' + p.id * interval '1 minute'
           FROM inventory.products p, unnest(ARRAY['BER-1', 'LYS-2', '東京-3']) w"""
    )
    c.execute(
        """INSERT INTO inventory.product_manuals (product_id, title, manual)
           SELECT g, 'Manual ' || g || ' (PDF)',
                  lo_from_bytea(0, decode(repeat(md5(g::text || 'manual'), 2048), 'hex'))
           FROM generate_series(1, 3) g"""
    )
    c.execute(
        f"""INSERT INTO sales.customers (email, full_name, country, preferences, last_ip, created_at)
            SELECT 'customer' || g || '@example.' || (ARRAY['com','de','jp','fr'])[1 + g % 4],
                   ({_NAMES})[1 + g % 16] || ' ' || g,
                   ({_COUNTRIES})[1 + g % 16],
                   CASE WHEN g % 5 <> 0 THEN jsonb_build_object('newsletter', g % 2 = 0,
                        'language', (ARRAY['de','fr','ja','en'])[1 + g % 4],
                        'tags', jsonb_build_array('vip', g % 9)) END,
                   ('10.' || g % 256 || '.' || (g / 256) % 256 || '.' || (g * 7) % 256)::inet,
                   timestamptz '2022-06-01' + (random() * 900) * interval '1 day'
            FROM generate_series(1, {counts["customers"]}) g"""
    )


def _fill_orders(conn: ConnectionInfo, database: str, counts: dict[str, int], seed: int) -> None:
    with _connect(conn, database) as c:
        c.execute("SELECT setseed(%s)", (_seed_value(seed, 2),))
        c.execute(
            f"""INSERT INTO sales.orders (customer_id, status, ordered_at, total, currency, shipping)
                SELECT 1 + (random() * ({counts["customers"]} - 1))::bigint,
                       ('{{pending,paid,shipped,delivered,cancelled,refunded}}'::sales.order_status[])
                           [1 + (g * 7) % 6],
                       timestamptz '2023-01-01' + (random() * 1000) * interval '1 day',
                       round((random() * 900 + 5)::numeric, 2),
                       CASE WHEN g % 10 = 0 THEN 'USD' ELSE 'EUR' END,
                       CASE WHEN g % 4 <> 0 THEN ('{{"carrier": "' || (ARRAY['DHL', 'UPS', 'ヤマト'])[1 + g % 3]
                            || '", "express": ' || (g % 3 = 0) || '}}')::jsonb END
                FROM generate_series(1, {counts["orders"]}) g"""
        )
        c.execute(
            f"""INSERT INTO sales."Order Notes" ("OrderId", "NoteText", "createdAt")
                SELECT 1 + (g * 37) % {counts["orders"]}, ({_WORDS})[1 + g % 10] || ' #' || g,
                       timestamptz '2024-01-01' + g * interval '1 minute'
                FROM generate_series(1, greatest(10, {counts["orders"]} / 50)) g"""
        )


def _fill_order_items(
    conn: ConnectionInfo, database: str, counts: dict[str, int], seed: int, part: int, parts: int
) -> None:
    lo, hi = _bounds(counts["order_items"], part, parts)
    with _connect(conn, database) as c:
        c.execute("SELECT setseed(%s)", (_seed_value(seed, 10 + part),))
        c.execute(
            f"""INSERT INTO sales.order_items (order_id, product_id, quantity, unit_price, discount, note)
                SELECT 1 + (g - 1) % {counts["orders"]},
                       1 + (random() * {counts["products"] - 1})::bigint,
                       1 + (random() * 9)::int,
                       round((random() * 300 + 1)::numeric, 2),
                       CASE WHEN g % 5 = 0 THEN 10 ELSE 0 END,
                       CASE WHEN g % 3 = 0 THEN ({_WORDS})[1 + g % 10] END
                FROM generate_series({lo}, {hi}) g"""
        )


def _bounds(total: int, part: int, parts: int) -> tuple[int, int]:
    return total * part // parts + 1, total * (part + 1) // parts


def _fill_events(conn: ConnectionInfo, database: str, counts: dict[str, int], seed: int, part: int, parts: int) -> None:
    lo, hi = _bounds(counts["events"], part, parts)
    with _connect(conn, database) as c:
        # The bulk of the volume: request bodies sliced from a 2 MB pool of hex text (bytea
        # slicing costs nothing per byte; hex compresses about 2:1, like real data).
        c.execute(
            f"""WITH pool AS MATERIALIZED (
                    SELECT convert_to(string_agg(md5(i::text || '{seed}'), ''), 'UTF8') AS p
                    FROM generate_series(1, 65536) i)
                INSERT INTO audit.events (occurred_at, actor, action, entity, entity_id, payload,
                                          raw_request, client_ip)
                SELECT timestamptz '2023-01-01' + (g::float8 / {counts["events"]}) * interval '1150 days',
                       (ARRAY['web', 'api', 'batch', 'admin', 'søren'])[1 + g % 5],
                       (ARRAY['create', 'update', 'view', 'delete'])[1 + g % 4],
                       (ARRAY['order', 'customer', 'product'])[1 + g % 3],
                       g,
                       ('{{"request_id": "' || md5(g::text || '{seed}') || '", "latency_ms": ' || (g * 7) % 500
                        || ', "ok": ' || (g % 11 <> 0) || ', "path": "/api/v1/'
                        || (ARRAY['orders', 'customers', 'products', 'stock'])[1 + g % 4] || '"}}')::jsonb,
                       substr(pool.p, 1 + ((g::bigint * 7919) % 2000000)::int, 600 + (g * 13) % 801),
                       CASE WHEN g % 2 = 0 THEN ('192.168.' || g % 256 || '.' || (g / 256) % 256)::inet END
                FROM pool, generate_series({lo}, {hi}) g"""
        )


def _run_sql(conn: ConnectionInfo, database: str, statements: str) -> None:
    with _connect(conn, database) as c:
        c.execute(statements)


def _run_parallel(tasks: list[tuple], workers: int) -> None:
    """Run ``(function, *args)`` tasks on ``workers`` threads (one connection each); re-raise the first error."""
    if workers <= 1:
        for func, *args in tasks:
            func(*args)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(func, *args) for func, *args in tasks]
        for future in futures:
            future.result()


def _seed_value(seed: int, stream: int) -> float:
    # setseed wants [-1, 1]; give each table its own reproducible stream.
    return ((seed * 7919 + stream * 104729) % 20000) / 10000.0 - 1.0


_CUSTOMER_KEYS = r"""
CREATE UNIQUE INDEX customers_email_key ON sales.customers (lower(email));
CREATE INDEX customers_country_idx ON sales.customers (country, created_at);
"""

_ORDER_KEYS = r"""
ALTER TABLE sales.orders ADD PRIMARY KEY (id);
CREATE INDEX orders_customer_idx ON sales.orders (customer_id);
CREATE INDEX orders_open_idx ON sales.orders (ordered_at) WHERE status IN ('pending', 'paid');
CREATE UNIQUE INDEX orders_invoice_key ON sales.orders (invoice_no);
"""

_ITEM_KEYS = r"""
ALTER TABLE sales.order_items ADD PRIMARY KEY (id);
CREATE INDEX order_items_order_idx ON sales.order_items (order_id);
"""

_EVENT_KEYS = r"""
ALTER TABLE audit.events ADD PRIMARY KEY (id, occurred_at);
CREATE INDEX events_entity_idx ON audit.events (entity, entity_id);
"""

_FOREIGN_KEYS = r"""
ALTER TABLE sales.orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES sales.customers (id);
ALTER TABLE sales."Order Notes" ADD CONSTRAINT "Order Notes_OrderId_fkey"
    FOREIGN KEY ("OrderId") REFERENCES sales.orders (id) ON DELETE CASCADE;
ALTER TABLE sales.order_items ADD CONSTRAINT order_items_order_fk
    FOREIGN KEY (order_id) REFERENCES sales.orders (id) ON DELETE CASCADE;
ALTER TABLE sales.order_items ADD CONSTRAINT order_items_product_fk
    FOREIGN KEY (product_id) REFERENCES inventory.products (id);
"""

_GRANTS = r"""
GRANT USAGE ON SCHEMA sales, inventory, audit TO shop_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA sales TO shop_reader;
GRANT SELECT (id, sku, name, price) ON inventory.products TO shop_reader;
GRANT SELECT, INSERT, UPDATE ON inventory.stock TO shop_reader;
GRANT ALL ON TABLE inventory.products TO shop_owner;
GRANT EXECUTE ON FUNCTION sales.touch_updated_at() TO shop_reader;
COMMENT ON TABLE sales.orders IS 'Customer orders – one row per checkout 🛒';
COMMENT ON COLUMN sales."Order Notes"."NoteText" IS 'Free text from the customer service desk';
"""

_FINISH = r"""
UPDATE sales.orders SET status = 'shipped' WHERE id <= 20 AND status <> 'shipped';
UPDATE sales.customers SET full_name = full_name || ' ✓' WHERE id <= 5;
REFRESH MATERIALIZED VIEW sales.monthly_revenue;
"""


def _sample_tables(c) -> list[str]:
    rows = c.execute(
        """SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('sales', 'inventory', 'audit')
             AND NOT c.relispartition
           ORDER BY 1"""
    ).fetchall()
    return [r[0] for r in rows]


def create_sample_database(
    conn: ConnectionInfo, *, scale_mb: float = 5.0, seed: int = 1, vacuum: bool = False
) -> dict[str, Any]:
    """Create and fill the sample database named by ``conn.schema`` (created if absent).

    The database must not hold the sample already. ``vacuum=True`` ends with
    ``VACUUM (FREEZE, ANALYZE)`` so that a first dump does not pay for setting hint bits
    (costs a pass over the data). Returns a summary: database, tables with exact row counts,
    total rows, database and data size, seconds taken and MB/s.
    """
    from psycopg import sql

    database = conn.schema or "shop"
    started = time.monotonic()
    create_sample_roles(conn)
    with _connect(conn, "postgres") as c:
        exists = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    counts = _row_counts(scale_mb)
    with _connect(conn, database) as c:
        c.execute("SET client_min_messages = warning")
        c.execute(_DDL)
        c.execute(_PARTITIONS)
        c.execute(_FUNCTIONS)
        c.execute("SELECT setseed(%s)", (_seed_value(seed, 1),))
        _fill_small(c, counts)

    # Bulk loads, then index builds, each phase on two connections (one core each) at scale.
    workers = 2 if scale_mb >= 50 else 1
    parts = workers
    _run_parallel(
        [(_fill_events, conn, database, counts, seed, p, parts) for p in range(parts)]
        + [(_fill_orders, conn, database, counts, seed)]
        + [(_fill_order_items, conn, database, counts, seed, p, parts) for p in range(parts)],
        workers,
    )
    _run_parallel(
        [(_run_sql, conn, database, sql_text) for sql_text in (_EVENT_KEYS, _ITEM_KEYS, _ORDER_KEYS, _CUSTOMER_KEYS)],
        workers,
    )
    with _connect(conn, database) as c:
        c.execute(_FOREIGN_KEYS)
        c.execute(_GRANTS)
        c.execute(_FINISH)
        if vacuum:
            c.execute("VACUUM (FREEZE, ANALYZE)")
        tables = {}
        for name in _sample_tables(c):
            tables[name] = c.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        size = c.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        data_size = (
            int(
                c.execute(
                    """SELECT sum(pg_total_relation_size(c.oid))
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'm') AND n.nspname IN ('sales', 'inventory', 'audit')"""
                ).fetchone()[0]
            )
            + c.execute("SELECT pg_total_relation_size('pg_largeobject')").fetchone()[0]
        )
    seconds = time.monotonic() - started
    summary = {
        "database": database,
        "tables": tables,
        "rows": sum(tables.values()),
        # size: the whole database (an empty one is ~7.5 MB of catalogs); data: the sample's
        # tables, indexes and large objects, which is what scale_mb aims at.
        "size_bytes": size,
        "size_mb": round(size / 1024 / 1024, 1),
        "data_bytes": int(data_size),
        "data_mb": round(data_size / 1024 / 1024, 1),
        "seconds": round(seconds, 2),
        "mb_per_s": round(data_size / 1024 / 1024 / seconds, 1) if seconds else None,
        "seed": seed,
        "scale_mb": scale_mb,
    }
    log.info(
        "sample database created database=%s data_mb=%s size_mb=%s rows=%s seconds=%.1f",
        database,
        summary["data_mb"],
        summary["size_mb"],
        summary["rows"],
        seconds,
    )
    return summary


# --- benchmark shapes --------------------------------------------------------------------------

#: Tables made per transaction: each holds locks on its table, key index, sequence and TOAST
#: table until commit, and the throwaway server's lock table is sized for 60 connections.
_TABLES_PER_BATCH = 200


def create_many_tables_database(conn: ConnectionInfo, *, tables: int = 2000, rows: int = 3) -> dict[str, Any]:
    """A database (``conn.schema``, created if absent) of ``tables`` small tables in four schemas.

    Each table has a bigint identity key and a few columns of common types (varchar, numeric,
    timestamptz, boolean, jsonb, text) with ``rows`` rows: the shape that makes a drill's
    per-table work, not its data, the cost. Returns the database, table count and seconds.
    """
    from psycopg import sql

    database = conn.schema or "many"
    started = time.monotonic()
    with _connect(conn, "postgres") as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    with _connect(conn, database) as c:
        c.execute("CREATE SCHEMA IF NOT EXISTS app; CREATE SCHEMA IF NOT EXISTS billing;")
        c.execute("CREATE SCHEMA IF NOT EXISTS crm; CREATE SCHEMA IF NOT EXISTS ops;")
        for first in range(0, tables, _TABLES_PER_BATCH):
            last = min(tables, first + _TABLES_PER_BATCH) - 1
            c.execute(
                f"""DO $$ DECLARE t text; BEGIN
                    FOR i IN {first}..{last} LOOP
                        t := format('%I.%I', (ARRAY['app', 'billing', 'crm', 'ops'])[1 + i % 4],
                                    'table_' || lpad(i::text, 4, '0'));
                        EXECUTE format('CREATE TABLE %s (
                            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code varchar(40) NOT NULL,
                            amount numeric(12, 2), created_at timestamptz NOT NULL DEFAULT now(),
                            active boolean NOT NULL DEFAULT true, attributes jsonb, note text)', t);
                        EXECUTE format('INSERT INTO %s (code, amount, attributes, note)
                            SELECT ''C-'' || g, g * 1.25, jsonb_build_object(''n'', g), repeat(''x'', g)
                            FROM generate_series(1, {int(rows)}) g', t);
                    END LOOP; END $$"""
            )
        c.execute("VACUUM (FREEZE, ANALYZE)")
    return {"database": database, "tables": tables, "rows_per_table": rows, "seconds": time.monotonic() - started}


#: About 320 bytes a row on disk: 3 M rows make the 960 MB table of the throughput benchmark.
_WIDE_ROWS_PER_MB = 3_000_000 / 960


def create_wide_table_database(conn: ConnectionInfo, *, scale_mb: float = 960) -> dict[str, Any]:
    """A database (``conn.schema``, created if absent) with one table ``public.payments`` of uuid,
    numeric, text and jsonb, about ``scale_mb`` MB (3 M rows at 960), from one INSERT ... SELECT.

    Text and jsonb come from md5 so that they compress like real data, not like repeated bytes.
    Returns the database, the row count, the table's size without and with its key, and seconds.
    """
    from psycopg import sql

    database = conn.schema or "wide"
    rows = max(1000, int(scale_mb * _WIDE_ROWS_PER_MB))
    started = time.monotonic()
    with _connect(conn, "postgres") as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    with _connect(conn, database) as c:
        c.execute(
            """CREATE TABLE public.payments (id uuid PRIMARY KEY, amount numeric(14, 2) NOT NULL,
                   reference text NOT NULL, details jsonb NOT NULL)"""
        )
        c.execute(
            f"""INSERT INTO public.payments
                SELECT gen_random_uuid(), round((g * 0.37)::numeric % 100000, 2),
                       md5(g::text) || ' ' || md5((g * 31)::text) || ' ' || md5((g * 7)::text),
                       jsonb_build_object('customer', md5((g % 50000)::text), 'channel',
                           (ARRAY['web', 'pos', 'api', 'batch'])[1 + g % 4], 'items', g % 17,
                           'tags', jsonb_build_array('t' || g % 13, 't' || g % 7), 'ref', md5((g * 3)::text))
                FROM generate_series(1, {rows}) g"""
        )
        c.execute("VACUUM (FREEZE, ANALYZE) public.payments")
        heap, size = c.execute(
            "SELECT pg_table_size('public.payments'), pg_total_relation_size('public.payments')"
        ).fetchone()
    return {
        "database": database,
        "rows": rows,
        "heap_bytes": heap,  # the table with its TOAST
        "table_bytes": size,  # and its primary key
        "seconds": time.monotonic() - started,
    }
