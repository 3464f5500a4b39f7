-- CHECK constraints (MariaDB: names are per table, CHECK_CONSTRAINTS carries TABLE_NAME;
-- JSON columns get an automatic json_valid() check named after the column).
SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE
FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = %(db)s
ORDER BY TABLE_NAME, CONSTRAINT_NAME
