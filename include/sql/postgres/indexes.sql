-- Section "indexes": every index of a user table or materialized view, including those that
-- back constraints and the per-partition indexes of partitioned indexes.
select array[n.nspname, ic.relname] as name, pg_get_indexdef(i.indexrelid) as value
from pg_index i
join pg_class ic on ic.oid = i.indexrelid
join pg_class tc on tc.oid = i.indrelid
join pg_namespace n on n.oid = ic.relnamespace
where tc.relkind in ('r', 'p', 'm')
  and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
  and not exists (select 1 from pg_depend d
                  where d.classid = 'pg_class'::regclass and d.objid = tc.oid and d.deptype = 'e')
order by 1
