-- Section "triggers": user triggers (not the internal ones behind foreign keys).
select array[n.nspname, c.relname, t.tgname] as name, pg_get_triggerdef(t.oid) as value
from pg_trigger t
join pg_class c on c.oid = t.tgrelid
join pg_namespace n on n.oid = c.relnamespace
where not t.tgisinternal
  and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
  and not exists (select 1 from pg_depend d
                  where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
order by 1
