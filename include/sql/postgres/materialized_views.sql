-- Section "materialized_views": definition and whether it is populated (pg_dump refreshes it).
select array[n.nspname, c.relname] as name,
       jsonb_build_object('definition', pg_get_viewdef(c.oid), 'populated', c.relispopulated) as value
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'm'
  and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
  and not exists (select 1 from pg_depend d
                  where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
order by 1
