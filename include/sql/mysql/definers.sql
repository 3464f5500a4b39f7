-- Accounts the database's views, routines, triggers and events run as (DEFINER): restores
-- need them to exist or rewritten (see restorable.engines.mysql).
SELECT 'VIEW' AS KIND, TABLE_NAME AS NAME, DEFINER FROM information_schema.VIEWS
 WHERE TABLE_SCHEMA = %(db)s
UNION ALL
SELECT ROUTINE_TYPE, ROUTINE_NAME, DEFINER FROM information_schema.ROUTINES
 WHERE ROUTINE_SCHEMA = %(db)s
UNION ALL
SELECT 'TRIGGER', TRIGGER_NAME, DEFINER FROM information_schema.TRIGGERS
 WHERE TRIGGER_SCHEMA = %(db)s
UNION ALL
SELECT 'EVENT', EVENT_NAME, DEFINER FROM information_schema.EVENTS
 WHERE EVENT_SCHEMA = %(db)s
ORDER BY 3, 1, 2
