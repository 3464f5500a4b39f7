-- Every table-like object of the database: base tables (counted and described), views,
-- and MariaDB sequences. Table options are described because the dump recreates them.
SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION
FROM information_schema.TABLES
WHERE TABLE_SCHEMA = %(db)s
ORDER BY TABLE_NAME
