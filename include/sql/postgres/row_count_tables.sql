-- Tables whose rows are counted: ordinary tables, including the leaf partitions of partitioned
-- tables. Partitioned parents hold no rows of their own and are not listed (their rows are counted
-- once, in their leaves); each table is counted with ONLY so inheritance children are not
-- counted twice. Extension members are left out (CREATE EXTENSION brings them back).
select n.nspname as schema_name, c.relname as table_name
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r'
  and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
  and not exists (select 1 from pg_depend d
                  where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
order by 1, 2
