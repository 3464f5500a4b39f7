-- Exact row count of one table, run in the dump's snapshot; {table} is a quoted identifier.
SELECT COUNT(*) FROM {table}
