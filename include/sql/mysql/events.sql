-- Scheduled events: md5 of the body and schedule (not DEFINER, not the originating server id).
SELECT EVENT_NAME,
       MD5(CONCAT_WS('|', EVENT_DEFINITION, EVENT_TYPE, EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD,
                     STARTS, ENDS, STATUS, ON_COMPLETION, SQL_MODE, EVENT_COMMENT, TIME_ZONE)) AS DIGEST
FROM information_schema.EVENTS
WHERE EVENT_SCHEMA = %(db)s
ORDER BY EVENT_NAME
