-- Section "constraints": table constraints (primary key, unique, check, foreign key, exclusion).
-- Domain constraints are part of the "types" section.
select array[n.nspname, c.relname, con.conname] as name,
       pg_get_constraintdef(con.oid) as value
from pg_constraint con
join pg_class c on c.oid = con.conrelid
join pg_namespace n on n.oid = c.relnamespace
where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
  and not exists (select 1 from pg_depend d
                  where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
order by 1
