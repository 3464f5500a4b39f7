-- Section "owners": "<kind> <schema>.<name>" -> owning role, for schemas, relations, functions and
-- user types; "large objects" -> {role: number of large objects it owns}. The key is made in
-- describe.py from kind, name (the names, quoted there when needed) and arguments.
with objects(kind, name, arguments, owner) as (
    select 'schema', array[n.nspname], null::text, to_jsonb(pg_get_userbyid(n.nspowner))
    from pg_namespace n
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
      and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_namespace'::regclass and d.objid = n.oid and d.deptype = 'e')
    union all
    select case c.relkind when 'S' then 'sequence' when 'v' then 'view'
                          when 'm' then 'materialized view' when 'f' then 'foreign table'
                          else 'table' end,
           array[n.nspname, c.relname], null,
           to_jsonb(pg_get_userbyid(c.relowner))
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
      and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
      and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
    union all
    select 'function', array[n.nspname, p.proname], '(' || pg_get_function_identity_arguments(p.oid) || ')',
           to_jsonb(pg_get_userbyid(p.proowner))
    from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
      and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
    union all
    select 'type', array[n.nspname, t.typname], null, to_jsonb(pg_get_userbyid(t.typowner))
    from pg_type t
    join pg_namespace n on n.oid = t.typnamespace
    where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
      and t.typtype in ('b', 'c', 'd', 'e', 'r')
      and (t.typtype <> 'c' or exists (select 1 from pg_class c where c.oid = t.typrelid and c.relkind = 'c'))
      and not (t.typcategory = 'A' and t.typelem <> 0)
      and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_type'::regclass and d.objid = t.oid and d.deptype = 'e')
    union all
    select 'large objects', null, null, jsonb_object_agg(owner, n)
    from (select pg_get_userbyid(l.lomowner) as owner, count(*) as n
          from pg_largeobject_metadata l group by 1) lo
    having count(*) > 0
)
select kind, name, arguments, owner as value from objects order by 1, 2, 3
