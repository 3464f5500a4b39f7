-- Ordered columns of every table-like object (views and sequences included; the caller keeps
-- base tables): name, COLUMN_TYPE and nullability.
SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %(db)s
ORDER BY TABLE_NAME, ORDINAL_POSITION
