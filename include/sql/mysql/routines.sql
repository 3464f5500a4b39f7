-- Stored procedures and functions: md5 of the body and of what the dump recreates with it
-- (parameters, return type, characteristics, sql_mode). DEFINER is left out on purpose.
SELECT r.ROUTINE_TYPE, r.ROUTINE_NAME,
       MD5(CONCAT_WS('|', r.ROUTINE_TYPE, r.DTD_IDENTIFIER, p.PARAMS, r.ROUTINE_DEFINITION,
                     r.IS_DETERMINISTIC, r.SQL_DATA_ACCESS, r.SECURITY_TYPE, r.SQL_MODE,
                     r.ROUTINE_COMMENT)) AS DIGEST
FROM information_schema.ROUTINES r
LEFT JOIN (
    SELECT SPECIFIC_NAME, ROUTINE_TYPE,
           GROUP_CONCAT(CONCAT_WS(' ', PARAMETER_MODE, PARAMETER_NAME, DTD_IDENTIFIER)
                        ORDER BY ORDINAL_POSITION SEPARATOR ', ') AS PARAMS
    FROM information_schema.PARAMETERS
    WHERE SPECIFIC_SCHEMA = %(db)s AND ORDINAL_POSITION > 0
    GROUP BY SPECIFIC_NAME, ROUTINE_TYPE
) p ON p.SPECIFIC_NAME = r.SPECIFIC_NAME AND p.ROUTINE_TYPE = r.ROUTINE_TYPE
WHERE r.ROUTINE_SCHEMA = %(db)s
ORDER BY r.ROUTINE_TYPE, r.ROUTINE_NAME
