"""A realistic "shopdb" database for MariaDB, generated server-side at a chosen size.

What real MariaDB schemas hold and dumps must carry: utf8mb4 text with emoji, BLOB, JSON,
DECIMAL, DATETIME(6), ENUM and SET, virtual and stored generated columns, FULLTEXT and
composite indexes, foreign keys, a RANGE-partitioned table, a view, a stored procedure, a
trigger and a scheduled event.

Rows come from ``INSERT ... SELECT`` over the SEQUENCE engine's ``seq_1_to_N`` tables with
deterministic expressions of the sequence number (and the seed), so generation runs at server
speed and gives the same data for the same seed. ``scale_mb`` sets roughly the size of the
tables; the partitioned ``events`` and ``order_items`` carry the volume. The bulk load skips
the binary log (``sql_log_bin=0``): the dump is the base, binlogs start after it.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from restorable.connections import ConnectionInfo
from restorable.exceptions import SourceUnreachable

log = logging.getLogger(__name__)

# Rough on-disk bytes per row (data + indexes), measured; they turn scale_mb into row counts.
_BYTES_PER_ROW = {"customers": 420, "orders": 260, "order_items": 165, "events": 1560}
_SHARE = {"customers": 0.04, "orders": 0.08, "order_items": 0.13, "events": 0.75}
_PRODUCT_BYTES = 1500
_EVENT_YEARS = (2023, 2024, 2025)
_CHUNK_ROWS = 50_000


def _quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _connect(conn: ConnectionInfo, database: str | None = None):
    import pymysql

    try:
        return pymysql.connect(
            host=conn.host,
            port=conn.port or 3306,
            user=conn.login,
            password=conn.password or "",
            database=database,
            autocommit=True,
            charset="utf8mb4",
            connect_timeout=10,
            read_timeout=3600,
        )
    except pymysql.err.OperationalError as exc:
        raise SourceUnreachable(
            f"cannot connect to {conn.describe()} to create the sample database: {exc}",
            database=database,
        ) from None


def _execute(c, statements: str) -> None:
    """Run ``;``-separated statements (none of them may contain a bare ``;``... except bodies, see _BODIES)."""
    with c.cursor() as cur:
        for stmt in statements.split(";\n"):
            if stmt.strip():
                cur.execute(stmt)


def _row_counts(scale_mb: float) -> dict[str, int]:
    budget = max(scale_mb, 0.5) * 1024 * 1024
    counts = {"products": int(min(2000, max(200, budget * 0.1 / _PRODUCT_BYTES)))}
    # InnoDB allocates space per table and partition up front (~100-200 KB each, even empty).
    budget -= counts["products"] * _PRODUCT_BYTES + 2_000_000
    budget = max(budget, 200_000)
    for name, share in _SHARE.items():
        counts[name] = max(50, int(budget * share / _BYTES_PER_ROW[name]))
    return counts


_DDL = (
    """
