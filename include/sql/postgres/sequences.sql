-- Sequences to read (their values are read one by one: SELECT last_value, is_called FROM seq).
select n.nspname as schema_name, c.relname as sequence_name,
       s.seqincrement as increment
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
join pg_sequence s on s.seqrelid = c.oid
where c.relkind = 'S'
  and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
  and not exists (select 1 from pg_depend d
                  where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
order by 1, 2
