-- Section "partitions": each partition, its parent and its bounds.
select array[n.nspname, c.relname] as name,
       pn.nspname || '.' || p.relname || ' ' || pg_get_expr(c.relpartbound, c.oid) as value
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
join pg_inherits i on i.inhrelid = c.oid
join pg_class p on p.oid = i.inhparent
join pg_namespace pn on pn.oid = p.relnamespace
where c.relispartition and c.relkind in ('r', 'p', 'f')
  and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
order by 1
