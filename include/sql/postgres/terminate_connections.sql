-- Ends every other session on a database about to be dropped or recreated. Parameter: %(database)s.
select count(pg_terminate_backend(a.pid)) as terminated
from pg_stat_activity a
where a.datname = %(database)s and a.pid <> pg_backend_pid()