CREATE TABLE categories (
    id         INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name       VARCHAR(100) NOT NULL,
    parent_id  INT NULL,
    UNIQUE KEY categories_name_uq (name),
    CONSTRAINT categories_parent_fk FOREIGN KEY (parent_id) REFERENCES categories (id)
) ENGINE=InnoDB;
CREATE TABLE products (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    sku          VARCHAR(32) NOT NULL,
    name         VARCHAR(200) NOT NULL,
    description  TEXT,
    category_id  INT NOT NULL,
    price        DECIMAL(12, 2) NOT NULL,
    price_gross  DECIMAL(12, 2) AS (ROUND(price * 1.19, 2)) VIRTUAL,
    status       ENUM('active', 'discontinued', 'draft') NOT NULL DEFAULT 'active',
    tags         SET('new', 'sale', 'eco', 'gift', 'bulk') NOT NULL DEFAULT '',
    attributes   JSON,
    thumbnail    BLOB,
    created_at   DATETIME(6) NOT NULL,
    UNIQUE KEY products_sku_uq (sku),
    KEY products_category_price_idx (category_id, price),
    FULLTEXT KEY products_text_ft (name, description),
    CONSTRAINT products_category_fk FOREIGN KEY (category_id) REFERENCES categories (id),
    CONSTRAINT products_price_ck CHECK (price >= 0)
) ENGINE=InnoDB;
CREATE TABLE customers (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email        VARCHAR(190) NOT NULL,
    full_name    VARCHAR(200) NOT NULL,
    country      CHAR(2) NOT NULL,
    preferences  JSON,
    created_at   DATETIME(6) NOT NULL,
    updated_at   DATETIME(6) NULL,
    UNIQUE KEY customers_email_uq (email),
    KEY customers_country_created_idx (country, created_at)
) ENGINE=InnoDB;
CREATE TABLE orders (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_id  BIGINT NOT NULL,
    status       ENUM('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded') NOT NULL,
    ordered_at   DATETIME(6) NOT NULL,
    order_month  INT AS (YEAR(ordered_at) * 100 + MONTH(ordered_at)) STORED,
    total        DECIMAL(14, 2) NOT NULL DEFAULT 0,
    currency     CHAR(3) NOT NULL DEFAULT 'EUR',
    shipping     JSON,
    KEY orders_customer_ordered_idx (customer_id, ordered_at),
    KEY orders_month_idx (order_month),
    CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB;
CREATE TABLE order_items (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_id     BIGINT NOT NULL,
    product_id   BIGINT NOT NULL,
    quantity     INT NOT NULL,
    unit_price   DECIMAL(12, 2) NOT NULL,
    note         VARCHAR(100) NULL,
    KEY order_items_order_idx (order_id),
    CONSTRAINT order_items_order_fk FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE,
    CONSTRAINT order_items_product_fk FOREIGN KEY (product_id) REFERENCES products (id)
) ENGINE=InnoDB;
CREATE TABLE daily_sales (
    day          DATE NOT NULL PRIMARY KEY,
    orders       INT NOT NULL,
    revenue      DECIMAL(16, 2) NOT NULL,
    refreshed_at DATETIME(6) NOT NULL
) ENGINE=InnoDB;
CREATE TABLE events (
    id           BIGINT NOT NULL AUTO_INCREMENT,
    occurred_at  DATETIME(6) NOT NULL,
    actor        VARCHAR(50) NOT NULL,
    action       VARCHAR(20) NOT NULL,
    entity       VARCHAR(20) NOT NULL,
    entity_id    BIGINT NULL,
    payload      JSON NOT NULL,
    raw_request  BLOB,
    PRIMARY KEY (id, occurred_at),
    KEY events_entity_idx (entity, entity_id)
) ENGINE=InnoDB
PARTITION BY RANGE COLUMNS (occurred_at) (
"""
    + ",\n".join(f"    PARTITION p{y} VALUES LESS THAN ('{y + 1}-01-01')" for y in _EVENT_YEARS)
    + """,
    PARTITION pmax VALUES LESS THAN (MAXVALUE)
);
CREATE VIEW order_totals AS
    SELECT o.id AS order_id, o.customer_id, o.status, o.ordered_at,
           COUNT(i.id) AS items, COALESCE(SUM(i.quantity * i.unit_price), 0) AS amount
    FROM orders o LEFT JOIN order_items i ON i.order_id = o.id
    GROUP BY o.id, o.customer_id, o.status, o.ordered_at
"""
)

# Bodies contain ';' so they go one statement each.
_BODIES = [
    """CREATE TRIGGER customers_touch BEFORE UPDATE ON customers FOR EACH ROW
       SET NEW.updated_at = NOW(6)""",
    """CREATE TRIGGER orders_status_audit AFTER UPDATE ON orders FOR EACH ROW
       BEGIN
         IF NEW.status <> OLD.status THEN
           INSERT INTO events (occurred_at, actor, action, entity, entity_id, payload)
           VALUES (NOW(6), CURRENT_USER(), 'status_change', 'order', NEW.id,
                   JSON_OBJECT('from', OLD.status, 'to', NEW.status));
         END IF;
       END""",
    """CREATE PROCEDURE refresh_daily_sales(IN since DATE)
       BEGIN
         DELETE FROM daily_sales WHERE day >= since;
         INSERT INTO daily_sales (day, orders, revenue, refreshed_at)
           SELECT DATE(ordered_at), COUNT(*), SUM(total), NOW(6)
           FROM orders WHERE ordered_at >= since GROUP BY DATE(ordered_at);
       END""",
    """CREATE EVENT purge_old_events ON SCHEDULE EVERY 1 DAY
       STARTS CURRENT_TIMESTAMP + INTERVAL 1 DAY
       COMMENT 'Drop audit events older than ten years'
       DO DELETE FROM events WHERE occurred_at < NOW() - INTERVAL 10 YEAR""",
]

_NAMES = (
    "ELT(1 + seq % 16, 'José Müller', 'Zoë Ångström', '山田 太郎', '李小龍', 'Nguyễn Văn An', "
    "'Ørjan Ødegård', 'Jiří Dvořák', 'Σωκράτης Παππάς', 'Владимир Иванов', 'Chloé Lefèvre 🙂', "
    "'فاطمة الزهراء', '김민준', 'Ana María Peña', 'Søren Kierkegård', 'O''Brien 🍀', 'plain ascii')"
)
_COUNTRIES = "ELT(1 + seq % 16, 'DE','FR','JP','CN','VN','NO','CZ','GR','UA','BR','EG','KR','ES','DK','IE','US')"
_WORDS = (
    "ELT(1 + seq % 10, 'fragile', 'gift wrap', 'leave at door', 'express', 'Bitte nicht knicken', "
    "'très urgent', '速達', '🎁 birthday', 'call first', '')"
)


def _bounds(total: int, part: int, parts: int) -> tuple[int, int]:
    return total * part // parts + 1, total * (part + 1) // parts


def _bulk_session(c) -> None:
    _execute(c, "SET SESSION sql_log_bin = 0;\nSET SESSION foreign_key_checks = 0;\nSET SESSION unique_checks = 0")


def _fill_small(c, counts: dict[str, int], seed: int) -> None:
    _execute(
        c,
        f"""INSERT INTO categories (name, parent_id) VALUES
           ('Electronics', NULL), ('Books', NULL), ('Garden', NULL), ('Küche & Haushalt', NULL),
           ('Phones', 1), ('Laptops', 1), ('Novels', 2), ('漫画', 2), ('Tools', 3), ('☕ Coffee', 4);
        INSERT INTO products (sku, name, description, category_id, price, status, tags, attributes,
                              thumbnail, created_at)
            SELECT CONCAT('SKU-', LPAD(seq, 6, '0')),
                   CONCAT(UPPER(LEFT(MD5(CONCAT(seq, 'p{seed}')), 1)), SUBSTRING(MD5(CONCAT(seq, 'p{seed}')), 2),
                          IF(seq % 7 = 0, ' – Édition spéciale ☕', '')),
                   REPEAT(CONCAT(MD5(seq), ' wireless ergonomic durable '), 1 + seq % 4),
                   1 + seq % 10,
                   ROUND(1 + (seq * 7919 % 50000) / 100, 2),
                   ELT(1 + (seq % 17 = 0) + 2 * (seq % 29 = 0), 'active', 'discontinued', 'draft', 'draft'),
                   ELT(1 + seq % 4, '', 'new', 'sale,eco', 'gift,bulk,new'),
                   JSON_OBJECT('color', ELT(1 + seq % 5, 'red', 'green', 'blue', 'schwarz', '白'),
                               'weight_g', seq % 1000, 'dims', JSON_ARRAY(seq % 30, seq % 20, seq % 10)),
                   IF(seq % 3 = 0, UNHEX(CONCAT(MD5(seq), MD5(seq + 1))), NULL),
                   TIMESTAMP '2022-01-01 00:00:00' + INTERVAL seq HOUR + INTERVAL seq % 1000000 MICROSECOND
            FROM seq_1_to_{counts["products"]};
        INSERT INTO customers (email, full_name, country, preferences, created_at)
            SELECT CONCAT('customer', seq, '@example.', ELT(1 + seq % 4, 'com', 'de', 'jp', 'fr')),
                   CONCAT({_NAMES}, ' ', seq),
                   {_COUNTRIES},
                   IF(seq % 5 <> 0, JSON_OBJECT('newsletter', seq % 2 = 0,
                      'language', ELT(1 + seq % 4, 'de', 'fr', 'ja', 'en'), 'tags', JSON_ARRAY('vip', seq % 9)), NULL),
                   TIMESTAMP '2022-06-01 00:00:00' + INTERVAL (seq * 7919 % 77760000) SECOND
                       + INTERVAL seq % 1000000 MICROSECOND
            FROM seq_1_to_{counts["customers"]}""",
    )


def _fill_orders(conn: ConnectionInfo, database: str, counts: dict[str, int], seed: int) -> None:
    c = _connect(conn, database)
    try:
        _bulk_session(c)
        n_customers, n_orders, n_products = counts["customers"], counts["orders"], counts["products"]
        _insert_chunked(
            c,
            f"""INSERT INTO orders (customer_id, status, ordered_at, total, currency, shipping)
                SELECT 1 + (seq * 7919 + {seed}) % {n_customers},
                       ELT(1 + (seq * 7) % 6, 'pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'),
                       TIMESTAMP '2023-01-01 00:00:00' + INTERVAL ((seq * 104729 + {seed}) % 86400000) SECOND
                           + INTERVAL seq % 1000000 MICROSECOND,
                       ROUND(5 + ((seq * 31 + {seed}) % 90000) / 100, 2),
                       IF(seq % 10 = 0, 'USD', 'EUR'),
                       IF(seq % 4 <> 0, JSON_OBJECT('carrier', ELT(1 + seq % 3, 'DHL', 'UPS', 'ヤマト'),
                                                    'express', seq % 3 = 0), NULL)
                FROM {{seq}}""",
            n_orders,
        )
        _insert_chunked(
            c,
            f"""INSERT INTO order_items (order_id, product_id, quantity, unit_price, note)
                SELECT 1 + (seq - 1) % {n_orders},
                       1 + (seq * 7919 + {seed}) % {n_products},
                       1 + (seq * 13) % 9,
                       ROUND(1 + ((seq * 104729 + {seed}) % 30000) / 100, 2),
                       IF(seq % 3 = 0, {_WORDS}, NULL)
                FROM {{seq}}""",
            counts["order_items"],
        )
    finally:
        c.close()


def _fill_events(conn: ConnectionInfo, database: str, counts: dict[str, int], seed: int) -> None:
    c = _connect(conn, database)
    try:
        _bulk_session(c)
        n = counts["events"]
        # Request bodies sliced from a 2 MB pool of hex text (hex compresses about 2:1, like
        # real data). The pool sits in a temporary table: a user variable would be copied per row.
        _execute(
            c,
            f"""SET SESSION group_concat_max_len = 4194304;
            CREATE TEMPORARY TABLE sample_pool (p LONGBLOB) ENGINE=InnoDB
                SELECT CAST(GROUP_CONCAT(MD5(CONCAT(seq, '{seed}')) SEPARATOR '') AS BINARY) AS p
                FROM seq_1_to_65536""",
        )
        _insert_chunked(
            c,
            f"""INSERT INTO events (occurred_at, actor, action, entity, entity_id, payload, raw_request)
                SELECT TIMESTAMP '2023-01-01 00:00:00' + INTERVAL (seq * 99360 DIV {n}) * 1000 SECOND
                           + INTERVAL seq % 1000000 MICROSECOND,
                       ELT(1 + seq % 5, 'web', 'api', 'batch', 'admin', 'søren'),
                       ELT(1 + seq % 4, 'create', 'update', 'view', 'delete'),
                       ELT(1 + seq % 3, 'order', 'customer', 'product'),
                       seq,
                       CONCAT('{{"request_id": "', MD5(CONCAT(seq, '{seed}')), '", "latency_ms": ', (seq * 7) % 500,
                              ', "ok": ', IF(seq % 11 <> 0, 'true', 'false'), ', "path": "/api/v1/',
                              ELT(1 + seq % 4, 'orders', 'customers', 'products', 'stock'), '"}}'),
                       SUBSTRING(sample_pool.p, 1 + (seq * 7919) % 2000000, 600 + (seq * 13) % 801)
                FROM sample_pool, {{seq}}""",
            n,
        )
    finally:
        c.close()


def _insert_chunked(c, template: str, total: int, chunk: int = _CHUNK_ROWS) -> None:
    """Run ``template`` (an INSERT ... SELECT ... FROM {seq}) over 1..total in chunks.

    One huge INSERT ... SELECT slows down as its transaction grows (undo, locks, redo pressure);
    chunks of a few tens of thousands of rows keep InnoDB at full speed.
    """
    with c.cursor() as cur:
        for lo in range(1, total + 1, chunk):
            hi = min(total, lo + chunk - 1)
            cur.execute(template.replace("{seq}", f"seq_{lo}_to_{hi}"))


def _run_parallel(tasks: list[tuple], workers: int) -> None:
    if workers <= 1:
        for func, *args in tasks:
            func(*args)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(func, *args) for func, *args in tasks]:
            future.result()


def create_sample_database(conn: ConnectionInfo, *, scale_mb: float = 5.0, seed: int = 1) -> dict[str, Any]:
    """Create and fill the sample database named by ``conn.schema`` (created if absent).

    The database must not hold the sample already. Returns a summary: database, tables with
    exact row counts, total rows, data size (InnoDB files), seconds taken and MB/s.
    """
    database = conn.schema or "shopdb"
    started = time.monotonic()
    counts = _row_counts(scale_mb)
    c = _connect(conn)
    try:
        _execute(
            c,
            f"CREATE DATABASE IF NOT EXISTS {_quote_ident(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        )
        c.select_db(database)
        _execute(c, _DDL)
        with c.cursor() as cur:
            for body in _BODIES:
                cur.execute(body)
        _bulk_session(c)
        _fill_small(c, counts, seed)
    finally:
        c.close()

    _run_parallel(
        [(_fill_events, conn, database, counts, seed), (_fill_orders, conn, database, counts, seed)],
        2 if scale_mb >= 50 else 1,
    )

    c = _connect(conn, database)
    try:
        _execute(
            c,
            """UPDATE orders SET status = 'shipped' WHERE id <= 20 AND status <> 'shipped';
            UPDATE customers SET full_name = CONCAT(full_name, ' ✓') WHERE id <= 5;
            CALL refresh_daily_sales('2023-01-01')""",
        )
        with c.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY table_name",
                (database,),
            )
            names = [r[0] for r in cur.fetchall()]
            tables = {}
            for name in names:
                cur.execute(f"SELECT COUNT(*) FROM {_quote_ident(name)}")
                tables[name] = cur.fetchone()[0]
            # Tablespace files are what the data really takes (information_schema sizes are estimates).
            cur.execute(
                "SELECT COALESCE(SUM(allocated_size), 0) FROM information_schema.innodb_sys_tablespaces "
                "WHERE name LIKE %s",
                (database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "/%",),
            )
            data_size = int(cur.fetchone()[0])
    finally:
        c.close()
    seconds = time.monotonic() - started
    summary = {
        "database": database,
        "tables": tables,
        "rows": sum(tables.values()),
        "data_bytes": data_size,
        "data_mb": round(data_size / 1024 / 1024, 1),
        "seconds": round(seconds, 2),
        "mb_per_s": round(data_size / 1024 / 1024 / seconds, 1) if seconds else None,
        "seed": seed,
        "scale_mb": scale_mb,
    }
    log.info(
        "sample database created database=%s data_mb=%s rows=%s seconds=%.1f",
        database,
        summary["data_mb"],
        summary["rows"],
        seconds,
    )
    return summary
