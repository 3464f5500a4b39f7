-- Section "extensions": installed extensions, their version and schema.
select e.extname as key, jsonb_build_object('version', e.extversion, 'schema', n.nspname) as value
from pg_extension e
join pg_namespace n on n.oid = e.extnamespace
order by 1
