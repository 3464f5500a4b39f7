-- Views, normalised so a copy restored under another database name and DEFINER compares equal:
-- references qualified with the database's own name lose the qualifier; DEFINER is left out.
SELECT TABLE_NAME,
       REPLACE(VIEW_DEFINITION, CONCAT('`', REPLACE(TABLE_SCHEMA, '`', '``'), '`.'), '') AS DEFINITION,
       CHECK_OPTION, SECURITY_TYPE
FROM information_schema.VIEWS
WHERE TABLE_SCHEMA = %(db)s
ORDER BY TABLE_NAME
