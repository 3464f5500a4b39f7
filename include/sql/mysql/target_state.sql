-- Whether a database exists (first column) and how many objects it holds (second).
SELECT (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %(db)s) AS present,
       (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %(db)s)
     + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %(db)s)
     + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %(db)s) AS objects
