-- Server and database facts (capture, describe, preflight). One row.
select current_setting('server_version') as server_version,
       current_setting('server_version_num')::int as server_version_num,
       current_database() as database,
       pg_is_in_recovery() as in_recovery
