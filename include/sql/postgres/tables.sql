-- Section "tables": ordinary, partitioned and foreign tables with their ordered columns
-- (format_type spelling, nullability) and primary key columns in key order ([] when none).
select array[n.nspname, c.relname] as name,
       jsonb_build_object(
           'columns', coalesce((
               select jsonb_agg(jsonb_build_object(
                          'name', a.attname,
                          'type', format_type(a.atttypid, a.atttypmod),
                          'nullable', not a.attnotnull) order by a.attnum)
               from pg_attribute a
               where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]'::jsonb),
           'primary_key', coalesce((
               select jsonb_agg(a.attname order by k.ord)
               from pg_constraint pk
               cross join unnest(pk.conkey) with ordinality as k(attnum, ord)
               join pg_attribute a on a.attrelid = pk.conrelid and a.attnum = k.attnum
               where pk.conrelid = c.oid and pk.contype = 'p'), '[]'::jsonb)
       ) as value
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'f')
  and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
  and not exists (select 1 from pg_depend d
                  where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
order by 1
