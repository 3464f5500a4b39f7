-- Triggers: md5 of the body and of table, timing, event, order and sql_mode (not DEFINER).
SELECT TRIGGER_NAME,
       MD5(CONCAT_WS('|', EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER,
                     ACTION_STATEMENT, SQL_MODE)) AS DIGEST
FROM information_schema.TRIGGERS
WHERE TRIGGER_SCHEMA = %(db)s
ORDER BY TRIGGER_NAME
