-- What a restore target already holds, by kind: relations, functions, user types, schemas other
-- than public, large objects and extensions other than plpgsql. No rows: the database is empty.
select kind, count(*) as n
from (
    select 'relations' as kind
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S', 'c')
      and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
      and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
    union all
    select 'functions'
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
      and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
    union all
    select 'types'
    from pg_type t join pg_namespace n on n.oid = t.typnamespace
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
      and t.typtype in ('b', 'd', 'e', 'r')
      and not (t.typcategory = 'A' and t.typelem <> 0)
      and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_type'::regclass and d.objid = t.oid and d.deptype = 'e')
    union all
    select 'schemas'
    from pg_namespace n
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_' and n.nspname <> 'public'
      and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_namespace'::regclass and d.objid = n.oid and d.deptype = 'e')
    union all
    select 'large objects' from pg_largeobject_metadata
    union all
    select 'extensions' from pg_extension where extname <> 'plpgsql'
) objects
group by kind
order by kind
